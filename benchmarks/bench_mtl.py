"""Multi-task architectures × loss weightings on real data, against single-task baselines.

Data sets (from ``--data``, ``$SKLEARN_MTML_DATA`` or ``../shared/data``):

* ``enb``      Mulan energy efficiency: 768 buildings, 8 inputs, 2 regression targets.
* ``jura``     Mulan Jura soil: 359 samples, 15 inputs, 3 regression targets (Cd, Co, Cu).
* ``emotions`` Mulan emotions: 593 clips, 72 audio features, 6 binary labels (own split).
* ``reviews``  Women's e-commerce clothing reviews (subsample): TF-IDF + SVD of title and text,
  plus age; tasks Rating (5 classes), Recommended IND (binary), Department Name (6 classes,
  missing labels kept as NaN), log1p(Positive Feedback Count) (regression).

Compared on a fixed split (inputs standardised on the training part), mean over ``--seeds``:
scikit-learn baselines per task (Ridge / LogisticRegression, HistGradientBoosting), single-task
networks (``MultiTaskNet`` on one task, shared-bottom sizes), and every architecture ×
weighting. Metrics: accuracy (↑) for classification, RMSE (↓) for regression; Δp (LibMTL) is
the mean sign-corrected relative gain over the single-task networks, in percent.

    python benchmarks/bench_mtl.py             # full run (~15 min on 2 CPU cores)
    python benchmarks/bench_mtl.py --quick     # a fast subset
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.io import arff
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn_mtml import MultiTaskNet  # noqa: E402
from sklearn_mtml.metrics import delta_p  # noqa: E402

ARCHITECTURES = {
    "shared_bottom": {"hidden_sizes": (128, 64), "tower_sizes": (32,)},
    "mmoe": {"n_experts": 4, "expert_sizes": (128, 64), "tower_sizes": (32,)},
    "ple": {"n_levels": 2, "n_task_experts": 1, "n_shared_experts": 2, "expert_sizes": (64,),
            "tower_sizes": (32,)},
    "cross_stitch": {"hidden_sizes": (128, 64), "tower_sizes": (32,)},
    "task_attention": {"d_model": 32, "n_heads": 4, "n_groups": 8, "tower_sizes": (32,)},
}
WEIGHTINGS = ["fixed", "uncertainty", "dwa", "gradnorm", "pcgrad", "rlw"]
SINGLE_TASK = "shared_bottom"

# per data set: epochs, batch size, learning rate (same for every network of a data set)
TRAINING = {
    "enb": {"max_epochs": 80, "batch_size": 64, "lr": 3e-3},
    "jura": {"max_epochs": 80, "batch_size": 32, "lr": 1e-3},
    "emotions": {"max_epochs": 30, "batch_size": 32, "lr": 1e-3},
    "reviews": {"max_epochs": 20, "batch_size": 128, "lr": 1e-3},
}


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def _read_arff(path: Path) -> pd.DataFrame:
    data, _ = arff.loadarff(path)
    df = pd.DataFrame(data)
    for c in df.columns:
        if df[c].dtype == object:  # nominal attributes come as bytes
            df[c] = df[c].str.decode("utf-8").astype(float)
    return df


def _split(X, Y, seed=0, test_size=0.25):
    return train_test_split(X, Y, test_size=test_size, random_state=seed)


def load_enb(root):
    df = _read_arff(root / "mulan" / "enb.arff")
    X, Y = df.iloc[:, :-2], df.iloc[:, -2:]
    return (*_split(X, Y), {c: "regression" for c in Y.columns})


def load_jura(root):
    df = _read_arff(root / "mulan" / "jura.arff")
    X, Y = df.iloc[:, :-3], df.iloc[:, -3:]
    return (*_split(X, Y), {c: "regression" for c in Y.columns})


def load_emotions(root):
    train = _read_arff(root / "mulan" / "emotions-train.arff")
    test = _read_arff(root / "mulan" / "emotions-test.arff")
    labels = list(train.columns[-6:])
    return (train.iloc[:, :-6], test.iloc[:, :-6], train[labels].astype(int),
            test[labels].astype(int), dict.fromkeys(labels, "binary"))


def sample_reviews(root, n_rows):
    """A fixed subsample of the reviews: every row without a department, plus a seeded draw."""
    df = pd.read_csv(root / "womens_ecommerce" / "womens_ecommerce.csv.gz")
    rng = np.random.RandomState(0)
    missing = np.flatnonzero(df["Department Name"].isna().to_numpy())
    others = np.setdiff1d(np.arange(len(df)), missing)
    keep = np.concatenate([missing, rng.choice(others, n_rows - len(missing), replace=False)])
    return df.iloc[np.sort(keep)].reset_index(drop=True)


def load_reviews(root, n_rows=6000, n_components=100):
    df = sample_reviews(root, n_rows)
    text = (df["Title"].fillna("") + " " + df["Review Text"].fillna("")).to_numpy()
    Y = pd.DataFrame({
        "rating": df["Rating"].to_numpy(),
        "recommended": df["Recommended IND"].to_numpy(),
        "department": df["Department Name"].to_numpy(dtype=object),
        "feedback": np.log1p(df["Positive Feedback Count"].to_numpy(dtype=float)),
    })
    idx_tr, idx_te = train_test_split(np.arange(len(df)), test_size=0.25, random_state=0)
    tfidf = TfidfVectorizer(min_df=3, max_features=20000, ngram_range=(1, 2),
                            sublinear_tf=True)
    svd = TruncatedSVD(n_components, random_state=0)
    z_tr = svd.fit_transform(tfidf.fit_transform(text[idx_tr]))
    z_te = svd.transform(tfidf.transform(text[idx_te]))
    age = df["Age"].to_numpy(dtype=float)[:, None]
    X_tr = np.hstack([z_tr, age[idx_tr]])
    X_te = np.hstack([z_te, age[idx_te]])
    kinds = {"rating": "multiclass", "recommended": "binary", "department": "multiclass",
             "feedback": "regression"}
    return X_tr, X_te, Y.iloc[idx_tr], Y.iloc[idx_te], kinds


LOADERS = {"enb": load_enb, "jura": load_jura, "emotions": load_emotions,
           "reviews": load_reviews}


# ------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------
def _present(col):
    return ~pd.isna(pd.Series(col)).to_numpy()


def task_metric(kind, y_true, y_pred):
    keep = _present(y_true)
    y_true, y_pred = np.asarray(y_true)[keep], np.asarray(y_pred)[keep]
    if kind == "regression":
        return float(np.sqrt(np.mean((y_true.astype(float) - y_pred.astype(float)) ** 2)))
    return float(np.mean(y_true.astype(str) == y_pred.astype(str)))


def higher_is_better(kinds):
    return [kind != "regression" for kind in kinds.values()]


# ------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------
def sklearn_baseline(name, X_tr, Y_tr, X_te, kinds, seed):
    preds = {}
    for task, kind in kinds.items():
        keep = _present(Y_tr[task])
        y = Y_tr[task].to_numpy()[keep]
        if kind == "regression":
            est = Ridge(alpha=1.0) if name == "linear" else HistGradientBoostingRegressor(
                random_state=seed)
        else:
            y = y.astype(str)
            est = LogisticRegression(max_iter=3000) if name == "linear" else \
                HistGradientBoostingClassifier(random_state=seed)
        est.fit(X_tr[keep], y)
        preds[task] = est.predict(X_te)
    return preds


def make_net(arch, weighting, kinds, training, seed):
    params = {f"module__{k}": v for k, v in ARCHITECTURES[arch].items()}
    return MultiTaskNet(tasks=kinds, architecture=arch, weighting=weighting,
                        random_state=seed, device="cpu", **training, **params)


def net_predictions(net, X_te, tasks):
    pred = net.predict(X_te)
    pred = pred.reshape(len(X_te), -1)
    return {task: pred[:, i] for i, task in enumerate(tasks)}


def run_dataset(name, root, seeds, configs, quick):
    t0 = time.perf_counter()
    kwargs = {"n_rows": 2000} if quick and name == "reviews" else {}
    X_tr, X_te, Y_tr, Y_te, kinds = LOADERS[name](root, **kwargs)
    scaler = StandardScaler().fit(np.asarray(X_tr, dtype=float))
    X_tr = scaler.transform(np.asarray(X_tr, dtype=float)).astype(np.float32)
    X_te = scaler.transform(np.asarray(X_te, dtype=float)).astype(np.float32)
    # MultiTaskNet infers labels from the column values; make the targets plain objects/floats
    Y_tr = Y_tr.reset_index(drop=True)
    Y_te = Y_te.reset_index(drop=True)
    training = dict(TRAINING[name])
    if quick:
        training["max_epochs"] = max(5, training["max_epochs"] // 4)
    print(f"\n## {name}: {len(X_tr)} train / {len(X_te)} test rows, {X_tr.shape[1]} inputs, "
          f"tasks {kinds}; {training}; seeds {seeds}", flush=True)

    rows = {}  # model name -> {"scores": [per seed: {task: metric}], "time": [...]}

    def record(model, seed_scores, seconds):
        entry = rows.setdefault(model, {"scores": [], "time": []})
        entry["scores"].append(seed_scores)
        entry["time"].append(seconds)

    def score(preds):
        return {t: task_metric(kinds[t], Y_te[t].to_numpy(), preds[t]) for t in kinds}

    for seed in seeds:
        for base in ("linear", "hgb"):
            if base == "linear" and seed != seeds[0]:
                continue  # deterministic
            t = time.perf_counter()
            preds = sklearn_baseline(base, X_tr, Y_tr, X_te, kinds, seed)
            label = "sklearn Ridge/LogReg" if base == "linear" else "sklearn HistGB"
            record(label, score(preds), time.perf_counter() - t)
        # single-task networks
        t = time.perf_counter()
        preds = {}
        for task, kind in kinds.items():
            net = make_net(SINGLE_TASK, "fixed", {task: kind}, training, seed)
            net.fit(X_tr, Y_tr[[task]])
            preds.update(net_predictions(net, X_te, [task]))
        record("single-task nets", score(preds), time.perf_counter() - t)
        # multi-task networks
        for arch, weighting in configs:
            t = time.perf_counter()
            net = make_net(arch, weighting, kinds, training, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                net.fit(X_tr, Y_tr)
            preds = net_predictions(net, X_te, list(kinds))
            record(f"{arch} + {weighting}", score(preds), time.perf_counter() - t)
        print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)

    hib = higher_is_better(kinds)
    stl = np.mean([[s[t] for t in kinds] for s in rows["single-task nets"]["scores"]], axis=0)
    table = []
    for model, entry in rows.items():
        mean = np.mean([[s[t] for t in kinds] for s in entry["scores"]], axis=0)
        dps = [delta_p([s[t] for t in kinds], stl, hib) for s in entry["scores"]]
        table.append({"model": model, "scores": dict(zip(kinds, mean.tolist())),
                      "delta_p": float(np.mean(dps)),
                      "delta_p_std": float(np.std(dps)) if len(dps) > 1 else 0.0,
                      "seconds": float(np.mean(entry["time"]))})
    elapsed = time.perf_counter() - t0
    print(markdown(name, kinds, table, len(seeds)))
    print(f"({name}: {elapsed:.0f} s)", flush=True)
    return {"dataset": name, "kinds": kinds, "training": training, "seeds": list(seeds),
            "rows": table, "seconds": elapsed}


def markdown(name, kinds, table, n_seeds):
    cols = [f"{t} ({'RMSE↓' if k == 'regression' else 'acc↑'})" for t, k in kinds.items()]
    head = "| model | " + " | ".join(cols) + " | Δp % vs STL | fit s |"
    sep = "|" + "---|" * (len(cols) + 3)
    lines = [f"\n### {name} (mean of {n_seeds} seed(s); Δp ± std over seeds)", "", head, sep]
    best = {}
    for i, t in enumerate(kinds):
        vals = [r["scores"][t] for r in table]
        best[t] = max(vals) if higher_is_better(kinds)[i] else min(vals)
    for r in table:
        cells = []
        for t in kinds:
            v = r["scores"][t]
            text = f"{v:.4g}" if abs(v) >= 1 else f"{v:.3f}"
            cells.append(f"**{text}**" if v == best[t] else text)
        dp = f"{r['delta_p']:+.2f}"
        if r["delta_p_std"]:
            dp += f" ± {r['delta_p_std']:.2f}"
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {dp} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    default = os.environ.get("SKLEARN_MTML_DATA",
                             str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default, help="folder of the real data sets")
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="network seeds (default: 0 1 2; --quick: 0)")
    parser.add_argument("--architectures", nargs="+", default=None,
                        choices=list(ARCHITECTURES))
    parser.add_argument("--weightings", nargs="+", default=None, choices=WEIGHTINGS)
    parser.add_argument("--quick", action="store_true",
                        help="one seed, fewer epochs, every architecture with fixed weights "
                             "and every weighting with the shared bottom, 2000 reviews")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: these models are too small to "
                             "gain from more, and extra threads only contend)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    root = Path(args.data)
    if not root.is_dir():
        parser.error(f"data folder {root} not found; pass --data or set SKLEARN_MTML_DATA")
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    archs = args.architectures or list(ARCHITECTURES)
    weightings = args.weightings or WEIGHTINGS
    if args.quick and args.architectures is None and args.weightings is None:
        # every architecture with fixed weights, every weighting with the shared bottom
        configs = [(a, "fixed") for a in ARCHITECTURES]
        configs += [("shared_bottom", w) for w in WEIGHTINGS if w != "fixed"]
    else:
        configs = [(a, w) for a in archs for w in weightings]
    results = [run_dataset(name, root, seeds, configs, args.quick) for name in args.datasets]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
