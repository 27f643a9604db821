"""Quality of the library's defaults against the best simple baseline, on real data.

For every task of every data set below, with a fixed protocol, the script reports

* **best simple baseline**: per task, the best of a linear model (``LogisticRegression`` /
  ``RidgeCV``, after a ``StandardScaler``), ``HistGradientBoosting`` and ``RandomForest``
  (default settings, ``random_state=0``), *chosen by a cross-validation score on the training
  part only* (the inner CV below); the column "best on test" shows, for information only, the
  candidate that happened to score best on the test split (never used for a verdict);
* **README default**: the library exactly as the README writes it: ``MultiTaskNet(
  random_state=seed)`` (``tasks=None``, no scaler), after the documented feature step
  (``ModalityFusion`` with ``TextFeatures`` / ``ImageFeatures`` / ``AudioFeatures``) where the
  inputs are raw, fitted on all tasks of the data set at once (1-D ``y`` for single-task sets);
* **single-task defaults**: one ``MultiTaskNet(random_state=seed)`` per task (rows with a label
  for that task), for the per-task gain or loss of multi-task training (shown as "MTL − STL");
* **library + small search**: ``GridSearchCV`` over the pipeline, on the training part only
  (inner CV), over at most six documented candidates (``SEARCH`` below; ``--quick``: the first
  two, and no search above 1,500 training rows), scored by ``MultiTaskNet.score`` (the mean of
  the per-task accuracies / R²);
* with ``--parts ensemble`` / ``blend``: ``KFoldEnsemble(<README pipeline>,
  random_state=seed)``, and the same with a random forest blended in per task
  (``blend_for``).

Metrics: accuracy for classification, R² for regression, computed on the test predictions of
all outer folds pooled (out-of-fold predictions: a 4-row test fold of linnerud has no
meaningful R² of its own), then averaged over ``--seeds`` (network seeds; the baselines are
fitted once with ``random_state=0``). ``--quick`` keeps only the first outer fold.

Verdict of the README default against the CV-chosen baseline: **win** if better by more than
0.01 accuracy / 0.02 R², **loss** if worse by more than that, else **tie**. The issue's
targets: no loss (every task within the tolerance or better), wins on at least half of the
tasks, and the fused default at least as good as the best single-modality default.

Data sets and protocols (``--datasets``; real data from ``--data``, ``$SKLEARN_MTML_DATA`` or
``../shared/data`` next to the repository):

* scikit-learn bundled sets (plain numeric features, no feature step):
  ``diabetes`` (regression; 5-fold ``KFold``), ``linnerud`` (3 regression targets, 20 rows;
  5-fold ``KFold``), ``digits`` (8x8 pixels as 64 features, 10 classes; stratified 75/25
  split), ``digits_mt`` (a multi-task view of the same split: digit, parity, digit >= 5),
  ``wine`` and ``breast_cancer`` (stratified 75/25 split each).
* ``enb`` (2 regression targets) and ``jura`` (3) from Mulan: 5-fold ``KFold``; ``emotions``
  (6 binary labels): Mulan's own train/test split.
* ``reviews``: women's e-commerce clothing reviews, a fixed subsample of 4,000 rows (all rows
  without a department, the rest at random, seed 0; ``--quick``: 1,500), 75/25 split. Inputs:
  text (Title + Review Text; None when both are missing: a masked modality), Age, Clothing ID
  and Division Name. Tasks: rating (5 classes), recommended (binary), department (6 classes,
  missing labels kept as NaN), log1p(positive feedback count) (regression). Library:
  ``ModalityFusion([("text", TextFeatures(), "text"), ("tabular", "passthrough", ["age"]),
  ("categorical", CategoricalFeatures(), ["clothing_id", "division"])])`` (the identifier
  and the category as token ids, embedded by the network). Baselines: TF-IDF (+ one-hot
  division + standardised age and Clothing ID as a number) for the linear model; TF-IDF ->
  100-d SVD + one-hot division + age and Clothing ID as numbers for the trees.
* ``fsdd``: FSDD recordings paired with MNIST images of the same digit (``load_av_digits`` of
  ``bench_fusion.py``); tasks digit, speaker, accent. Library: ``ModalityFusion([("image",
  ImageFeatures(), "image"), ("audio", AudioFeatures(sr=8000), "audio")])`` ->
  ``MultiTaskNet``. The feature transformers are stateless (pixels scaled to [0, 1], MFCC
  statistics), so their output is computed once and sliced per fold, which gives the same
  numbers as refitting the pipeline in every fold. Two protocols:

  - ``fsdd-loso``: **leave one speaker out** (6 folds; ``--quick``: 1). The networks train on
    the three tasks of the training speakers; only the digit is evaluated (the speaker and the
    accent of an unseen speaker cannot be predicted). Inner CV grouped by speaker.
  - ``fsdd-take``: the dataset's own split (takes 0-4 test, 5-49 train), all three tasks; the
    place for speaker and accent, single modalities (the same default network on the image
    block or the audio block only) and **missing modalities at predict time**: 50 % and 100 %
    of the test rows lose their audio (set to ``None`` before the fitted ``ModalityFusion``),
    or their image. Baselines there: LogisticRegression on the concatenated features
    (``ModalityFusion(..., output="concat")``; an absent modality is zeros) and the library's
    ``LateFusionClassifier(LogisticRegression())`` (one model per modality, combined over the
    modalities each row has).
* ``mnist``: 600 train / 1,000 test images of ``mnist_test10k.npz`` (fixed draw, seed 0). The
  README image recipe ``ModalityFusion([("image", ImageFeatures(output="tensor"), "image")])``
  -> ``MultiTaskNet`` (CNN encoder) against the baselines on the 784 pixels.

Inner CV (baseline choice and search, training part only): 3-fold (stratified for a single
classification task, grouped by speaker for ``fsdd-loso``) when the training part has at most
1,500 rows; a single 80/20 hold-out split above that (affordability).

    python benchmarks/bench_quality.py --seeds 0             # full run (~25 min, 2 cores)
    python benchmarks/bench_quality.py --quick               # smoke run (see docs/quality.md)
    python benchmarks/bench_quality.py --datasets diabetes,enb --seeds 0,1,2 --json out.json

One failing model prints an error row (``ERR``) instead of stopping the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn import datasets as skdata
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_fusion import hide, load_av_digits  # noqa: E402
from bench_mtl import _read_arff, sample_reviews  # noqa: E402

from sklearn_mtml import (  # noqa: E402
    AudioFeatures,
    CategoricalFeatures,
    ImageFeatures,
    KFoldEnsemble,
    LateFusionClassifier,
    ModalityBlocks,
    ModalityFusion,
    MultiTaskNet,
    TextFeatures,
)

#: Tolerance of a tie: accuracy points / R².
TOL = {"classification": 0.01, "regression": 0.02}

#: "library + small search": candidates (parameters of the MultiTaskNet step), first = defaults.
SEARCH = [
    {},
    {"lr": 3e-3},
    {"module__dropout": 0.3, "optimizer__weight_decay": 1e-2},
    {"lr": 3e-4},
    {"module__hidden_sizes": (64,), "module__tower_sizes": (32,)},
    {"module__hidden_sizes": (512, 256), "module__dropout": 0.2},
]
#: The optional columns: single-task defaults, the search, the k-fold ensemble, and the
#: k-fold ensemble with a random forest blended in (``KFoldEnsemble(blend=...)``).
PARTS = ("single", "search")
ALL_PARTS = ("single", "search", "ensemble", "blend")
#: The two k-fold ensemble columns: part -> title.
ENSEMBLES = {"ensemble": "k-fold ensemble", "blend": "k-fold ensemble + forest blend"}
BIG = 1500  # training rows above which the inner CV is a single hold-out split
REVIEWS_ROWS = 4000


# ------------------------------------------------------------------------------------------
# problems
# ------------------------------------------------------------------------------------------
@dataclass
class Problem:
    """One data set under one protocol."""

    name: str
    protocol: str
    X: Any                      # raw input of the library pipeline (array, DataFrame, blocks)
    Y: pd.DataFrame             # one column per task (NaN = no label)
    splits: list                # outer (train_idx, test_idx)
    lib_steps: Callable[[], list] = list      # feature steps before MultiTaskNet
    base_features: Callable | None = None     # (X_tr, X_te) -> {"linear": (A, B), "tree": ..}
    groups: np.ndarray | None = None
    eval_tasks: list | None = None            # tasks scored (default: all)
    extra: dict = field(default_factory=dict)

    @property
    def tasks(self):
        return list(self.Y.columns)

    @property
    def scored(self):
        return self.eval_tasks or self.tasks


def kind_of(col: pd.Series) -> str:
    """Metric family of a task column, as the benchmark scores it."""
    v = col.dropna()
    if pd.api.types.is_bool_dtype(v) or not pd.api.types.is_numeric_dtype(v):
        return "classification"
    return "classification" if pd.api.types.is_integer_dtype(v) else "regression"


def _kfold(n, k=5, seed=0):
    return list(KFold(k, shuffle=True, random_state=seed).split(np.arange(n)))


def _strat(y, seed=0, test_size=0.25):
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return [(np.sort(tr), np.sort(te))]


def numeric_base(X_tr, X_te):
    A, B = np.asarray(X_tr, dtype=float), np.asarray(X_te, dtype=float)
    return {"linear": (A, B), "tree": (A, B)}


def p_diabetes(root, quick):
    X, y = skdata.load_diabetes(return_X_y=True)
    Y = pd.DataFrame({"progression": y})
    return [Problem("diabetes", "5-fold KFold", X, Y, _kfold(len(X)),
                    base_features=numeric_base)]


def p_linnerud(root, quick):
    d = skdata.load_linnerud()
    Y = pd.DataFrame(d.target, columns=[c.lower() for c in d.target_names])
    return [Problem("linnerud", "5-fold KFold", d.data, Y, _kfold(len(Y)),
                    base_features=numeric_base)]


def _single_class_task(name, loader, task):
    """A bundled single-task classification set on a stratified 75/25 split."""
    def problem(root, quick):
        X, y = loader(return_X_y=True)
        return [Problem(name, "stratified 75/25", X, pd.DataFrame({task: y}), _strat(y),
                        base_features=numeric_base)]
    return problem


p_digits = _single_class_task("digits", skdata.load_digits, "digit")
p_wine = _single_class_task("wine", skdata.load_wine, "cultivar")
p_breast_cancer = _single_class_task("breast_cancer", skdata.load_breast_cancer, "malignant")


def p_digits_mt(root, quick):
    X, y = skdata.load_digits(return_X_y=True)
    Y = pd.DataFrame({"digit": y, "even": (y % 2 == 0).astype(int),
                      "ge5": (y >= 5).astype(int)})
    return [Problem("digits_mt", "stratified 75/25 (digit)", X, Y, _strat(y),
                    base_features=numeric_base)]


def _mulan(root, name, n_targets):
    df = _read_arff(root / "mulan" / f"{name}.arff")
    X = df.iloc[:, :-n_targets].to_numpy(dtype=float)
    Y = df.iloc[:, -n_targets:].astype(float).reset_index(drop=True)
    return [Problem(name, "5-fold KFold", X, Y, _kfold(len(X)), base_features=numeric_base)]


def p_enb(root, quick):
    return _mulan(root, "enb", 2)


def p_jura(root, quick):
    return _mulan(root, "jura", 3)


def p_emotions(root, quick):
    tr = _read_arff(root / "mulan" / "emotions-train.arff")
    te = _read_arff(root / "mulan" / "emotions-test.arff")
    df = pd.concat([tr, te], ignore_index=True)
    labels = list(df.columns[-6:])
    X = df.iloc[:, :-6].to_numpy(dtype=float)
    Y = df[labels].astype(int)
    Y.columns = [c.replace("-", "_") for c in labels]
    split = [(np.arange(len(tr)), np.arange(len(tr), len(df)))]
    return [Problem("emotions", "Mulan's own train/test split", X, Y, split,
                    base_features=numeric_base)]


REVIEW_NUM = ["age", "clothing_id"]  # the baselines' numbers (trees split on the ID)


def reviews_base(X_tr, X_te):
    """TF-IDF (+ one-hot + scaled numbers) for the linear model; SVD + tabular for trees."""
    text_tr, text_te = X_tr["text"].fillna(""), X_te["text"].fillna("")
    tfidf = TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True)
    T_tr, T_te = tfidf.fit_transform(text_tr), tfidf.transform(text_te)
    ohe = OneHotEncoder(handle_unknown="ignore")
    O_tr = ohe.fit_transform(X_tr[["division"]].fillna("NA"))
    O_te = ohe.transform(X_te[["division"]].fillna("NA"))
    sc = StandardScaler()
    N_tr = sc.fit_transform(X_tr[REVIEW_NUM].to_numpy(float))
    N_te = sc.transform(X_te[REVIEW_NUM].to_numpy(float))
    lin = (sp.hstack([T_tr, O_tr, N_tr]).tocsr(), sp.hstack([T_te, O_te, N_te]).tocsr())
    svd = TruncatedSVD(100, random_state=0)
    S_tr, S_te = svd.fit_transform(T_tr), svd.transform(T_te)
    tree = (np.hstack([S_tr, O_tr.toarray(), X_tr[REVIEW_NUM].to_numpy(float)]),
            np.hstack([S_te, O_te.toarray(), X_te[REVIEW_NUM].to_numpy(float)]))
    return {"linear": lin, "tree": tree}


def p_reviews(root, quick):
    n_rows = 1500 if quick else REVIEWS_ROWS
    df = sample_reviews(root, n_rows)
    title, body = df["Title"], df["Review Text"]
    text = (title.fillna("") + " " + body.fillna("")).str.strip()
    text = text.where(title.notna() | body.notna(), None).astype(object)
    X = pd.DataFrame({"text": text, "age": df["Age"].astype(float),
                      "clothing_id": df["Clothing ID"].astype(int),
                      "division": df["Division Name"].astype(object)})
    Y = pd.DataFrame({
        "rating": df["Rating"].to_numpy(),
        "recommended": df["Recommended IND"].to_numpy(),
        "department": df["Department Name"].to_numpy(dtype=object),
        "feedback": np.log1p(df["Positive Feedback Count"].to_numpy(dtype=float)),
    })
    idx = np.arange(len(df))
    tr, te = train_test_split(idx, test_size=0.25, random_state=0)

    def steps():
        # Clothing ID is an identifier, Division Name a category: both are categorical (one
        # token-id block, one embedding per category). The ID is also a number whose ranges
        # mean something (the catalogue numbers a department's items together): like Age it
        # is given to the network piecewise-linearly encoded (scikit-learn's degree-1 spline
        # on quantile knots), which lets it split on ranges as a tree does and places IDs
        # never seen in training.
        return [ModalityFusion([
            ("text", TextFeatures(), "text"),
            ("tabular", SplineTransformer(degree=1, n_knots=24, knots="quantile"),
             ["age", "clothing_id"]),
            ("categorical", CategoricalFeatures(), ["clothing_id", "division"]),
        ])]

    return [Problem("reviews", f"{n_rows} rows, 75/25 split", X, Y,
                    [(np.sort(tr), np.sort(te))], lib_steps=steps,
                    base_features=reviews_base)]


def p_fsdd(root, quick):
    X, Y, test = load_av_digits(root)
    fusion = ModalityFusion([("image", ImageFeatures(), "image"),
                             ("audio", AudioFeatures(sr=8000), "audio")])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        B = fusion.fit_transform(X)      # stateless transformers: computed once, then sliced
    print(f"  fsdd features: {', '.join(f'{n} {B[n].shape[1:]}' for n in B.names)} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def base(B_tr, B_te):
        A, Bt = B_tr.concat(), B_te.concat()
        return {"linear": (A, Bt), "tree": (A, Bt)}

    speakers = Y["speaker"].to_numpy()
    names = sorted(set(speakers))
    held = names[:1] if quick else names
    loso = [(np.flatnonzero(speakers != s), np.flatnonzero(speakers == s)) for s in held]
    take = [(np.flatnonzero(~test), np.flatnonzero(test))]
    Y = Y.astype({"speaker": object, "accent": object})
    shares = (0.5, 1.0)
    Xte_raw = X.iloc[take[0][1]].reset_index(drop=True)
    missing = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, m in enumerate(("audio", "image")):
            for s in shares:
                missing[f"{m} {s:.0%} missing"] = fusion.transform(hide(Xte_raw, m, s, 1 + i))
    return [
        Problem("fsdd-loso", f"leave one speaker out ({len(loso)} of 6 speakers held out)",
                B, Y, loso, base_features=base, groups=speakers, eval_tasks=["digit"],
                extra={"modalities": ["image", "audio"]}),
        Problem("fsdd-take", "FSDD's own split (takes 0-4 test)", B, Y, take,
                base_features=base, extra={"modalities": ["image", "audio"],
                                           "missing": missing}),
    ]


def p_mnist(root, quick):
    with np.load(root / "mnist" / "mnist_test10k.npz") as d:
        images, labels = d["X"], d["y"]
    pick = np.random.RandomState(0).permutation(len(labels))[:1600]
    X = pd.DataFrame({"image": pd.Series(list(images[pick]), dtype=object)})
    Y = pd.DataFrame({"digit": labels[pick].astype(int)})

    def base(X_tr, X_te):
        A = np.stack(X_tr["image"].to_list()).reshape(len(X_tr), -1) / 255.0
        B = np.stack(X_te["image"].to_list()).reshape(len(X_te), -1) / 255.0
        return {"linear": (A, B), "tree": (A, B)}

    def steps():
        return [ModalityFusion([("image", ImageFeatures(output="tensor"), "image")])]

    return [Problem("mnist", "600 train / 1,000 test", X, Y,
                    [(np.arange(600), np.arange(600, 1600))], lib_steps=steps,
                    base_features=base)]


PROBLEMS = {
    "diabetes": p_diabetes, "linnerud": p_linnerud, "digits": p_digits,
    "digits_mt": p_digits_mt, "wine": p_wine, "breast_cancer": p_breast_cancer,
    "enb": p_enb, "jura": p_jura, "emotions": p_emotions, "reviews": p_reviews,
    "fsdd": p_fsdd, "mnist": p_mnist,
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def take(X, idx):
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[idx].reset_index(drop=True)
    if isinstance(X, ModalityBlocks):
        return X[idx]
    return X[idx]


def select(B: ModalityBlocks, names) -> ModalityBlocks:
    return ModalityBlocks({n: B[n] for n in names}, masks={n: B.masks[n] for n in names})


def labelled(col) -> np.ndarray:
    return ~pd.isna(pd.Series(col)).to_numpy()


def metric(kind, y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    keep = labelled(y_true)
    y_true, y_pred = y_true[keep], y_pred[keep]
    if kind == "regression":
        return float(r2_score(y_true.astype(float), y_pred.astype(float)))
    return float(np.mean(y_true.astype(str) == y_pred.astype(str)))


class BaselineFeatures(TransformerMixin, BaseEstimator):
    """A problem's baseline features (``Problem.base_features``) as a transformer.

    Fitted on the rows it is fitted on (TF-IDF, SVD, one-hot, scaler), it turns any rows into
    the ``family`` ("linear" or "tree") matrix the baselines read: what a blended model of
    ``KFoldEnsemble`` needs where ``X`` is text, images or blocks.
    """

    def __init__(self, base_features=None, family="tree"):
        self.base_features = base_features
        self.family = family

    def fit(self, X, y=None):
        self.X_fit_ = X
        return self

    def transform(self, X):
        return self.base_features(self.X_fit_, X)[self.family][1]


def blend_for(prob: Problem, name: str):
    """``KFoldEnsemble``'s ``blend`` for ``prob``: the shortcut ``name`` on a numeric ``X``
    or on blocks (``fsdd``: one model per block, combined over the blocks a row has), else
    one pipeline per task on the baselines' features (the trees' for ``"forest"`` and
    ``"boosting"``, the linear model's for ``"linear"``)."""
    if isinstance(prob.X, (np.ndarray, ModalityBlocks)):
        return name
    models = {
        "forest": (RandomForestClassifier, RandomForestRegressor),
        "boosting": (HistGradientBoostingClassifier, HistGradientBoostingRegressor),
    }
    blend = {}
    for task in prob.tasks:
        classify = kind_of(prob.Y[task]) == "classification"
        if name == "linear":
            model = (LogisticRegression(max_iter=2000) if classify
                     else RidgeCV(alphas=np.logspace(-3, 3, 13)))
        else:
            model = models[name][0 if classify else 1](random_state=0)
        family = "linear" if name == "linear" else "tree"
        blend[task] = make_pipeline(BaselineFeatures(prob.base_features, family), model)
    return blend


