"""Streaming a memory-mapped input: memory growth and throughput against the in-memory path.

Writes a float32 ``.npy`` file of ``--rows`` × ``--features`` (1.5 GB by default) to
``--dir``, opens it with ``np.load(mmap_mode="r")`` and fits ``MultiTaskNet`` (3 tasks, one
epoch) on it; a sampling thread records the process's anonymous resident memory
(``RssAnon``, which excludes the page cache of the mapped file), so the peak growth is the
memory the fit itself allocated. Then the same model trains one epoch on the first
``--compare`` rows held in memory and memory-mapped: the throughput ratio of the two paths.

With ``--files``, the input is instead ``--rows`` WAV clips (``--seconds`` long, 16 kHz) and
as many PNG images written to ``--dir`` and read through ``FileBlocks``: one epoch streamed
from the files (decoded in ``--workers`` DataLoader workers, log-mel front end on the
device) against one epoch on the same features decoded in memory; the memory growth counts
the main process and its decoding workers.

Usage::

    python benchmarks/bench_streaming.py                 # 1.5 GB, about a minute on 2 cores
    python benchmarks/bench_streaming.py --rows 200000   # quicker
    python benchmarks/bench_streaming.py --files --rows 3000   # about 230 MB of files
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np

from sklearn_mtml import MultiTaskNet


def rss_anon_mb(pid: str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # a process that just ended
        return 0.0
    return float("nan")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out + [g for c in out for g in _children(c)]


def pss_anon_mb(pid: str = "self") -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss_Anon:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # a process that just ended
        return 0.0
    return float("nan")


def tree_pss_anon_mb() -> float:
    """Anonymous memory of this process and its children (DataLoader workers), ``Pss_Anon``.

    A forked worker shares its parent's pages until it writes them; the proportional set
    size counts each shared page once across the processes (``RssAnon`` would count it in
    every process).
    """
    return pss_anon_mb() + sum(pss_anon_mb(str(c)) for c in _children(os.getpid()))


class PeakMemory:
    """Peak memory (``measure``) while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, measure=rss_anon_mb, interval=0.01):
        self.measure = measure
        self.interval = interval

    def __enter__(self):
        self.start = self.measure()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.measure())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_data(path: str, rows: int, features: int, seed: int = 0):
    """A memory-mapped X (written in chunks, never whole in memory) and its targets."""
    rng = np.random.RandomState(seed)
    w = rng.randn(features, 3).astype(np.float32) / np.sqrt(features)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, features))
    Y = np.empty((rows, 3), dtype=np.float64)
    for start in range(0, rows, 100_000):
        part = rng.randn(min(100_000, rows - start), features).astype(np.float32)
        X[start:start + len(part)] = part
        z = part @ w
        Y[start:start + len(part)] = np.column_stack(
            [z[:, 0] > 0, np.digitize(z[:, 1], [-0.5, 0.5]), z[:, 2]])
    X.flush()
    del X
    return np.load(path, mmap_mode="r"), Y


def net(**kw):
    return MultiTaskNet(tasks=["binary", "multiclass", "regression"], max_epochs=1,
                        batch_size=256, early_stopping=False, random_state=0, **kw)


def write_files(root: str, rows: int, seconds: float, seed: int = 0):
    """WAV clips (16 kHz, 16-bit) whose pitch, and PNGs whose brightness, follow 3 targets."""
    import soundfile as sf
    from PIL import Image

    rng = np.random.RandomState(seed)
    sr, audio, images = 16000, [], []
    t = np.arange(int(seconds * sr)) / sr
    Y = np.empty((rows, 3))
    for i in range(rows):
        a, b, c = rng.rand(3)
        Y[i] = a > 0.5, int(b * 3), c
        clip = 0.3 * np.sin(2 * np.pi * (200 + 600 * a) * t) + 0.05 * rng.randn(t.size)
        audio.append(os.path.join(root, f"clip{i}.wav"))
        sf.write(audio[-1], clip.astype(np.float32), sr, subtype="PCM_16")
        img = rng.randint(0, 100, (64, 64, 3)) + int(150 * b)
        images.append(os.path.join(root, f"img{i}.png"))
        Image.fromarray(img.astype(np.uint8)).save(images[-1])
    return audio, images, Y


