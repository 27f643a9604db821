"""Text encoders on the bundled reviews: TF-IDF, TF-IDF + SVD, token sequences, or both.

Data: the 3,000 women's e-commerce clothing reviews bundled with the package
(``sklearn_mtml.datasets.load_reviews``). Input: the title and the review text joined (rows
with neither are a missing modality), plus the reviewer's age and the division one-hot as a
tabular block. Tasks: ``rating`` (1-5, regression, R²), ``recommended`` (binary, accuracy)
and ``department`` (6 classes, accuracy). Protocol: ``--splits`` random 75/25 splits; every
model is fitted on the same training rows, the scores are on the held-out rows, averaged over
the splits.

Compared, with ``MultiTaskNet`` defaults unless said otherwise:

* baseline: TF-IDF (1-2 grams, ``min_df=2``, sublinear tf) + the tabular columns into
  ``LogisticRegressionCV`` per classification task and ``RidgeCV`` for the rating;
* ``tfidf``: ``TextFeatures()`` (sparse TF-IDF) as the text block;
* ``tfidf-baseline-features``: the baseline's TF-IDF settings (1-2 grams, ``min_df=2``,
  sublinear tf) as the text block (on request);
* ``svd``: ``TextFeatures(svd_components=100)`` (LSA);
* ``tokens-mean``: ``TextFeatures(output="sequence", max_length=128)``, i.e. token ids into
  :class:`~sklearn_mtml.nn.encoders.TokenEncoder` with mean pooling (the wide path reads the
  ids as a bag of words);
* ``tfidf+tokens``: both text blocks;
* on request (``--variants tokens-gru tokens-transformer``): the bidirectional GRU or the
  Transformer pooling. On a CPU they are slow: a training step of 64 reviews × 128 tokens
  takes about 0.13 s (GRU) and 0.36 s (Transformer) against 0.024 s for mean pooling, one
  thread, so a default fit of about 2,000 steps takes minutes.

    python benchmarks/bench_text_encoders.py              # 2 splits, about 15 min on 2 cores
    python benchmarks/bench_text_encoders.py --splits 1 --quick

``--tasks declared`` fits the rating as a regression, as the baseline does (by default the
network infers five classes from the 1-5 values and is scored by the R² of the predicted
class); ``--wide-warm-start`` starts the wide path at each task's cross-validated ridge
solution (:meth:`~sklearn_mtml.nn.model.MultiTaskModule.warm_start_wide`).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn_mtml import ModalityFusion, MultiTaskNet, TextFeatures  # noqa: E402
from sklearn_mtml.datasets import load_reviews  # noqa: E402

TASKS = ["rating", "recommended", "department"]
#: ``--tasks declared``: the kinds the baseline fits (the rating regressed, as it is scored).
DECLARED = {"rating": "regression", "recommended": "binary", "department": "multiclass"}


class WarmStartNet(MultiTaskNet):
    """``MultiTaskNet`` whose fit first warm-starts the wide path (``--wide-warm-start``).

    A prototype of the proposed fit step, until ``MultiTaskNet.fit`` makes the call itself:
    :meth:`~sklearn_mtml.nn.model.MultiTaskModule.warm_start_wide` on the training rows
    (never the validation rows of early stopping), before the first epoch.
    """

    def get_iterator(self, dataset, training=False):  # noqa: D102
        if training and hasattr(dataset, "take"):  # once per fit, on the training rows
            (xb, mb), (yb, lb) = dataset.take(slice(None))
            self.wide_alphas_ = self.module_.warm_start_wide(
                xb, mb, yb, lb, [task.kind for task in self.tasks_.values()])
        return super().get_iterator(dataset, training=training)


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reviews as one text column plus tabular columns, and the three targets."""
    X, Y = load_reviews()
    title, body = X["Title"], X["Review Text"]
    text = (title.fillna("") + " " + body.fillna("")).str.strip()
    text = text.where(title.notna() | body.notna(), None).astype(object)
    frame = pd.DataFrame({"text": text, "age": X["Age"].astype(float),
                          "division": X["Division Name"].astype(object).fillna("NA")})
    targets = pd.DataFrame({"rating": Y["Rating"].astype(float),
                            "recommended": Y["Recommended IND"].to_numpy(),
                            "department": Y["Department Name"].astype(object).to_numpy()})
    return frame, targets


def score(Y_true: pd.DataFrame, preds: dict[str, np.ndarray]) -> dict[str, float]:
    """R² for the rating, accuracy for the classification tasks."""
    out = {}
    for task in TASKS:
        y, p = Y_true[task].to_numpy(), np.asarray(preds[task])
        keep = pd.notna(y)
        out[task] = (r2_score(y[keep], p[keep].astype(float)) if task == "rating"
                     else accuracy_score(y[keep].astype(str), p[keep].astype(str)))
    return out