def as_target(Y: pd.DataFrame):
    """What a user passes: a 1-D y for one task, the DataFrame otherwise."""
    return Y.iloc[:, 0] if Y.shape[1] == 1 else Y


def predictions(model, X, tasks) -> dict:
    pred = np.asarray(model.predict(X), dtype=object)
    pred = pred.reshape(len(pred), -1)
    return {t: pred[:, i] for i, t in enumerate(tasks)}


def inner_cv(n_train, groups, classes=None, seed=0):
    """Inner CV of the training part: (cv, groups) for cross_val_score / GridSearchCV."""
    if groups is not None:
        if n_train > BIG:
            return GroupShuffleSplit(1, test_size=0.2, random_state=seed), groups
        return GroupKFold(3), groups
    if classes is not None:
        if n_train > BIG:
            return StratifiedShuffleSplit(1, test_size=0.2, random_state=seed), None
        return StratifiedKFold(3, shuffle=True, random_state=seed), None
    if n_train > BIG:
        return ShuffleSplit(1, test_size=0.2, random_state=seed), None
    return KFold(3, shuffle=True, random_state=seed), None


def baseline_candidates(kind, sparse_lin: bool, quick: bool) -> dict:
    scaler = StandardScaler(with_mean=not sparse_lin)
    trees = {"n_estimators": 50} if quick else {}
    hgb = {"max_iter": 50} if quick else {}
    if kind == "regression":
        return {
            "RidgeCV": ("linear", make_pipeline(scaler, RidgeCV(np.logspace(-3, 3, 13)))),
            "HGB": ("tree", HistGradientBoostingRegressor(random_state=0, **hgb)),
            "RF": ("tree", RandomForestRegressor(random_state=0, n_jobs=1, **trees)),
        }
    return {
        "LogReg": ("linear", make_pipeline(scaler, LogisticRegression(max_iter=2000))),
        "HGB": ("tree", HistGradientBoostingClassifier(random_state=0, **hgb)),
        "RF": ("tree", RandomForestClassifier(random_state=0, n_jobs=1, **trees)),
    }


