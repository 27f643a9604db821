"""Numeric columns as numbers or piecewise-linearly encoded: which helps the network where.

A network reads a numeric column as one standardised input; a tree splits it into ranges.
scikit-learn's ``SplineTransformer(degree=1, knots="quantile")`` (a piecewise-linear encoding,
one feature per knot) lets the network split too. This benchmark measures, on **inner
validation splits of each outer fold's training part only** (the test parts of
``bench_quality.py`` are never read), the README default network with the numeric columns

* ``raw``: as they are (the default);
* ``spline``: every numeric column encoded (``n_knots`` knots on its quantiles);
* ``raw+spline``: both side by side;

and, on the clothing reviews, the ``bench_quality.py`` recipe with Age only as a number
(``reviews-raw``) against Age and the Clothing ID encoded (``reviews-spline``, the recipe
``bench_quality.py`` uses; the ID stays a category too).

Usage::

    python benchmarks/bench_numeric_encoding.py                       # all, seeds 0-1
    python benchmarks/bench_numeric_encoding.py --datasets jura,enb --seeds 0,1,2

Per data set and variant it prints the mean inner-validation score of every task (accuracy
or R²) over outer folds and seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import FunctionTransformer, make_pipeline, make_union
from sklearn.preprocessing import SplineTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # noqa: E402

from sklearn_mtml import ModalityFusion, MultiTaskNet  # noqa: E402
from sklearn_mtml.features import CategoricalFeatures, TextFeatures  # noqa: E402

TABULAR = ("diabetes", "jura", "enb", "emotions")


def encoding(variant: str, n_knots: int):
    """The feature step for a tabular variant (``None``: the raw columns)."""
    spline = SplineTransformer(degree=1, n_knots=n_knots, knots="quantile")
    if variant == "raw":
        return None
    if variant == "spline":
        return spline
    return make_union(FunctionTransformer(), spline)


def reviews_steps(variant: str, n_knots: int):
    """``bench_quality.py``'s reviews recipe, with or without the encoded numbers."""
    if variant == "raw":
        numbers = ("tabular", "passthrough", ["age"])
    else:
        numbers = ("tabular", SplineTransformer(degree=1, n_knots=n_knots, knots="quantile"),
                   ["age", "clothing_id"])
    return [ModalityFusion([("text", TextFeatures(), "text"), numbers,
                            ("categorical", CategoricalFeatures(),
                             ["clothing_id", "division"])])]


def inner_scores(prob, steps_for, seeds) -> dict[str, float]:
    """Mean inner-validation score per task over outer folds and seeds."""
    scores: dict[str, list[float]] = {t: [] for t in prob.Y.columns}

    def build(seed):
        steps = [s for s in steps_for() if s is not None]
        return make_pipeline(*steps, MultiTaskNet(random_state=seed))

    for _, _, model, X_val, y_val in bq.inner_validation_fits(prob, seeds, build):
        got = model[-1].score_tasks(X_val, y_val)
        for t in scores:
            scores[t].append(got[t])
    return {t: float(np.mean(v)) for t, v in scores.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.environ.get("SKLEARN_MTML_DATA", str(bq.ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--datasets", default=",".join((*TABULAR, "reviews")))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--knots", type=int, default=16,
                        help="knots per column for the tabular sets (the reviews use 24)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# bench_numeric_encoding: seeds {seeds}; inner 75/25 splits of each outer "
          "fold's training part")
    for name in args.datasets.split(","):
        prob = bq.PROBLEMS[name](args.data, False)[0]
        if name == "reviews":
            variants = {f"reviews-{v}": (lambda v=v: reviews_steps(v, 24))
                        for v in ("raw", "spline")}
        else:
            variants = {v: (lambda v=v: [encoding(v, args.knots)])
                        for v in ("raw", "spline", "raw+spline")}
        for label, steps_for in variants.items():
            start = time.perf_counter()
            got = inner_scores(prob, steps_for, seeds)
            cells = "  ".join(f"{t} {s:.3f}" for t, s in got.items())
            print(f"{name:9s} {label:15s} {cells}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
