"""The demo: ``python -m sklearn_mtml.demo``.

Part 1, audio-visual digits: spoken digits (an FSDD subset shipped with the package) paired
with images of the same digit (scikit-learn's bundled digits); tasks digit, speaker and accent;
per-task test scores of image-only, audio-only and fused multi-task networks, and of the fused
model when a share of test rows lack their audio.

Part 2, clothing reviews: one multi-task network on 3,000 real reviews (text + tabular inputs;
four tasks of three kinds, with missing labels) beside simple baselines and single-task
networks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

__all__ = ["av_digits_demo", "main", "reviews_demo"]


def _print_table(title: str, rows: dict[str, dict[str, float]], tasks: list[str]) -> None:
    print(f"\n{title}")
    width = max(len(r) for r in rows) + 2
    print("model".ljust(width) + "".join(t[:22].rjust(24) for t in tasks))
    for name, scores in rows.items():
        cells = "".join(f"{scores[t]:24.3f}" if t in scores else "-".rjust(24)
                        for t in tasks)
        print(name.ljust(width) + cells)


def av_digits_demo(max_epochs: int = 60, seed: int = 0) -> dict[str, dict[str, float]]:
    """Image-only, audio-only and fused multi-task networks on the audio-visual digits.

    Train on FSDD takes 5–9, test on takes 0–4 (the data set's own split). Returns per-task
    test accuracy per model.
    """
    from sklearn.pipeline import make_pipeline

    from sklearn_mtml import AudioFeatures, ImageFeatures, ModalityFusion, MultiTaskNet
    from sklearn_mtml.datasets import load_av_digits

    X, Y, split = load_av_digits(as_frame=False, random_state=seed)
    tr, te = split == "train", split == "test"
    tasks = {"digit": "multiclass", "speaker": "multiclass", "accent": "multiclass"}
    names = list(tasks)
    Ymat = np.column_stack([Y[t] for t in names]).astype(object)

    def rows(idx):
        return {"image": X["image"][idx], "audio": X["audio"][idx]}

    def net(**extra):
        return MultiTaskNet(tasks=tasks, max_epochs=max_epochs, lr=2e-3, batch_size=32,
                            random_state=seed, module__hidden_sizes=(128,),
                            module__tower_sizes=(64,), module__dropout=0.2,
                            optimizer__weight_decay=1e-2, **extra)

    def features():
        return [("image", ImageFeatures(normalize="standard"), "image"),
                ("audio", AudioFeatures(sr=8000, features=("mfcc", "delta", "logmel")),
                 "audio")]

    models = {
        "image only": make_pipeline(ModalityFusion(features()[:1]), net()),
        "audio only": make_pipeline(ModalityFusion(features()[1:]), net()),
        "fused (attention)": make_pipeline(
            ModalityFusion(features()), net(fusion="attention", module__modality_dropout=0.2)),
    }
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(_frame_or_dict(rows(tr)), Ymat[tr])
        results[name] = model[-1].score_tasks(model[0].transform(_frame_or_dict(rows(te))),
                                              Ymat[te])
        results[name]["fit s"] = time.perf_counter() - start
    fused = models["fused (attention)"]
    for share in (0.5, 1.0):
        test = rows(te)
        audio = test["audio"].copy()
        hidden = np.random.RandomState(seed).rand(len(audio)) < share
        audio[hidden] = None
        test["audio"] = audio
        results[f"fused, {share:.0%} of test audio missing"] = fused[-1].score_tasks(
            fused[0].transform(_frame_or_dict(test)), Ymat[te])
    _print_table("Audio-visual digits: FSDD takes 5-9 train (300), takes 0-4 test (300); "
                 "test accuracy per task", results, [*names, "fit s"])
    return results


def _frame_or_dict(columns: dict):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - ModalityFusion then needs integer columns
        return columns
    return pd.DataFrame(columns)


def reviews_demo(max_epochs: int = 30, seed: int = 0) -> dict[str, dict[str, float]]:
    """Multi-task network on the shipped reviews; return per-task test scores per model.

    Inputs: TF-IDF + SVD of the title and review text, age and division (one-hot). Tasks:
    ``Rating`` (5 classes), ``Recommended IND`` (binary), ``Department Name`` (6 classes,
    2 missing labels) and ``log1p(Positive Feedback Count)`` (regression). Scores: accuracy
    for classification, R² for regression, on a 25% test split.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import TruncatedSVD
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    from sklearn_mtml import MultiTaskNet
    from sklearn_mtml.datasets import load_reviews
    from sklearn_mtml.tasks import is_missing

    X, Y = load_reviews(as_frame=False)
    text = np.array([" ".join(s for s in (t, r) if s) for t, r in
                     zip(X["Title"], X["Review Text"])], dtype=object)
    table = np.column_stack([text, X["Age"], np.where(is_missing(X["Division Name"]), "none",
                                                       X["Division Name"])])
    Y["Positive Feedback Count"] = np.log1p(Y["Positive Feedback Count"])
    tasks = {"Rating": "multiclass", "Recommended IND": "binary",
             "Department Name": "multiclass", "Positive Feedback Count": "regression"}
    names = list(tasks)
    Ymat = np.empty((len(text), len(names)), dtype=object)
    for j, name in enumerate(names):
        Ymat[:, j] = Y[name]
    tr, te = train_test_split(np.arange(len(text)), test_size=0.25, random_state=seed)
    features = ColumnTransformer([
        ("text", make_pipeline(TfidfVectorizer(min_df=2, sublinear_tf=True, ngram_range=(1, 2)),
                               TruncatedSVD(128, random_state=seed), StandardScaler()), 0),
        ("age", make_pipeline(FunctionTransformer(lambda a: np.asarray(a, dtype=float)),
                              StandardScaler()), [1]),
        ("division", OneHotEncoder(handle_unknown="ignore"), [2]),
    ], sparse_threshold=0)
    Xtr = features.fit_transform(table[tr])
    Xte = features.transform(table[te])

    def labelled(j, idx):
        return ~is_missing(Ymat[idx, j])

    results: dict[str, dict[str, float]] = {}
    base = {}
    for j, name in enumerate(names):
        m_tr, m_te = labelled(j, tr), labelled(j, te)
        dummy = DummyRegressor() if tasks[name] == "regression" else DummyClassifier()
        y_tr = Ymat[tr][m_tr, j].astype(float if tasks[name] == "regression" else str)
        y_te = Ymat[te][m_te, j].astype(float if tasks[name] == "regression" else str)
        base[name] = dummy.fit(Xtr[m_tr], y_tr).score(Xte[m_te], y_te)
    results["majority / mean"] = base

    common = {"max_epochs": max_epochs, "lr": 1e-3, "batch_size": 64, "random_state": seed,
              "module__hidden_sizes": (256,), "module__tower_sizes": (64,),
              "module__dropout": 0.3, "optimizer__weight_decay": 1e-2}
    single = {}
    for j, name in enumerate(names):
        net = MultiTaskNet(tasks={name: tasks[name]}, **common)
        net.fit(Xtr, Ymat[tr, j])
        single[name] = net.score_tasks(Xte, Ymat[te, j])[name]
    results["single-task networks"] = single

    start = time.perf_counter()
    net = MultiTaskNet(tasks=tasks, **common).fit(Xtr, Ymat[tr])
    seconds = time.perf_counter() - start
    results["multi-task network"] = net.score_tasks(Xte, Ymat[te])
    _print_table(f"Clothing reviews: 2,250 train / 750 test rows; accuracy or R² per task "
                 f"(multi-task fit {seconds:.1f} s on {net.device_})", results, names)
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the demo from the command line."""
    parser = argparse.ArgumentParser(prog="python -m sklearn_mtml.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=0,
                        help="training epochs (default: 60 for part 1, 30 for part 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=["all", "av-digits", "reviews"], default="all")
    args = parser.parse_args(argv)
    if args.part in ("all", "av-digits"):
        av_digits_demo(args.epochs if args.epochs else 60, args.seed)
    if args.part in ("all", "reviews"):
        reviews_demo(args.epochs if args.epochs else 30, args.seed)


if __name__ == "__main__":
    main()