def guarded(label, fn, errors):
    """Run fn(); on failure record a one-line error and return None."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failing model must not stop the run
        msg = f"{label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        errors.append(msg)
        print(f"    ERR {msg}", flush=True)
        if os.environ.get("BENCH_QUALITY_TRACEBACK"):
            traceback.print_exc()
        return None


# ------------------------------------------------------------------------------------------
# one problem
# ------------------------------------------------------------------------------------------
def run_baselines(prob, kinds, tr, te, errors, quick=False):
    """Per task: each candidate's inner-CV score (training part only) and test predictions."""
    Xtr, Xte = take(prob.X, tr), take(prob.X, te)
    feats = prob.base_features(Xtr, Xte)
    out = {}
    groups = prob.groups[tr] if prob.groups is not None else None
    for task in prob.scored:
        kind = kinds[task]
        y_all = prob.Y[task].to_numpy()
        ytr, yte = y_all[tr], y_all[te]
        keep = labelled(ytr)
        y = ytr[keep]
        if kind == "classification":
            y = y.astype(str)
        cv, g = inner_cv(keep.sum(), None if groups is None else groups[keep],
                         classes=y if kind == "classification" else None)
        cands = baseline_candidates(kind, sp.issparse(feats["linear"][0]), quick)
        res = {}
        for name, (family, est) in cands.items():
            A, B = feats[family]

            def one(est=est, A=A[keep], B=B, y=y, cv=cv, g=g, yte=yte):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cvs = float(np.mean(cross_val_score(clone(est), A, y, cv=cv, groups=g,
                                                        error_score="raise")))
                    fitted = clone(est).fit(A, y)
                    return {"cv": cvs, "pair": (yte, fitted.predict(B))}

            r = guarded(f"{prob.name}/{task}/{name}", one, errors)
            if r is not None:
                res[name] = r
        if res:
            out[task] = {"chosen": max(res, key=lambda n: res[n]["cv"]), "cands": res}
    return out


