"""One network against ``KFoldEnsemble`` of it, on inner validation splits only.

For each data set of ``bench_quality.py``, each outer fold's *training part* is split 75/25
(the outer test parts are never read); the README pipeline (``MultiTaskNet(random_state=seed)``
after the documented feature step) and ``KFoldEnsemble(<that pipeline>, cv=K,
random_state=seed)`` are fitted on the 75 % and scored on the 25 %. This is how the ensemble's
use was judged before ``bench_quality.py --parts ensemble`` read any test split.

Usage::

    python benchmarks/bench_ensemble.py                                  # small sets, seeds 0-1
    python benchmarks/bench_ensemble.py --datasets reviews,enb --seeds 0 --cv 3
    python benchmarks/bench_ensemble.py --datasets jura --n-jobs 2      # members in parallel
    python benchmarks/bench_ensemble.py --datasets reviews --reviews-rows 16000 --seeds 0
    python benchmarks/bench_ensemble.py --blend forest,linear           # + blended ensembles

Per data set it prints the mean validation score of every task (accuracy or R²) over outer
folds and seeds, for the single network and the ensemble, the difference, and the fit times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402

from sklearn_mtml import KFoldEnsemble  # noqa: E402

SMALL = ("diabetes", "linnerud", "wine", "breast_cancer", "digits_mt", "jura", "emotions",
         "enb")


def scores(prob, model, X_val, y_val) -> list[float]:
    """Per task, the validation metric of the pipeline ``model``'s last step.

    ``X_val`` went through the feature steps already (``bq.inner_validation_fits``).
    """
    pred = np.asarray(model[-1].predict(X_val), dtype=object).reshape(len(X_val), -1)
    Y = y_val.to_frame() if y_val.ndim == 1 else y_val
    return [bq.metric(bq.kind_of(prob.Y[t]), Y.iloc[:, i], pred[:, i])
            for i, t in enumerate(prob.tasks)]


def run(prob, seeds, cv, n_jobs=None, blends=()) -> None:
    ensemble = f"KFoldEnsemble(cv={cv})"
    builds = {
        "one network": lambda s: bq.make_lib(prob, s),
        ensemble: lambda s: make_pipeline(
            KFoldEnsemble(bq.make_lib(prob, s), cv=cv, random_state=s, n_jobs=n_jobs)),
    }
    for blend in blends:
        builds[f"blend={blend!r}"] = lambda s, blend=blend: make_pipeline(KFoldEnsemble(
            bq.make_lib(prob, s), cv=cv, random_state=s, n_jobs=n_jobs,
            blend=bq.blend_for(prob, blend)))
    results: dict[str, list] = {label: [] for label in builds}
    shares: dict[str, list] = {label: [] for label in builds}
    seconds = dict.fromkeys(results, 0.0)
    for label, build in builds.items():
        t0 = time.perf_counter()
        for _, _, model, X_val, y_val in bq.inner_validation_fits(prob, seeds, build):
            results[label].append(scores(prob, model, X_val, y_val))
            if hasattr(model[-1], "blend_weights_"):
                shares[label].append([model[-1].blend_weights_[t] for t in prob.tasks])
        seconds[label] = time.perf_counter() - t0
    print(f"\n### {prob.name} ({len(prob.splits)} outer fold(s) x {len(seeds)} seed(s))\n")
    print("| model | " + " | ".join(prob.tasks) + " | mean | fit s |")
    print("|---|" + "---:|" * (len(prob.tasks) + 2))
    means = {}
    for label, rows in results.items():
        m = np.mean(rows, axis=0)
        means[label] = m
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in m)
              + f" | {np.mean(m):.3f} | {seconds[label]:.0f} |")
    one, t_one = means["one network"], max(seconds["one network"], 1e-9)
    for label in list(builds)[1:]:
        gain = means[label] - one
        print(f"| {label} − one | " + " | ".join(f"{v:+.3f}" for v in gain)
              + f" | {np.mean(gain):+.3f} | ×{seconds[label] / t_one:.1f} |")
    for label, rows in shares.items():
        if rows:
            print(f"| networks' share, {label} | " + " | ".join(
                f"{v:.2f}" for v in np.mean(rows, axis=0)) + " | | |")
    sys.stdout.flush()


def main(argv=None) -> None:
    default = os.environ.get("SKLEARN_MTML_DATA", str(bq.ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default, help="folder of the real data sets")
    parser.add_argument("--datasets", default=",".join(SMALL))
    parser.add_argument("--seeds", default="0,1", help="network seeds (default 0,1)")
    parser.add_argument("--cv", type=int, default=5, help="folds of the ensemble (default 5)")
    parser.add_argument("--reviews-rows", type=int, default=bq.REVIEWS_ROWS,
                        help=f"rows drawn from the reviews (default {bq.REVIEWS_ROWS}, "
                             "as bench_quality.py)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="KFoldEnsemble's n_jobs: members fitted in parallel processes")
    parser.add_argument("--blend", default="",
                        help="comma-separated KFoldEnsemble blends to add (forest, boosting, "
                             "linear); on the reviews, bench_quality.blend_for's pipelines")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    bq.REVIEWS_ROWS = args.reviews_rows
    print(f"# bench_ensemble: seeds {seeds}; cv={args.cv}; torch {torch.__version__}, 1 thread")
    for name in args.datasets.split(","):
        for prob in bq.PROBLEMS[name](Path(args.data), False):
            if prob.name == "fsdd-take":
                continue  # its inner splits are those of fsdd-loso's training speakers
            run(prob, seeds, args.cv, args.n_jobs,
                [b for b in args.blend.split(",") if b])


if __name__ == "__main__":
    main()
