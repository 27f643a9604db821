"""Audio-visual digits: fusion modes, multi-task vs single-task heads, missing modalities.

Data (from ``--data``, ``$SKLEARN_MTML_DATA`` or ``../shared/data`` next to the repository):
the 3,000 FSDD recordings, each paired with an MNIST image of the same digit (drawn at random
with a fixed seed, without reuse inside a split and with no image shared between the splits).
FSDD's own split: takes 0-4 are the test set (300 rows), takes 5-49 the training set (2,700).
Tasks: ``digit`` (10 classes; both modalities carry it), ``speaker`` (6) and ``accent`` (4;
only the audio carries them). Metric: test accuracy per task.

Features are computed once: one ``ModalityFusion`` (audio: ``AudioFeatures(backend="torch")``
statistics of MFCC, deltas and log-mel energies, standardised; image: standardised pixels, or
HOG / a 28x28 tensor for the CNN encoder with ``--image``) is fitted on the training rows and
its ``ModalityBlocks`` are reused by every model. Compared, mean (± std) over ``--seeds``:

1. scikit-learn baselines on the same (concatenated) features, one estimator per task:
   ``LogisticRegressionCV`` (C chosen by 3-fold CV) and ``HistGradientBoostingClassifier``;
2. single-modality ``MultiTaskNet`` (image only, audio only; three task heads);
3. every fusion (concat, attention, gated, late) with multi-task heads (one network, three
   tasks; with ``module__modality_dropout`` 0 and ``--modality-dropout``) and with single-task
   heads (three networks, one task each); Δp (LibMTL) of multi-task over single-task heads.

Then the robustness curves: test accuracy of every fused multi-task network when 0, 25, 50, 75
and 100 % of the test rows lose their audio (set to ``None`` before the fitted
``ModalityFusion``, so the network sees them as masked), and the same for the image, against the
network of the remaining modality. The best fused multi-task network (highest accuracy
averaged over tasks, seeds and the nine test conditions: complete, and 25-100 % of either
modality missing) gets the detailed tables, the target check and the plot.

    python benchmarks/bench_fusion.py            # full run (about 7 min on 2 CPU cores)
    python benchmarks/bench_fusion.py --quick    # one seed, fewer epochs (about 1.5 min)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn_mtml import (  # noqa: E402
    AudioFeatures,
    ImageFeatures,
    ModalityBlocks,
    ModalityFusion,
    MultiTaskNet,
    delta_p,
)

TASKS = {"digit": "multiclass", "speaker": "multiclass", "accent": "multiclass"}
FUSIONS = ("concat", "attention", "gated", "late")
SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
MODALITIES = ("image", "audio")
AUDIO_FEATURES = ("mfcc", "delta", "delta2", "logmel")

# Network settings (tuned by hand on this split; see docs/fusion_benchmark.md). The same for
# every network so that only the inputs, the fusion and the heads differ.
NET = {
    "max_epochs": 40, "lr": 2e-3, "batch_size": 64, "module__hidden_sizes": (256,),
    "module__tower_sizes": (64,), "module__dropout": 0.3, "module__embed_dim": 64,
    "optimizer__weight_decay": 1e-2,
}
NET_CNN = {"lr": 1e-3, "batch_size": 32}  # overrides with --image tensor


# ------------------------------------------------------------------------------------------
# data and features
# ------------------------------------------------------------------------------------------
def load_av_digits(data_dir: Path, seed: int = 0):
    """FSDD recordings paired with MNIST images of the same digit.

    Returns ``X`` (DataFrame: ``image`` 28x28 uint8 arrays, ``audio`` wav paths; object
    columns), ``Y`` (DataFrame: digit, speaker, accent) and ``test`` (bool, FSDD takes 0-4).
    """
    rec = data_dir / "fsdd" / "recordings"
    files = sorted(rec.glob("*.wav"))
    if len(files) == 0:
        sys.exit(f"no FSDD recordings under {rec}: pass --data or set SKLEARN_MTML_DATA")
    parts = [f.stem.split("_") for f in files]
    digit = np.array([int(p[0]) for p in parts])
    speaker = np.array([p[1] for p in parts], dtype=object)
    take = np.array([int(p[2]) for p in parts])
    accents = pd.read_csv(data_dir / "fsdd" / "speakers.csv").set_index("speaker")["accent"]
    with np.load(data_dir / "mnist" / "mnist_test10k.npz") as mnist:
        images, labels = mnist["X"], mnist["y"]
    test = take < 5
    rng = np.random.RandomState(seed)
    pick = np.empty(len(files), dtype=int)
    for d in range(10):
        pool = rng.permutation(np.flatnonzero(labels == d))
        used = 0
        for part in (~test, test):  # disjoint slices of one permutation: no reuse anywhere
            rows = np.flatnonzero((digit == d) & part)
            if used + len(rows) > len(pool):
                sys.exit(f"not enough MNIST images of digit {d} to pair without reuse")
            pick[rows] = pool[used:used + len(rows)]
            used += len(rows)
    X = pd.DataFrame({"image": pd.Series(list(images[pick]), dtype=object),
                      "audio": pd.Series([str(f) for f in files], dtype=object)})
    Y = pd.DataFrame({"digit": digit, "speaker": speaker,
                      "accent": accents.loc[speaker].to_numpy(dtype=object)})
    return X, Y, test


def make_fusion(image: str) -> ModalityFusion:
    """One transformer per modality; audio statistics and pixels are standardised."""
    if image == "pixels":
        image_tf = ImageFeatures(output="pixels", normalize="standard")
    elif image == "tensor":
        image_tf = ImageFeatures(output="tensor", normalize="standard")
    else:
        image_tf = make_pipeline(ImageFeatures(output="hog", hog_cell=4), StandardScaler())
    device = "auto" if torch.cuda.is_available() else "cpu"
    audio_tf = make_pipeline(
        AudioFeatures(AUDIO_FEATURES, sr=8000, backend="torch", device=device, n_jobs=2),
        StandardScaler())
    return ModalityFusion([("image", image_tf, "image"), ("audio", audio_tf, "audio")])


def select(Xb: ModalityBlocks, names) -> ModalityBlocks:
    """The blocks ``names`` of ``Xb`` (with their masks)."""
    return ModalityBlocks({n: Xb[n] for n in names}, masks={n: Xb.masks[n] for n in names})


def hide(X: pd.DataFrame, modality: str, share: float, seed: int) -> pd.DataFrame:
    """Copy of ``X`` with ``modality`` set to None in a random ``share`` of rows (nested)."""
    X = X.copy()
    order = np.random.RandomState(seed).permutation(len(X))
    rows = order[: int(round(share * len(X)))]
    col = X[modality].to_numpy(dtype=object).copy()
    col[rows] = None
    X[modality] = pd.Series(col, index=X.index, dtype=object)
    return X


# ------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------
def baselines(Xtr, Ytr, Xte, Yte, quick: bool) -> dict[str, dict]:
    """LogisticRegressionCV and HistGradientBoosting, one per task, on the concatenation."""
    out = {}
    # scikit-learn >= 1.9 warns unless told which fitted attributes to keep
    legacy = ({"use_legacy_attributes": False}
              if "use_legacy_attributes" in LogisticRegressionCV().get_params() else {})
    specs = {
        "LogisticRegressionCV (per task)": lambda: LogisticRegressionCV(
            Cs=[0.01, 0.1, 1.0], cv=3, max_iter=3000, scoring="accuracy", **legacy),
        "HistGradientBoosting (per task)": lambda: HistGradientBoostingClassifier(
            max_iter=30 if quick else 100, random_state=0),
    }
    for name, factory in specs.items():
        t0 = time.perf_counter()
        scores = {}
        for task in TASKS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=FutureWarning)
                est = factory().fit(Xtr, Ytr[task].astype(str))
            scores[task] = float(np.mean(est.predict(Xte) == Yte[task].astype(str)))
        out[name] = {"scores": [scores], "fit_s": [time.perf_counter() - t0]}
        print(f"  {name}: {_fmt_scores(scores)}  ({time.perf_counter() - t0:.1f} s)",
              flush=True)
    return out


def model_specs(mds: list[float]) -> list[dict]:
    """Networks to train: single modalities, fused multi-task and fused single-task."""
    specs = [
        {"name": "image only (multi-task)", "blocks": ["image"], "heads": "multi"},
        {"name": "audio only (multi-task)", "blocks": ["audio"], "heads": "multi"},
    ]
    for fusion in FUSIONS:
        for md in [0.0, *mds]:
            specs.append({"name": f"{fusion}, multi-task, md={format_dropout(md)}",
                          "blocks": list(MODALITIES), "heads": "multi", "fusion": fusion,
                          "md": md, "robust": True})
        if fusion == "late":  # deep supervision: each block's own heads also learn the tasks
            for md in [0.0, *mds]:
                specs.append({"name": f"late + block loss, multi-task, md={format_dropout(md)}",
                              "blocks": list(MODALITIES), "heads": "multi", "fusion": fusion,
                              "md": md, "robust": True, "block_loss_weight": 1.0})
        specs.append({"name": f"{fusion}, single-task, md=0", "blocks": list(MODALITIES),
                      "heads": "single", "fusion": fusion, "md": 0.0})
    return specs


def parse_dropout(text: str) -> float | dict[str, float]:
    """``"0.5"`` → 0.5; ``"audio=0.7,image=0.2"`` → per-block rates."""
    if "=" not in text:
        return float(text)
    return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}


def format_dropout(md: float | dict[str, float]) -> str:
    if isinstance(md, dict):
        return "/".join(f"{k}:{v:g}" for k, v in md.items())
    return f"{md:g}"


def run_spec(spec, seed, Btr, Ytr, Bte, Yte, missing, net_params):
    """Fit one spec with one seed; scores on the test set (and with missing modalities)."""
    params = dict(net_params)
    if "fusion" in spec:
        params.update(fusion=spec["fusion"], module__modality_dropout=spec["md"])
        if spec.get("block_loss_weight"):
            params["module__block_loss_weight"] = spec["block_loss_weight"]
    Xtr, Xte = select(Btr, spec["blocks"]), select(Bte, spec["blocks"])
    groups = [list(TASKS)] if spec["heads"] == "multi" else [[t] for t in TASKS]
    t0 = time.perf_counter()
    nets = []
    for group in groups:
        net = MultiTaskNet(tasks={t: TASKS[t] for t in group}, random_state=seed, **params)
        nets.append((group, net.fit(Xtr, Ytr[group])))
    fit_s = time.perf_counter() - t0
    scores = {}
    for group, net in nets:
        scores.update(net.score_tasks(Xte, Yte[group]))
    result = {"scores": scores, "fit_s": fit_s}
    if spec.get("robust"):
        net = nets[0][1]
        result["weights"] = net.modality_weights(Xte).mean(0).tolist()
        result["missing"] = {
            modality: {share: net.score_tasks(select(Xb, spec["blocks"]), Yte)
                       for share, Xb in by_share.items()}
            for modality, by_share in missing.items()
        }
    return result


# ------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------
def _fmt_scores(scores: dict) -> str:
    return ", ".join(f"{t} {v:.3f}" for t, v in scores.items())


def _mean(runs: list[dict], task: str) -> float:
    return float(np.mean([r[task] for r in runs]))


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def robust_mean(res: dict) -> float:
    """Mean accuracy over tasks, seeds and test conditions (complete + 8 with missing data)."""
    return float(np.mean([
        r[modality][share][task] for r in res["missing"] for modality in r
        for share in SHARES if share > 0 or modality == "audio" for task in TASKS]))


def print_main_table(results: dict, n_seeds: int) -> None:
    print(f"\n### Test accuracy per task (mean ± std over {n_seeds} seed(s))\n")
    print("| model | digit | speaker | accent | mean | Δp vs single-task (%) | fit s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, res in results.items():
        runs = res["scores"]
        cells = [_cell([r[t] for r in runs]) for t in TASKS]
        mean = np.mean([_mean(runs, t) for t in TASKS])
        dp = ""
        if "multi-task, md" in name:
            fusion = name.split(",")[0].split(" + ")[0]
            single = results[f"{fusion}, single-task, md=0"]["scores"]
            dp = f"{np.mean([delta_p(a, b) for a, b in zip(runs, single)]):+.2f}"
        fit = np.mean(res["fit_s"])
        print(f"| {name} | {' | '.join(cells)} | {mean:.3f} | {dp} | {fit:.1f} |")


def print_robustness_summary(results: dict) -> None:
    print("\n### Missing modalities, every fused multi-task network (mean over seeds)\n")
    print("Digit accuracy with a share of the test audio missing (the image must carry it), "
          "and mean accuracy over the three tasks with a share of the images missing; 'all "
          "conditions': accuracy averaged over the tasks and the nine test conditions "
          "(complete, and 25-100 % of either modality missing); 'weight': mean "
          "`modality_weights` on the complete test set (concat fusion has none).\n")
    head = ["audio missing: digit " + f"{s:.0%}" for s in SHARES[1:]]
    head += ["image missing: mean " + f"{s:.0%}" for s in SHARES[1:]]
    head += ["all conditions", "weight image / audio"]
    print("| model | " + " | ".join(head) + " |")
    print("| --- |" + " ---: |" * len(head))
    image_only = _mean(results["image only (multi-task)"]["scores"], "digit")
    audio_only = np.mean([_mean(results["audio only (multi-task)"]["scores"], t)
                          for t in TASKS])
    print("| single remaining modality's network | "
          + " | ".join([f"{image_only:.3f}"] * (len(SHARES) - 1)
                       + [f"{audio_only:.3f}"] * (len(SHARES) - 1)) + " | | |")
    for name, res in results.items():
        if "missing" not in res:
            continue
        cells = [np.mean([r["audio"][s]["digit"] for r in res["missing"]]) for s in SHARES[1:]]
        cells += [np.mean([np.mean([r["image"][s][t] for t in TASKS]) for r in res["missing"]])
                  for s in SHARES[1:]]
        cells.append(robust_mean(res))
        w = np.mean(res["weights"], axis=0)
        weight = "—" if name.startswith("concat") else f"{w[0]:.2f} / {w[1]:.2f}"
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {weight} |")


def print_best_curves(name: str, results: dict, n_test: int) -> list[str]:
    """Detailed curves of the best model; returns the shortfalls against the references."""
    res = results[name]
    shortfalls = []
    for modality, other in (("audio", "image"), ("image", "audio")):
        ref_name = f"{other} only (multi-task)"
        ref = {t: _mean(results[ref_name]["scores"], t) for t in TASKS}
        print(f"\n### {name}: share of test rows missing their {modality}\n")
        print("| missing | digit | speaker | accent |")
        print("| ---: | ---: | ---: | ---: |")
        for share in SHARES:
            runs = [r[modality][share] for r in res["missing"]]
            print(f"| {share:.0%} | " + " | ".join(_cell([r[t] for r in runs]) for t in TASKS)
                  + " |")
            for t in TASKS:
                if _mean(runs, t) < ref[t] - 1e-9:
                    rows = (ref[t] - _mean(runs, t)) * n_test
                    shortfalls.append(f"{modality} {share:.0%} missing, {t}: "
                                      f"{_mean(runs, t):.3f} < {ref[t]:.3f} ({rows:.1f} of "
                                      f"{n_test} rows)")
        print(f"| {ref_name} | " + " | ".join(
            _cell([r[t] for r in results[ref_name]["scores"]]) for t in TASKS) + " |")
    return shortfalls


def plot_curves(name: str, results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    no_md = name.split(",")[0] + ", multi-task, md=0"
    fig, axes = plt.subplots(2, 3, figsize=(10, 5.6), sharex=True)
    x = [100 * s for s in SHARES]
    for row, (modality, other) in enumerate((("audio", "image"), ("image", "audio"))):
        for col, task in enumerate(TASKS):
            ax = axes[row, col]
            for label, style in [(name, "-o")] + ([(no_md, "--s")] if no_md != name else []):
                runs = results[label]["missing"]
                y = np.array([[r[modality][s][task] for s in SHARES] for r in runs])
                ax.plot(x, y.mean(0), style, ms=4, label=f"fused: {label}")
                if len(runs) > 1:
                    ax.fill_between(x, y.min(0), y.max(0), alpha=0.15)
            ref = _mean(results[f"{other} only (multi-task)"]["scores"], task)
            ax.axhline(ref, color="k", ls=":", label=f"{other}-only network")
            ax.set_title(f"{task}, {modality} missing", fontsize=10)
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xlabel("test rows missing the modality (%)")
            if col == 0:
                ax.set_ylabel("test accuracy")
    handles, labels = [], []
    for ax in axes.ravel():  # one legend entry per label across panels
        for h, lab in zip(*ax.get_legend_handles_labels()):
            lab = lab.replace("image-only", "remaining-modality").replace(
                "audio-only", "remaining-modality")
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Audio-visual digits: accuracy as a modality goes missing at test time",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"\nplot: {path} ({path.stat().st_size / 1024:.0f} KB)")


# ------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get(
        "SKLEARN_MTML_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--quick", action="store_true",
                        help="one seed, 15 epochs, one modality-dropout value, smaller HGB")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="network seeds (default 0 1 2; --quick: 0)")
    parser.add_argument("--pair-seed", type=int, default=0, help="seed of the image pairing")
    parser.add_argument("--epochs", type=int, default=None, help="default 40 (--quick: 15)")
    parser.add_argument("--image", choices=["pixels", "hog", "tensor"], default="pixels",
                        help="image features: standardised pixels (default), HOG, or a "
                             "28x28 tensor for the CNN encoder (slow on a CPU)")
    parser.add_argument("--modality-dropout", type=parse_dropout, nargs="+", default=None,
                        help="module__modality_dropout values tried besides 0 for the fused "
                             "multi-task networks: a rate, or per-block rates such as "
                             "audio=0.7,image=0.2 (default 0.25 0.5; --quick: 0.5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                        help="folder for the plot and the JSON results")
    parser.add_argument("--plot", default=None,
                        help="plot path (default OUT/fusion_robustness.png)")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    mds = args.modality_dropout or ([0.5] if args.quick else [0.25, 0.5])
    torch.set_num_threads(args.threads)
    net_params = dict(NET, max_epochs=args.epochs or (15 if args.quick else 40))
    if args.image == "tensor":
        net_params.update(NET_CNN)
    start = time.perf_counter()

    X, Y, test = load_av_digits(Path(args.data), args.pair_seed)
    Xtr, Xte = X[~test].reset_index(drop=True), X[test].reset_index(drop=True)
    Ytr, Yte = Y[~test].reset_index(drop=True), Y[test].reset_index(drop=True)
    print(f"Audio-visual digits: {len(Xtr)} train / {len(Xte)} test rows; tasks {list(TASKS)}; "
          f"image features {args.image!r}; seeds {seeds}; modality dropout {mds}; "
          f"{net_params['max_epochs']} epochs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), {os.cpu_count()} cores, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'}", flush=True)

    t0 = time.perf_counter()
    fusion = make_fusion(args.image)
    Btr = fusion.fit_transform(Xtr)
    Bte = fusion.transform(Xte)
    missing = {m: {s: fusion.transform(hide(Xte, m, s, seed=1 + i)) for s in SHARES}
               for i, m in enumerate(("audio", "image"))}
    print(f"features: {', '.join(f'{n} {Btr[n].shape[1:]}' for n in Btr.names)} "
          f"({time.perf_counter() - t0:.1f} s for train, test and the 10 masked test sets)",
          flush=True)

    print("baselines:", flush=True)
    results = baselines(Btr.concat(), Ytr, Bte.concat(), Yte, args.quick)
    print("networks:", flush=True)
    for spec in model_specs(mds):
        res = {"scores": [], "fit_s": [], "missing": []}
        for seed in seeds:
            r = run_spec(spec, seed, Btr, Ytr, Bte, Yte, missing, net_params)
            res["scores"].append(r["scores"])
            res["fit_s"].append(r["fit_s"])
            if "missing" in r:
                res["missing"].append(r["missing"])
                res.setdefault("weights", []).append(r["weights"])
        if not res["missing"]:
            del res["missing"]
        results[spec["name"]] = res
        means = {t: _mean(res["scores"], t) for t in TASKS}
        print(f"  {spec['name']}: {_fmt_scores(means)}  ({np.sum(res['fit_s']):.1f} s)",
              flush=True)

    print_main_table(results, len(seeds))
    print_robustness_summary(results)
    fused = [n for n, r in results.items() if "missing" in r]
    best = max(fused, key=lambda n: robust_mean(results[n]))
    print(f"\nBest fused multi-task network: {best} (highest accuracy averaged over tasks, seeds "
          "and the nine test conditions: complete, and 25-100 % of the audio or the images "
          "missing).")
    shortfalls = print_best_curves(best, results, len(Yte))

    print("\n### Target check\n")
    best_scores = {t: _mean(results[best]["scores"], t) for t in TASKS}
    others = [n for n in results if "only" in n or "per task" in n]
    for task in TASKS:
        verdicts = []
        for n in others:
            ref = _mean(results[n]["scores"], task)
            rel = ">" if best_scores[task] > ref + 1e-9 else (
                "=" if abs(best_scores[task] - ref) <= 1e-9 else "<")
            verdicts.append(f"{rel} {n.split(' (')[0]} {ref:.3f}")
        print(f"- {task}: best {best_scores[task]:.3f} " + "; ".join(verdicts))
    if shortfalls:
        print("- below the remaining modality's network (mean over seeds):\n  - "
              + "\n  - ".join(shortfalls))
    else:
        print("- never below the remaining modality's network at any share")

    out = Path(args.out)
    plot_curves(best, results, Path(args.plot) if args.plot else out / "fusion_robustness.png")
    total = time.perf_counter() - start
    meta = {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__, "args": vars(args), "seeds": seeds, "best": best,
            "seconds": total}
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_fusion.json", "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    print(f"\ntotal {total / 60:.1f} min; results in {out / 'bench_fusion.json'}")
    return results


if __name__ == "__main__":
    main()
