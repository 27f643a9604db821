"""Streaming a memory-mapped input: memory growth and throughput against the in-memory path.

Writes a float32 ``.npy`` file of ``--rows`` × ``--features`` (1.5 GB by default) to
``--dir``, opens it with ``np.load(mmap_mode="r")`` and fits ``MultiTaskNet`` (3 tasks, one
epoch) on it; a sampling thread records the process's anonymous resident memory
(``RssAnon``, which excludes the page cache of the mapped file), so the peak growth is the
memory the fit itself allocated. Then the same model trains one epoch on the first
``--compare`` rows held in memory and memory-mapped: the throughput ratio of the two paths.

Usage::

    python benchmarks/bench_streaming.py                 # 1.5 GB, about a minute on 2 cores
    python benchmarks/bench_streaming.py --rows 200000   # quicker
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np

from sklearn_mtml import MultiTaskNet


def rss_anon_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """Peak ``RssAnon`` while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.start = rss_anon_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_anon_mb())

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_465_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--compare", type=int, default=100_000,
                        help="rows for the in-memory vs streamed throughput comparison")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
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
