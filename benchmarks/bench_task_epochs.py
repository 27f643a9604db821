"""Each task from its own best epoch, against the shared best epoch early stopping keeps.

A multi-task network stops early on the summed validation loss and keeps the weights of one
epoch for every task. A task that overfits sooner (a weak, noisy target) is best at an
earlier epoch. This benchmark measures what restoring, for each task, the weights of the
epoch where its own metric was best on the network's internal validation split would give,
on **inner validation splits of each outer fold's training part** of ``bench_quality.py``
(never its test parts). It is not a library option: it snapshots every epoch's weights with a
callback and scores each task with its own epoch's weights.

Usage::

    python benchmarks/bench_task_epochs.py --datasets reviews,emotions --seeds 0,1,2

Per data set: each fit's shared best epoch and each task's own, then the mean inner
validation score per task with the shared epoch and with each task's own epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402

from sklearn_mtml import MultiTaskNet  # noqa: E402


class EpochWeights(Callback):
    """Keep a copy of the network's weights at the end of every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = []

    def on_epoch_end(self, net, **kwargs):
        self.states.append({k: v.detach().clone() for k, v in net.module_.state_dict().items()})


def run(prob, seeds) -> tuple[dict, dict]:
    tasks = list(prob.Y.columns)
    shared: dict[str, list[float]] = {t: [] for t in tasks}
    own: dict[str, list[float]] = {t: [] for t in tasks}
    snapshots = EpochWeights()

    def build(seed):
        return make_pipeline(*prob.lib_steps(), MultiTaskNet(
            random_state=seed, callbacks=[("epochs", snapshots)]))

    for k, seed, model, X_val, y_val in bq.inner_validation_fits(prob, seeds, build):
        net = model[-1]
        base = net.score_tasks(X_val, y_val)
        epochs = {}
        for name, task in net.tasks_.items():
            curve = np.array([e.get(f"valid_{task.metric_name}_{name}", np.nan)
                              for e in net.history], dtype=float)
            epochs[name] = int(np.nanargmax(curve))
            net.module_.load_state_dict(snapshots.states[epochs[name]])
            own[name].append(net.score_tasks(X_val, y_val)[name])
            shared[name].append(base[name])
        print(f"  fold {k} seed {seed}: shared best epoch {net.best_epoch_}, each task's "
              f"own {epochs}", flush=True)
    return ({t: float(np.mean(v)) for t, v in shared.items()},
            {t: float(np.mean(v)) for t, v in own.items()})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("SKLEARN_MTML_DATA", str(bq.ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--datasets", default="reviews,emotions")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.datasets.split(","):
        print(f"## {name}", flush=True)
        shared, own = run(bq.PROBLEMS[name](args.data, False)[0], seeds)
        for label, scores in (("shared best epoch", shared), ("each task's own", own)):
            print(f"{label:18s} " + "  ".join(f"{t} {s:.3f}" for t, s in scores.items()))


if __name__ == "__main__":
    main()
