"""Each task's own best epoch: ``EarlyStopping``'s rule against one shared epoch.

A multi-task network stops early on the summed validation loss and keeps the weights of one
epoch for every task. A task that overfits sooner (a weak, noisy target) is best at an
earlier epoch; one that still learns is best later. The library's ``EarlyStopping`` lets a
task predict with its own best epoch's weights when a paired test on its validation rows
clears ``task_epochs_z`` on at least ``task_epochs_min_rows`` labelled rows. This
benchmark compares rules on **inner validation splits of each outer fold's training part**
of ``bench_quality.py`` (never its test parts):

- ``shared``: one epoch for every task (``task_epochs=False``);
- ``z=3``, ``z=2``, ``z=1.5`` (the default): the library's rule at that bar;
- ``always``: every task its own best epoch (``task_epochs_z=0``, ``task_epochs_min_rows=2``,
  which keeps an own epoch whenever its validation loss is lower at all).

Usage::

    python benchmarks/bench_task_epochs.py --datasets reviews --seeds 0,1,2,3,4

Per data set and rule: the mean inner validation score per task (accuracy or R²) and how
often each task kept its own epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402

ES = "callbacks__early_stopping__"
RULES = {
    "shared": {f"{ES}task_epochs": False},
    "z=3": {f"{ES}task_epochs_z": 3.0},
    "z=2": {f"{ES}task_epochs_z": 2.0},
    "z=1.5 (default)": {},
    "always": {f"{ES}task_epochs_z": 0.0, f"{ES}task_epochs_min_rows": 2},
}


def run(prob, seeds, params) -> tuple[dict[str, float], dict[str, int], int]:
    """Mean inner-validation score per task, kept-epoch counts per task, number of fits."""
    scores: dict[str, list[float]] = {}
    kept: dict[str, int] = {t: 0 for t in prob.Y.columns}
    fits = 0
    for _, _, model, X_val, y_val in bq.inner_validation_fits(
            prob, seeds, lambda seed: bq.make_lib(prob, seed, **params)):
        net = model[-1]
        fits += 1
        for task, value in net.score_tasks(X_val, y_val).items():
            scores.setdefault(task, []).append(value)
        for task in net.task_epochs_:
            kept[task] += 1
    return {t: float(np.mean(v)) for t, v in scores.items()}, kept, fits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("SKLEARN_MTML_DATA", str(bq.ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--datasets", default="reviews,emotions")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rules", default=",".join(RULES),
                        help=f"comma-separated, of: {', '.join(RULES)}")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    rules = args.rules.split(",")
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        parser.error(f"unknown rules {unknown}; choose from {list(RULES)}")
    for name in args.datasets.split(","):
        prob = bq.PROBLEMS[name](args.data, False)[0]
        tasks = [t for t in prob.Y.columns if t in prob.scored]
        print(f"\n## {name} (inner validation, seeds {seeds})\n", flush=True)
        print("| rule | " + " | ".join(tasks) + " | kept own epoch (fits) | seconds |")
        print("|---|" + "---:|" * len(tasks) + "---|---:|")
        for rule in rules:
            tic = time.time()
            scores, kept, fits = run(prob, seeds, RULES[rule])
            counts = ", ".join(f"{t} {n}/{fits}" for t, n in kept.items() if n) or "none"
            print(f"| {rule} | " + " | ".join(f"{scores[t]:.3f}" for t in tasks)
                  + f" | {counts} | {time.time() - tic:.0f} |", flush=True)


if __name__ == "__main__":
    main()
