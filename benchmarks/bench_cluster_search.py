"""A loss-weight ``GridSearchCV`` on local 2-worker Dask and Ray clusters: speed and kill tests.

``--mode time`` times the same search locally (one process), with ``on_cluster`` on a
``LocalCluster(n_workers=2, threads_per_worker=1)`` and on a 2-CPU local Ray (cluster start
excluded), and checks that the scores agree. ``--mode kill`` runs the search ``--runs``
times per backend, each in a fresh process with a fresh cluster, and SIGKILLs the worker
process running a fit 0.3 s after it starts; it prints how many searches completed:

- ``joblib-dask``: ``joblib.parallel_config(backend="dask")``;
- ``on_cluster-dask``: ``sklearn_mtml.parallel.on_cluster(client)``;
- ``ray-joblib``: ``ray.util.joblib`` (``parallel_config(backend="ray", n_jobs=-1)``);
- ``on_cluster-ray``: ``on_cluster("ray")``.

Usage::

    python benchmarks/bench_cluster_search.py --mode time
    python benchmarks/bench_cluster_search.py --mode kill --runs 5
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

BACKENDS = ("joblib-dask", "on_cluster-dask", "ray-joblib", "on_cluster-ray")


def make_search(rows: int, epochs: int):
    from sklearn.model_selection import GridSearchCV

    from sklearn_mtml import MultiTaskNet

    rng = np.random.RandomState(0)
    X = rng.randn(rows, 8).astype(np.float32)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] - X[:, 2]])
    net = MultiTaskNet(max_epochs=epochs, random_state=0, verbose=0)
    grid = {"loss_weights": [[1.0, w] for w in (0.25, 0.5, 1.0, 2.0)]}
    return GridSearchCV(net, grid, cv=3), X, Y


def _ray_busy(marker: str) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"])
            if " ".join(p.info["cmdline"] or []).startswith(f"ray::{marker}")]


def one_kill_run(backend: str, rows: int, epochs: int) -> str:
    """One search with a worker killed mid-fit: ``"ok"`` or the error."""
    import joblib

    from sklearn_mtml.parallel import on_cluster

    search, X, Y = make_search(rows, epochs)
    stop = threading.Event()
    if backend.endswith("dask"):
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        pids = client.run(os.getpid)

        def victim() -> int | None:
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            return pids[busy[0]] if busy else None
    else:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        marker = "PoolActor.run_batch" if backend == "ray-joblib" else "_run_calls"

        def victim() -> int | None:
            busy = _ray_busy(marker)
            return busy[0] if busy else None

    def killer() -> None:
        while not stop.is_set():
            pid = victim()
            if pid is not None:
                time.sleep(0.3)
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    threading.Thread(target=killer, daemon=True).start()
    try:
        if backend == "joblib-dask":
            with joblib.parallel_config(backend="dask"):
                search.fit(X, Y)
        elif backend == "on_cluster-dask":
            with on_cluster(client):
                search.fit(X, Y)
        elif backend == "ray-joblib":
            from ray.util.joblib import register_ray

            register_ray()
            with joblib.parallel_config(backend="ray", n_jobs=-1):
                search.fit(X, Y)
        else:
            with on_cluster("ray"):
                search.fit(X, Y)
        scores = search.cv_results_["mean_test_score"]
        return "ok" if np.isfinite(scores).all() else "nan scores"
    except Exception as exc:  # noqa: BLE001 - the outcome is the measurement
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        stop.set()


def time_search(rows: int, epochs: int) -> None:
    from sklearn_mtml.parallel import on_cluster

    search, X, Y = make_search(rows, epochs)
    start = time.perf_counter()
    search.fit(X, Y)
    local = time.perf_counter() - start
    reference = search.cv_results_["mean_test_score"]
    print(f"local, 1 process: {local:.1f} s")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(__import__, "sklearn_mtml")
        start = time.perf_counter()
        with on_cluster(client):
            search.fit(X, Y)
        took = time.perf_counter() - start
        same = np.allclose(search.cv_results_["mean_test_score"], reference, rtol=1e-4)
        print(f"Dask, 2 workers: {took:.1f} s ({took / local:.2f}x), same scores: {same}")
    try:
        import ray
    except ImportError:
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    for label in ("Ray, 2 CPUs (cold workers)", "Ray, 2 CPUs (warm workers)"):
        start = time.perf_counter()
        with on_cluster("ray"):
            search.fit(X, Y)
        took = time.perf_counter() - start
        same = np.allclose(search.cv_results_["mean_test_score"], reference, rtol=1e-4)
        print(f"{label}: {took:.1f} s ({took / local:.2f}x), same scores: {same}")
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["time", "kill"], default="time")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one kill run
    args = parser.parse_args()
    if args.one:
        print("OUTCOME", one_kill_run(args.one, args.rows, args.epochs), flush=True)
        return
    if args.mode == "time":
        time_search(args.rows, args.epochs)
        return
    for backend in args.backends.split(","):
        outcomes = []
        for _ in range(args.runs):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", backend, "--rows", str(args.rows),
                 "--epochs", str(args.epochs)], capture_output=True, text=True, timeout=600)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("OUTCOME")]
            outcomes.append(lines[-1][8:] if lines else f"crashed: {proc.stderr[-200:]}")
        passed = sum(o == "ok" for o in outcomes)
        print(f"{backend}: {passed}/{args.runs} searches completed")
        for outcome in sorted(set(outcomes) - {"ok"}):
            print(f"    {outcome}")


if __name__ == "__main__":
    main()
