"""Benchmark AudioFeatures backends on the FSDD recordings.

Times, in one process, the librosa backend (n_jobs=1 and n_jobs=2), the batched torch backend
on the CPU (float32 and float64; n_jobs batches at a time with one torch thread each, or torch's
own threading with n_jobs=None) and, when available, on CUDA. Two settings are timed: from file
paths (file reading included, with the same soundfile reader for every backend) and "features
only" on pre-loaded waveforms. Prints a markdown table with seconds, speed-up over librosa
n_jobs=1 and the maximum relative difference to librosa (per output column: max |a - b| /
max |b| over the clips, then the maximum over columns).

Usage::

    python benchmarks/bench_audio_features.py --data ../shared/data [--limit 3000]
        [--features mfcc delta] [--output stats] [--repeat 3]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklearn_mtml.features import AudioFeatures  # noqa: E402
from sklearn_mtml.features.audio import _read_file  # noqa: E402


def _best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _rel_diff(a, b):
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    scale = np.abs(b).max(axis=0)
    scale[scale == 0] = 1.0
    return float((np.abs(a - b).max(axis=0) / scale).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default=os.environ.get("SKLEARN_MTML_DATA", str(Path("..") / "shared" / "data"))
    )
    parser.add_argument("--limit", type=int, default=3000, help="number of clips")
    parser.add_argument("--features", nargs="+", default=["mfcc", "delta"])
    parser.add_argument("--output", default="stats", choices=["stats", "sequence"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    files = sorted(glob.glob(os.path.join(args.data, "fsdd", "recordings", "*.wav")))
    if not files:
        sys.exit(f"no FSDD recordings under {args.data!r}: pass --data or set SKLEARN_MTML_DATA")
    files = files[: args.limit]
    import torch

    common = dict(features=tuple(args.features), sr=8000, output=args.output)
    if args.output == "sequence":
        common["max_frames"] = 150
    configs = [
        ("librosa, n_jobs=1", dict(backend="librosa", n_jobs=1)),
        ("librosa, n_jobs=2", dict(backend="librosa", n_jobs=2)),
        ("torch cpu float32, n_jobs=1", dict(backend="torch", device="cpu", n_jobs=1)),
        ("torch cpu float32, n_jobs=2", dict(backend="torch", device="cpu", n_jobs=2)),
        ("torch cpu float32, n_jobs=None (torch threads)",
         dict(backend="torch", device="cpu", n_jobs=None)),
        ("torch cpu float64, n_jobs=2",
         dict(backend="torch", device="cpu", n_jobs=2, precision="float64")),
    ]
    if torch.cuda.is_available():
        configs.append(("torch cuda float32", dict(backend="torch", device="cuda", n_jobs=2)))
        configs.append(("torch cuda float64", dict(backend="torch", device="cuda", n_jobs=2,
                                                    precision="float64")))

    t0 = time.perf_counter()
    waves = [_read_file(i, f, "bench")[0] for i, f in enumerate(files)]
    t_load = time.perf_counter() - t0
    print(f"{len(files)} clips, {sum(map(len, waves)) / 8000:.0f} s of audio; "
          f"reading the files once with soundfile: {t_load:.2f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"features={args.features}, output={args.output}\n")

    rows, ref = [], {}
    for label, params in configs:
        est = AudioFeatures(**common, **params).fit(files[:10])
        est.transform(files[:10])  # warm-up (imports, numba, worker pools, CUDA context)
        for setting, data in (("paths", files), ("features only", waves)):
            secs, out = _best_time(lambda d=data, e=est: e.transform(d), args.repeat)
            if label.startswith("librosa, n_jobs=1"):
                ref[setting] = (secs, out)
            base_secs, base_out = ref[setting]
            rows.append((setting, label, secs, base_secs / secs, _rel_diff(out, base_out)))

    print("| input | backend | seconds | speed-up vs librosa n_jobs=1 | max rel. diff |")
    print("| --- | --- | ---: | ---: | ---: |")
    for setting, label, secs, ratio, diff in sorted(rows, key=lambda r: r[0] != "paths"):
        print(f"| {setting} | {label} | {secs:.3f} | {ratio:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
