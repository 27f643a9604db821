"""The blend's calibration on the README's audio-visual digits: with it and without it.

``KFoldEnsemble(<the README pipeline>, blend="forest")`` on ``load_av_digits()`` (the image
and audio blocks, one forest per modality), fitted twice with the same seeds: as the
library does it (each part's class probabilities calibrated by a temperature chosen on the
out-of-fold rows before the share is chosen) and with calibration switched off (every
temperature 1, as before calibration existed). It prints, per task, the out-of-fold
accuracy of the networks and of the forests, the networks' share and the temperatures, and
the accuracy on the test split with every modality, with half and with all of the audio
missing.

Usage::

    python benchmarks/bench_blend_calibration.py                 # seed 0, 10 epochs
    python benchmarks/bench_blend_calibration.py --seeds 0,1,2 --epochs 10
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from unittest import mock

import torch
from sklearn.pipeline import make_pipeline

from sklearn_mtml import (
    AudioFeatures,
    ImageFeatures,
    KFoldEnsemble,
    ModalityFusion,
    MultiTaskNet,
)
from sklearn_mtml import ensemble as ensemble_module
from sklearn_mtml.datasets import load_av_digits


def readme_pipeline(seed: int, epochs: int):
    """The README's multi-modal recipe."""
    return make_pipeline(
        ModalityFusion([("image", ImageFeatures(output="tensor"), "image"),
                        ("audio", AudioFeatures(sr=8000, backend="torch"), "audio")]),
        MultiTaskNet(loss_weights={"accent": 0.5}, max_epochs=epochs, random_state=seed),
    )


def run(seed: int, epochs: int, calibrated: bool, data) -> None:
    X_train, Y_train, X_test, Y_test = data
    model = KFoldEnsemble(readme_pipeline(seed, epochs), random_state=seed, blend="forest")
    switch = (contextlib.nullcontext() if calibrated  # off: every temperature 1
              else mock.patch.object(ensemble_module, "_fit_temperature", lambda *a: 1.0))
    start = time.perf_counter()
    with switch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train, Y_train)
    seconds = time.perf_counter() - start
    tests = {"complete": X_test}
    half = X_test.copy()
    half.loc[half.index[::2], "audio"] = None
    tests["audio 50% missing"] = half
    none = X_test.copy()
    none["audio"] = None
    tests["audio 100% missing"] = none
    scores = {cond: model.score_tasks(X, Y_test) for cond, X in tests.items()}
    label = "calibrated" if calibrated else "uncalibrated"
    print(f"\n### seed {seed}, {label} (fit {seconds:.0f} s)\n")
    print("| task | OOF networks | OOF forests | networks' share | temperatures (net / forest) "
          "| " + " | ".join(tests) + " |")
    print("|---|---:|---:|---:|---|" + "---:|" * len(tests))
    for task in model.task_names_:
        oof = model.oof_scores_[task]
        t = model.blend_temperatures_[task]
        cells = " | ".join(f"{scores[c][task]:.3f}" for c in tests)
        print(f"| {task} | {oof['networks']:.3f} | {oof['model']:.3f} | "
              f"{model.blend_weights_[task]:.2f} | {t['networks']} / {t['model']} | {cells} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="network seeds (default 0)")
    parser.add_argument("--epochs", type=int, default=10,
                        help="max_epochs of the README example (default 10)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, Y, split = load_av_digits()
    data = (X[split == "train"], Y[split == "train"], X[split == "test"].copy(),
            Y[split == "test"])
    print(f"# bench_blend_calibration: README pipeline, {args.epochs} epochs; "
          f"{len(data[0])} training and {len(data[2])} test rows")
    for seed in (int(s) for s in args.seeds.split(",")):
        for calibrated in (False, True):
            run(seed, args.epochs, calibrated, data)


if __name__ == "__main__":
    main()