def inner_validation_fits(prob, seeds, build):
    """Fit ``build(seed)`` (a pipeline) on inner 75/25 splits of each outer training part.

    Yields ``(fold, seed, model, X_val, y_val)``, ``X_val`` already through the pipeline's
    feature steps: for exploring a choice without reading the outer test parts.
    """
    for k, (train, _) in enumerate(prob.splits):
        fit_rows, val_rows = train_test_split(train, test_size=0.25, random_state=k)
        y_fit = as_target(prob.Y.iloc[fit_rows].reset_index(drop=True))
        y_val = as_target(prob.Y.iloc[val_rows].reset_index(drop=True))
        for seed in seeds:
            model = build(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(take(prob.X, fit_rows), y_fit)
                X_val = take(prob.X, val_rows)
                if len(model) > 1:
                    X_val = model[:-1].transform(X_val)
            yield k, seed, model, X_val, y_val


def make_lib(prob, seed, **params):
    net = MultiTaskNet(random_state=seed)
    if params:
        net.set_params(**params)
    return make_pipeline(*prob.lib_steps(), net)


def fit_predict(prob, tr, te, seed, tasks, X=None, test_inputs=None, errors=None,
                label="default", ensemble=None):
    """Fit the README pipeline on ``tasks``; {condition: {task: (y_true, y_pred)}}.

    ``ensemble="ensemble"``: the same pipeline in ``KFoldEnsemble(pipeline,
    random_state=seed)`` (five members, each early-stopped on its own fold); ``"blend"``: with
    ``blend=blend_for(prob, "forest")`` too (a random forest mixed in per task).
    """
    X = prob.X if X is None else X
    Ytr = prob.Y.iloc[tr][tasks].reset_index(drop=True)
    keep = np.ones(len(tr), bool)
    if len(tasks) == 1:  # a single-task user drops the unlabelled rows
        keep = labelled(Ytr[tasks[0]])
    Xtr = take(X, tr[keep])
    Ytr = Ytr[keep].reset_index(drop=True)

    def one():
        model = make_lib(prob, seed)
        if ensemble:
            blend = blend_for(prob, "forest") if ensemble == "blend" else None
            if isinstance(blend, dict):
                blend = {t: blend[t] for t in tasks}
            model = KFoldEnsemble(model, random_state=seed, blend=blend)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(Xtr, as_target(Ytr))
            out = {}
            for cond, Xte in (test_inputs or {"complete": take(X, te)}).items():
                pred = predictions(model, Xte, tasks)
                out[cond] = {t: (prob.Y[t].to_numpy()[te], pred[t])
                             for t in tasks if t in prob.scored}
        return out

    return guarded(f"{prob.name}/{label} (seed {seed})", one, errors)


def run_search(prob, tr, te, seed, candidates, errors, quick):
    Xtr = take(prob.X, tr)
    Ytr = prob.Y.iloc[tr].reset_index(drop=True)
    groups = prob.groups[tr] if prob.groups is not None else None
    first = Ytr.iloc[:, 0]
    single_cls = Ytr.shape[1] == 1 and kind_of(first) == "classification" and bool(
        labelled(first).all())
    cv, g = inner_cv(BIG + 1 if quick else len(tr), groups,
                     classes=first if single_cls else None)
    grid = [{f"multitasknet__{k}": [v] for k, v in c.items()} for c in candidates]
    grid = [g_ or {"multitasknet__random_state": [seed]} for g_ in grid]

    def one():
        search = GridSearchCV(make_lib(prob, seed), grid, cv=cv, error_score=np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(Xtr, as_target(Ytr), groups=g)
            pred = predictions(search.best_estimator_, take(prob.X, te), prob.tasks)
        best = {k.replace("multitasknet__", ""): v for k, v in search.best_params_.items()
                if k != "multitasknet__random_state"}
        return {t: (prob.Y[t].to_numpy()[te], pred[t]) for t in prob.scored}, best

    return guarded(f"{prob.name}/search (seed {seed})", one, errors)


def late_fusion_baseline(prob, tr, te, errors):
    """LateFusionClassifier(LogisticRegression()) per task, on complete and masked tests."""
    out = {}
    Btr = take(prob.X, tr)
    inputs = {"complete": take(prob.X, te), **prob.extra.get("missing", {})}
    for task in prob.scored:
        y = prob.Y[task].to_numpy()

        def one(y=y):
            est = LateFusionClassifier(make_pipeline(StandardScaler(),
                                                     LogisticRegression(max_iter=2000)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Btr, y[tr].astype(str))
                return {c: (y[te], est.predict(Xb)) for c, Xb in inputs.items()}

        r = guarded(f"{prob.name}/{task}/late fusion LogReg", one, errors)
        if r is not None:
            out[task] = r
    return out


def concat_lr_missing(prob, tr, te, errors):
    """LogReg on the concatenation (an absent modality is zeros), complete and masked tests."""
    out = {}
    Btr = take(prob.X, tr)
    inputs = {"complete": take(prob.X, te), **prob.extra.get("missing", {})}
    for task in prob.scored:
        y = prob.Y[task].to_numpy()

        def one(y=y):
            est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Btr.concat(), y[tr].astype(str))
                return {c: (y[te], est.predict(Xb.concat())) for c, Xb in inputs.items()}

        r = guarded(f"{prob.name}/{task}/concat LogReg", one, errors)
        if r is not None:
            out[task] = r
    return out


def run_problem(prob: Problem, seeds, candidates, quick, parts=PARTS):
    t0 = time.perf_counter()
    kinds = {t: kind_of(prob.Y[t]) for t in prob.tasks}
    errors: list[str] = []
    n_train = np.mean([len(s[0]) for s in prob.splits])
    print(f"\n## {prob.name}: {prob.protocol}; {len(prob.splits)} fold(s), ~{n_train:.0f} "
          f"train rows; tasks {kinds}" + (f"; scored: {prob.scored}" if prob.eval_tasks else ""),
          flush=True)
    # every entry: one per fold (baselines) or (fold, seed); None where it failed
    acc = {k: [] for k in ("baseline", "late", "concat", "default", "single", "search",
                           "modality", *ENSEMBLES)}
    multi = len(prob.tasks) > 1
    robust = "missing" in prob.extra
    for fold, (tr, te) in enumerate(prob.splits):
        tf = time.perf_counter()
        acc["baseline"].append(run_baselines(prob, kinds, tr, te, errors, quick))
        if robust:
            acc["late"].append(late_fusion_baseline(prob, tr, te, errors))
            acc["concat"].append(concat_lr_missing(prob, tr, te, errors))
        for seed in seeds:
            inputs = {"complete": take(prob.X, te), **prob.extra.get("missing", {})}
            acc["default"].append((seed, fit_predict(prob, tr, te, seed, prob.tasks,
                                                     test_inputs=inputs, errors=errors)))
            for part, title in ENSEMBLES.items():
                if part in parts:
                    acc[part].append((seed, fit_predict(
                        prob, tr, te, seed, prob.tasks, test_inputs=inputs, errors=errors,
                        label=title, ensemble=part)))
            if multi and "single" in parts:
                single = {}
                for t in prob.scored:
                    r = fit_predict(prob, tr, te, seed, [t], errors=errors,
                                    label=f"single-task {t}")
                    if r:
                        single.update(r["complete"])
                acc["single"].append((seed, single))
            for m in prob.extra.get("modalities", []):
                r = fit_predict(prob, tr, te, seed, prob.tasks, X=select(prob.X, [m]),
                                errors=errors, label=f"{m} only")
                acc["modality"].append((seed, {"modality": m, **(r["complete"] if r else {})}))
            if candidates and "search" in parts and not (quick and len(tr) > BIG):
                r = run_search(prob, tr, te, seed, candidates, errors, quick)
                acc["search"].append((seed, r[0] if r else {}))
                if r:
                    acc.setdefault("search_params", []).append(r[1])
        print(f"  fold {fold + 1}/{len(prob.splits)} done ({time.perf_counter() - tf:.0f} s)",
              flush=True)
    result = summarise(prob, kinds, acc, multi, len(prob.splits))
    result.update(errors=errors, seconds=time.perf_counter() - t0, protocol=prob.protocol,
                  seeds=list(seeds), folds=len(prob.splits))
    print_problem(result)
    print(f"({prob.name}: {result['seconds']:.0f} s)", flush=True)
    return result


def pooled(kind, pairs, n_folds):
    """Metric of the test predictions of all folds pooled; NaN if a fold is missing."""
    pairs = [p for p in pairs if p is not None]
    if len(pairs) < n_folds or not pairs:
        return float("nan")
    y_true = np.concatenate([np.asarray(p[0], dtype=object) for p in pairs])
    y_pred = np.concatenate([np.asarray(p[1], dtype=object) for p in pairs])
    return metric(kind, y_true, y_pred)


def seed_mean(kind, entries, get, n_folds):
    """Per seed, the pooled metric over folds; then the mean over seeds."""
    seeds = sorted({s for s, _ in entries})
    vals = [pooled(kind, [get(e) if e else None for s, e in entries if s == seed], n_folds)
            for seed in seeds]
    return float(np.mean(vals)) if vals else float("nan")


def summarise(prob, kinds, acc, multi, n_folds):
    rows = []
    for t in prob.scored:
        kind = kinds[t]
        base = [b.get(t) for b in acc["baseline"]]
        ok = [b for b in base if b]
        names = sorted({n for b in ok for n in b["cands"]})
        on_test = {n: pooled(kind, [b["cands"].get(n, {}).get("pair") if b else None
                                    for b in base], n_folds) for n in names}
        best_test = max(on_test, key=lambda n: -np.inf if np.isnan(on_test[n]) else
                        on_test[n]) if on_test else "ERR"
        row = {
            "dataset": prob.name, "task": t, "kind": kind,
            "baseline": pooled(kind, [b["cands"][b["chosen"]]["pair"] if b else None
                                      for b in base], n_folds),
            "baseline_name": "/".join(sorted({b["chosen"] for b in ok})) or "ERR",
            "best_test": on_test.get(best_test, float("nan")), "best_test_name": best_test,
            "baseline_candidates": on_test,
            "default": seed_mean(kind, acc["default"], lambda e, t=t: e["complete"].get(t),
                                 n_folds),
            "single": seed_mean(kind, acc["single"], lambda e, t=t: e.get(t), n_folds)
            if multi and acc["single"] else None,
            **{part: seed_mean(kind, acc[part],
                               lambda e, t=t: e["complete"].get(t) if e else None, n_folds)
               if acc[part] else None for part in ENSEMBLES},
            "search": seed_mean(kind, acc["search"], lambda e, t=t: e.get(t), n_folds)
            if acc["search"] else None,
            "search_params": acc.get("search_params", []),
        }
        row["mtl_gain"] = (row["default"] - row["single"]) if row["single"] is not None else None
        row["verdict"] = verdict(row["default"], row["baseline"], kind)
        for part in ENSEMBLES:
            if row[part] is not None:
                row[f"{part}_verdict"] = verdict(row[part], row["baseline"], kind)
        for m in prob.extra.get("modalities", []):
            entries = [(s, e) for s, e in acc["modality"] if e["modality"] == m]
            row[f"{m}_only"] = seed_mean(kind, entries, lambda e, t=t: e.get(t), n_folds)
        rows.append(row)
    out = {"dataset": prob.name, "rows": rows}
    if "missing" in prob.extra:
        conds = ["complete", *prob.extra["missing"]]
        out["missing"] = {
            t: {c: {"default": seed_mean(kinds[t], acc["default"],
                                         lambda e, c=c, t=t: e[c].get(t), n_folds),
                    "late_lr": pooled(kinds[t], [lf.get(t, {}).get(c) for lf in acc["late"]],
                                      n_folds),
                    "concat_lr": pooled(kinds[t], [cm.get(t, {}).get(c) for cm in acc["concat"]],
                                        n_folds),
                    **{part: seed_mean(kinds[t], acc[part],
                                       lambda e, c=c, t=t: e[c].get(t), n_folds)
                       if acc[part] else None for part in ENSEMBLES}}
                for c in conds}
            for t in prob.scored}
    return out


def verdict(default, base, kind):
    if not (np.isfinite(default) and np.isfinite(base)):
        return "ERR"
    if default > base + TOL[kind]:
        return "win"
    if default < base - TOL[kind]:
        return "loss"
    return "tie"


# ------------------------------------------------------------------------------------------
# printing
# ------------------------------------------------------------------------------------------
def f3(v):
    return "ERR" if v is None or not np.isfinite(v) else f"{v:.3f}"


def fparams(plist):
    if not plist:
        return ""
    c = Counter(json.dumps(p, default=str, sort_keys=True) for p in plist).most_common(1)[0][0]
    p = json.loads(c)
    return ", ".join(f"{k}={v}" for k, v in p.items()) or "defaults"


def print_problem(res):
    print(f"\n### {res['dataset']} ({res['protocol']}; mean over {res['folds']} fold(s) × "
          f"{len(res['seeds'])} seed(s))\n")
    print("| task | metric | best baseline (CV-chosen) | best on test (info) | README default "
          "| single-task default | MTL − STL | library + search (chosen) | verdict |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for r in res["rows"]:
        met = "R²" if r["kind"] == "regression" else "acc"
        single = f3(r["single"]) if r["single"] is not None else "—"
        gain = f"{r['mtl_gain']:+.3f}" if r["mtl_gain"] is not None and np.isfinite(
            r["mtl_gain"]) else "—"
        search = ("— (skipped)" if r["search"] is None else
                  f"{f3(r['search'])} ({fparams(r['search_params'])})")
        print(f"| {r['task']} | {met} | {f3(r['baseline'])} ({r['baseline_name']}) | "
              f"{f3(r['best_test'])} ({r['best_test_name']}) | {f3(r['default'])} | {single} | "
              f"{gain} | {search} | "
              f"{r['verdict']} |")
    if "missing" in res:
        print(f"\n#### {res['dataset']}: modalities missing at predict time (accuracy)\n")
        print("| task | test condition | README default (fused) | LateFusion LogReg | "
              "concat LogReg (absent = 0) | " + " | ".join(ENSEMBLES.values()) + " |")
        print("|---|---|---:|---:|---:|" + "---:|" * len(ENSEMBLES))
        for t, conds in res["missing"].items():
            for c, v in conds.items():
                ens = " | ".join("—" if v[p] is None else f3(v[p]) for p in ENSEMBLES)
                print(f"| {t} | {c} | {f3(v['default'])} | {f3(v['late_lr'])} | "
                      f"{f3(v['concat_lr'])} | {ens} |")
    for e in res["errors"]:
        print(f"- ERR {e}")


def print_summary(results, total):
    rows = [r for res in results for r in res["rows"]]
    print("\n## Summary: README default vs best simple baseline (CV-chosen)\n")
    print("| data set | task | metric | baseline | README default | Δ | MTL − STL | verdict |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        d = r["default"] - r["baseline"]
        gain = f"{r['mtl_gain']:+.3f}" if r["mtl_gain"] is not None and np.isfinite(
            r["mtl_gain"]) else "—"
        print(f"| {r['dataset']} | {r['task']} | "
              f"{'R²' if r['kind'] == 'regression' else 'acc'} | {f3(r['baseline'])} | "
              f"{f3(r['default'])} | {d:+.3f} | {gain} | {r['verdict']} |")
    count = Counter(r["verdict"] for r in rows)
    w, t, l_, e = count["win"], count["tie"], count["loss"], count["ERR"]
    print(f"\nwins {w} / ties {t} / losses {l_}" + (f" / errors {e}" if e else ""))
    no_loss = l_ == 0 and e == 0
    half = w >= len(rows) / 2
    print(f"- target 1, every task within 0.01 acc / 0.02 R² of the baseline or better: "
          f"{'MET' if no_loss else 'NOT MET'}")
    print(f"- target 2, strictly better on at least half of the tasks ({w} of {len(rows)}): "
          f"{'MET' if half else 'NOT MET'}")

    fused = [(res, r) for res in results for r in res["rows"] if "image_only" in r]
    fused_ok = None
    if fused:
        print("\n## Fused default vs best single-modality default\n")
        print("| data set | task | fused | image only | audio only | fused − best single |")
        print("|---|---|---:|---:|---:|---:|")
        fused_ok = True
        for res, r in fused:
            best = max(r["image_only"], r["audio_only"])
            d = r["default"] - best
            fused_ok &= bool(d >= -1e-9)
            print(f"| {res['dataset']} | {r['task']} | {f3(r['default'])} | "
                  f"{f3(r['image_only'])} | {f3(r['audio_only'])} | {d:+.3f} |")
        print(f"\n- target 3, fused default ≥ best single-modality default on every task: "
              f"{'MET' if fused_ok else 'NOT MET'}")
    mtl = [r for r in rows if r["mtl_gain"] is not None and np.isfinite(r["mtl_gain"])]
    if mtl:
        better = sum(r["mtl_gain"] > 0 for r in mtl)
        print(f"- multi-task vs single-task defaults: better on {better} of {len(mtl)} tasks, "
              f"mean gain {np.mean([r['mtl_gain'] for r in mtl]):+.3f}")
    print("\n## Wall time per data set\n")
    print("| data set | seconds |")
    print("|---|---:|")
    for res in results:
        print(f"| {res['dataset']} | {res['seconds']:.0f} |")
    print(f"| total | {total:.0f} |")
    tallies = {}
    for part, title in ENSEMBLES.items():
        ens = [r for r in rows if r.get(part) is not None]
        if not ens:
            tallies[part] = None
            continue
        count_ = Counter(r[f"{part}_verdict"] for r in ens)
        tallies[part] = dict(count_)
        blend = ", blend=<random forest>" if part == "blend" else ""
        print(f"\n## KFoldEnsemble(<README pipeline>, random_state=seed{blend}) vs the same "
              "baseline\n")
        print(f"| data set | task | metric | baseline | README default | {title} | "
              "− default | verdict |")
        print("|---|---|---|---:|---:|---:|---:|---|")
        for r in ens:
            print(f"| {r['dataset']} | {r['task']} | "
                  f"{'R²' if r['kind'] == 'regression' else 'acc'} | {f3(r['baseline'])} | "
                  f"{f3(r['default'])} | {f3(r[part])} | "
                  f"{r[part] - r['default']:+.3f} | {r[f'{part}_verdict']} |")
        print(f"\n{title}: wins {count_['win']} / ties {count_['tie']} / losses "
              f"{count_['loss']}" + (f" / errors {count_['ERR']}" if count_['ERR'] else ""))
    return {"wins": w, "ties": t, "losses": l_, "errors": e, "target_no_loss": no_loss,
            "target_half_wins": half, "target_fused": fused_ok, **tallies}


# ------------------------------------------------------------------------------------------
def main(argv=None):
    default = os.environ.get("SKLEARN_MTML_DATA", str(ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default, help="folder of the real data sets")
    parser.add_argument("--datasets", default=",".join(PROBLEMS),
                        help=f"comma-separated subset of {','.join(PROBLEMS)}")
    parser.add_argument("--seeds", default=None, help="network seeds, e.g. 0,1,2 (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="one outer fold per data set (one held-out speaker), 2 search "
                             "candidates on a hold-out split and no search above 1,500 "
                             "training rows, 1,500 reviews, 50 trees / 50 boosting rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="optional columns, comma-separated, of "
                             f"{','.join(ALL_PARTS)} (default {','.join(PARTS)}; "
                             "'ensemble' fits KFoldEnsemble(<README pipeline>), 5 networks; "
                             "'blend' the same with blend=<random forest>)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown data sets {unknown}; choose from {list(PROBLEMS)}")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [0]
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if set(parts) - set(ALL_PARTS):
        parser.error(f"unknown --parts {sorted(set(parts) - set(ALL_PARTS))}; choose from "
                     f"{list(ALL_PARTS)}")
    candidates = SEARCH[:2] if args.quick else SEARCH
    root = Path(args.data)
    print(f"# bench_quality: data {root}; seeds {seeds}; quick={args.quick}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s); search candidates "
          f"{candidates}", flush=True)
    start = time.perf_counter()
    results = []
    for name in names:
        t0 = time.perf_counter()
        try:
            probs = PROBLEMS[name](root, args.quick)
        except Exception as exc:  # noqa: BLE001 - a missing data set must not stop the run
            print(f"\n## {name}: ERR could not load: {type(exc).__name__}: {exc}", flush=True)
            continue
        load_s = time.perf_counter() - t0
        for prob in probs:
            if args.quick:
                prob.splits = prob.splits[:1]
            try:
                res = run_problem(prob, seeds, candidates, args.quick, parts)
            except Exception as exc:  # noqa: BLE001 - one data set must not stop the run
                print(f"\n## {prob.name}: ERR {type(exc).__name__}: {exc}", flush=True)
                continue
            res["seconds"] += load_s / len(probs)
            results.append(res)
    summary = print_summary(results, time.perf_counter() - start)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"args": vars(args), "summary": summary, "results": results}, indent=1,
            default=str))
        print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