def baseline(X_tr, Y_tr, X_te) -> dict[str, np.ndarray]:
    """TF-IDF + age + division one-hot into LogisticRegressionCV / RidgeCV."""
    tfidf = TfidfVectorizer(min_df=2, ngram_range=(1, 2), sublinear_tf=True)
    ohe = OneHotEncoder(handle_unknown="ignore")
    scaler = StandardScaler()

    def features(X, fit):
        text = X["text"].fillna("")
        parts = [tfidf.fit_transform(text) if fit else tfidf.transform(text),
                 ohe.fit_transform(X[["division"]]) if fit else ohe.transform(X[["division"]]),
                 sp.csr_matrix(scaler.fit_transform(X[["age"]]) if fit
                               else scaler.transform(X[["age"]]))]
        return sp.hstack(parts).tocsr()

    F_tr, F_te = features(X_tr, True), features(X_te, False)
    preds = {}
    for task in TASKS:
        y = Y_tr[task].to_numpy()
        keep = pd.notna(y)
        model = (RidgeCV(alphas=np.logspace(-2, 3, 12)) if task == "rating"
                 else LogisticRegressionCV(Cs=8, max_iter=2000))
        preds[task] = model.fit(F_tr[keep], y[keep]).predict(F_te)
    return preds


def fusion(text_blocks: dict[str, TextFeatures]) -> ModalityFusion:
    """The text block(s) plus the tabular age and division one-hot."""
    steps = [(name, trans, "text") for name, trans in text_blocks.items()]
    steps += [("age", "passthrough", ["age"]),
              ("division", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
               ["division"])]
    return ModalityFusion(steps)


def tokens(**kw) -> TextFeatures:
    """Token ids, 128 per review (the longest review has about 120 words)."""
    return TextFeatures(output="sequence", max_length=128, **kw)


VARIANTS = {
    "tfidf": (lambda: {"text": TextFeatures()}, {}),
    "tfidf-baseline-features": (lambda: {"text": TextFeatures(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True)}, {}),
    "svd": (lambda: {"text": TextFeatures(svd_components=100, random_state=0)}, {}),
    "tokens-mean": (lambda: {"text": tokens()}, {}),
    "tokens-gru": (lambda: {"text": tokens()},
                   {"module__encoder_params": {"text": {"pooling": "gru"}}}),
    "tokens-transformer": (lambda: {"text": tokens()},
                           {"module__encoder_params": {"text": {"pooling": "transformer"}}}),
    "tfidf+tokens": (lambda: {"text": TextFeatures(), "tokens": tokens()}, {}),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=2, help="random 75/25 splits")
    parser.add_argument("--quick", action="store_true", help="1,500 rows")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS),
                        default=["tfidf", "svd", "tokens-mean", "tfidf+tokens"])
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument("--tasks", choices=["inferred", "declared"], default="inferred",
                        help="task kinds of the networks: inferred from Y (the rating as 5 "
                        "classes) or declared as the baseline fits them (rating regressed)")
    parser.add_argument("--wide-warm-start", action="store_true",
                        help="start the wide path at each task's LOO-chosen ridge solution")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    X, Y = load()
    if args.quick:
        X, Y = X.iloc[:1500], Y.iloc[:1500]
    rows: dict[str, list[dict[str, float]]] = {}
    for split in range(args.splits):
        tr, te = train_test_split(np.arange(len(X)), test_size=0.25, random_state=split)
        X_tr, X_te, Y_tr, Y_te = X.iloc[tr], X.iloc[te], Y.iloc[tr], Y.iloc[te]
        if not args.no_baseline:
            t0 = time.perf_counter()
            result = score(Y_te, baseline(X_tr, Y_tr, X_te))
            result["fit s"] = time.perf_counter() - t0
            rows.setdefault("baseline (TF-IDF + LR/Ridge)", []).append(result)
            print(f"split {split} baseline {result}", flush=True)
        for name in args.variants:
            blocks, params = VARIANTS[name]
            t0 = time.perf_counter()
            fus = fusion(blocks())
            B_tr, B_te = fus.fit_transform(X_tr), fus.transform(X_te)
            cls = WarmStartNet if args.wide_warm_start else MultiTaskNet
            if args.tasks == "declared":
                params = {"tasks": DECLARED, **params}
            net = cls(random_state=split, **params).fit(B_tr, Y_tr)
            pred = net.predict(B_te)
            result = score(Y_te, {t: pred[:, k] for k, t in enumerate(TASKS)})
            result["fit s"] = time.perf_counter() - t0
            rows.setdefault(name, []).append(result)
            print(f"split {split} {name} {result}", flush=True)
    table = pd.DataFrame({name: pd.DataFrame(r).mean() for name, r in rows.items()}).T
    table["mean score"] = table[TASKS].mean(axis=1)
    print(f"\nMean over {args.splits} split(s), {len(X)} rows (rating: R²; others: accuracy)")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
