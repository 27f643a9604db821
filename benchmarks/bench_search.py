"""Loss-weight search: ``GridSearchCV`` against ``LossWeightSearchCV``, in one process.

The same 9-candidate loss-weight grid (3 weights for the regression task × 3 for the
multi-class task) is cross-validated on 3 folds of a 3-task synthetic problem (a binary, a
regression and a 5-class task from 20 features, some labels missing), with ``MultiTaskNet``'s
defaults (automatic epochs, early stopping) and ``random_state=0``, by

- ``GridSearchCV`` (27 separate fits, one after the other),
- ``GridSearchCV(n_jobs=2)`` (the same fits on 2 worker processes),
- ``LossWeightSearchCV`` (3 stacked passes of 9 networks each).

It prints each search's time, the time ratios to ``GridSearchCV``, the best score and
parameters of each, and the largest difference of a per-fold score between the two searches.
``refit=False``: the searches are timed, not the final fit (the same for both).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_search.py
    OMP_NUM_THREADS=2 python benchmarks/bench_search.py --n 3000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.model_selection import LossWeightSearchCV

WEIGHTS = (0.25, 1.0, 4.0)


def make_data(n: int, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d, 3) / np.sqrt(d)
    z = X @ w
    y_bin = (z[:, 0] + 0.5 * rng.randn(n) > 0).astype(float)
    y_reg = z[:, 1] + np.sin(2 * X[:, 0]) + 0.3 * rng.randn(n)
    y_cls = np.digitize(z[:, 2] + 0.3 * rng.randn(n),
                        np.quantile(z[:, 2], [0.2, 0.4, 0.6, 0.8])).astype(float)
    Y = np.column_stack([y_bin, y_reg, y_cls])
    Y[rng.rand(n) < 0.1, 1] = np.nan  # some regression labels are missing
    return X, Y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="rows")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--max-epochs", default="auto", help="'auto' or an int")
    parser.add_argument("--skip-parallel", action="store_true",
                        help="skip GridSearchCV(n_jobs=2)")
    args = parser.parse_args()

    X, Y = make_data(args.n)
    max_epochs = args.max_epochs if args.max_epochs == "auto" else int(args.max_epochs)
    net = MultiTaskNet(tasks=["binary", "regression", "multiclass"], max_epochs=max_epochs,
                       random_state=0)
    grid = {"loss_weights": [[1.0, a, b] for a in WEIGHTS for b in WEIGHTS]}
    cv = KFold(args.folds, shuffle=True, random_state=0)
    print(f"{args.n} rows, {len(grid['loss_weights'])} candidates x {args.folds} folds, "
          f"torch threads {torch.get_num_threads()}")

    searches = {
        "GridSearchCV": GridSearchCV(net, grid, cv=cv, refit=False),
        "GridSearchCV(n_jobs=2)": GridSearchCV(net, grid, cv=cv, refit=False, n_jobs=2),
        "LossWeightSearchCV": LossWeightSearchCV(net, grid, cv=cv, refit=False),
    }
    if args.skip_parallel:
        del searches["GridSearchCV(n_jobs=2)"]
    times = {}
    for name, search in searches.items():
        start = time.perf_counter()
        search.fit(X, Y)
        times[name] = time.perf_counter() - start

    ref = times["GridSearchCV"]
    print(f"{'search':<24} {'time (s)':>9} {'ratio':>7}  best score  best loss_weights")
    for name, search in searches.items():
        print(f"{name:<24} {times[name]:9.1f} {times[name] / ref:7.3f}  "
              f"{search.best_score_:10.4f}  {search.best_params_['loss_weights']}")
    grid_res = searches["GridSearchCV"].cv_results_
    ours = searches["LossWeightSearchCV"].cv_results_
    diff = max(np.abs(grid_res[f"split{k}_test_score"] - ours[f"split{k}_test_score"]).max()
               for k in range(args.folds))
    print(f"largest per-fold score difference, GridSearchCV vs LossWeightSearchCV: {diff:.2e}")
    print(f"LossWeightSearchCV / GridSearchCV time: {times['LossWeightSearchCV'] / ref:.3f} "
          f"({ref / times['LossWeightSearchCV']:.1f}x faster)")


if __name__ == "__main__":
    main()