def bench_files(args):
    import shutil

    from sklearn_mtml import FileBlocks

    root = tempfile.mkdtemp(prefix="bench_files_", dir=args.dir)
    try:
        start = time.perf_counter()
        audio, images, Y = write_files(root, args.rows, args.seconds)
        write_s = time.perf_counter() - start
        disk_mb = sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root)) / 1e6
        X = FileBlocks(audio={"speech": audio}, images={"photo": images}, sr=16000,
                       duration=args.seconds, image_size=(32, 32))
        workers = dict(iterator_train__num_workers=args.workers,
                       iterator_valid__num_workers=args.workers)
        with PeakMemory(tree_pss_anon_mb, 0.05) as mem:
            start = time.perf_counter()
            model = net(streaming=True, **workers).fit(X, Y)
            fit_s = time.perf_counter() - start
        with PeakMemory(tree_pss_anon_mb, 0.05) as pred_mem:
            start = time.perf_counter()
            model.predict(X)
            pred_s = time.perf_counter() - start
        start = time.perf_counter()
        Xb = X.load(num_workers=args.workers)
        load_s = time.perf_counter() - start
        timings = {}
        for name, data, kw in [("in memory", Xb, {}), ("from files", X, workers)] * 2:
            start = time.perf_counter()
            fitted = net(streaming=name == "from files", **kw).fit(data, Y)
            timings[name] = min(timings.get(name, np.inf), time.perf_counter() - start)
        print(f"input: {args.rows:,} WAV clips ({args.seconds:g} s, 16 kHz) + {args.rows:,} "
              f"PNG images (64x64): {disk_mb:.0f} MB on disk (written in {write_s:.0f} s); "
              f"decoded features {X.decoded_nbytes / 1e6:.0f} MB; {args.workers} workers")
        print()
        print("| step | seconds | anonymous memory growth (peak Pss_Anon, with workers) |")
        print("|---|---:|---:|")
        print(f"| fit, 1 epoch, streamed from files | {fit_s:.1f} | "
              f"{mem.peak - mem.start:.0f} MB |")
        print(f"| predict | {pred_s:.1f} | {pred_mem.peak - pred_mem.start:.0f} MB |")
        print(f"| decode everything into memory (FileBlocks.load) | {load_s:.1f} | |")
        print()
        print(f"one epoch (best of 2): in memory {timings['in memory']:.2f} s, from files "
              f"{timings['from files']:.2f} s: throughput ratio "
              f"{timings['in memory'] / timings['from files']:.2f}")
        print("scores (sanity):", {k: round(v, 3) for k, v in model.score_tasks(
            X[:2000], Y[:2000]).items()}, fitted.streamed_)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", action="store_true",
                        help="audio and image files through FileBlocks instead of a memmap")
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length (--files)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers (--files)")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows (default 1,465,000; 3,000 with --files)")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--compare", type=int, default=100_000,
                        help="rows for the in-memory vs streamed throughput comparison")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
    if args.files:
        args.rows = args.rows or 3000
        bench_files(args)
        return
    args.rows = args.rows or 1_465_000
    path = os.path.join(args.dir, f"bench_streaming_{os.getpid()}.npy")
    try:
        X, Y = write_data(path, args.rows, args.features)
        size_gb = X.nbytes / 1e9
        with PeakMemory() as mem:
            start = time.perf_counter()
            model = net().fit(X, Y)
            fit_s = time.perf_counter() - start
        with PeakMemory() as pred_mem:
            start = time.perf_counter()
            model.predict(X)
            pred_s = time.perf_counter() - start
        n = min(args.compare, args.rows)
        in_memory = np.array(X[:n])  # a copy in RAM
        timings = {}
        for name, data, kw in [("in memory", in_memory, {}), ("streamed", X[:n], {}),
                               ("in memory", in_memory, {}), ("streamed", X[:n], {})]:
            start = time.perf_counter()
            fitted = net(**kw).fit(data, Y[:n])
            timings[name] = min(timings.get(name, np.inf), time.perf_counter() - start)
            assert fitted.streamed_ == (name == "streamed")
        print(f"input: {args.rows:,} x {args.features} float32 memory-mapped ({size_gb:.2f} GB)")
        print()
        print("| step | seconds | anonymous memory growth (peak) |")
        print("|---|---:|---:|")
        print(f"| fit, 1 epoch, streamed | {fit_s:.1f} | {mem.peak - mem.start:.0f} MB |")
        print(f"| predict | {pred_s:.1f} | {pred_mem.peak - pred_mem.start:.0f} MB |")
        print()
        print(f"one epoch on the first {n:,} rows (best of 2): in memory "
              f"{timings['in memory']:.2f} s, streamed {timings['streamed']:.2f} s: "
              f"throughput ratio {timings['in memory'] / timings['streamed']:.2f}")
        print("training scores (sanity):",
              {k: round(v, 3) for k, v in model.score_tasks(X[:20000], Y[:20000]).items()})
    finally:
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
