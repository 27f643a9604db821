"""Data-parallel fit (torchrun, N processes) against a single-process fit: quality and speed.

Launches ``N`` processes with ``torch.distributed.run`` (gloo on the CPU, NCCL on GPUs), each
calling ``MultiTaskNet.fit`` on the same 3-task data (its share of the rows per epoch), and
times a single-process fit of the same model in this process. Prints the wall time ratio and
the test scores of both (a data-parallel fit takes world_size times fewer optimizer steps
per epoch, with the same batch size per process).

``--engine accelerate`` runs ``sklearn_mtml.accelerate.AcceleratedMultiTaskNet`` with an
``accelerate.Accelerator()`` in each process instead (the same launcher; on GPUs
``accelerate launch --multi_gpu`` starts the same processes).

Usage::

    python benchmarks/bench_distributed.py --nproc 2 --device cpu
    python benchmarks/bench_distributed.py --nproc 2 --device cpu --engine accelerate
    python benchmarks/bench_distributed.py --nproc 8 --device cuda --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_data(rows: int, features: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.randn(rows, features).astype(np.float32)
    w = rng.randn(features, 3).astype(np.float32) / np.sqrt(features)
    z = X @ w + 0.3 * np.tanh(X[:, :3] * X[:, 3:6])
    Y = np.column_stack([z[:, 0] > 0, np.digitize(z[:, 1], [-0.5, 0.5]), z[:, 2]])
    return X, Y.astype(float)


def params(device: str, epochs: int) -> dict:
    return dict(tasks=["binary", "multiclass", "regression"], max_epochs=epochs,
                early_stopping=False, random_state=0, device=device,
                module__hidden_sizes=(256, 128))


def worker(out: str, device: str, epochs: int, engine: str = "torch") -> None:
    import torch.distributed as dist

    from sklearn_mtml import MultiTaskNet

    if engine == "accelerate":
        from accelerate import Accelerator

        from sklearn_mtml.accelerate import AcceleratedMultiTaskNet

        accelerator = Accelerator(cpu=device == "cpu")  # initialises the process group
        net = AcceleratedMultiTaskNet(accelerator=accelerator,
                                      **{**params(device, epochs), "device": None})
    else:
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
        net = MultiTaskNet(**params(device, epochs))
    d = np.load(os.path.join(out, "data.npz"))
    dist.barrier()
    start = time.perf_counter()
    net.fit(d["X"], d["Y"])
    seconds = time.perf_counter() - start
    if dist.get_rank() == 0:
        scores = net.score_tasks(d["Xt"], d["Yt"])
        with open(os.path.join(out, "result.json"), "w") as f:
            json.dump({"seconds": seconds, "scores": scores}, f)
    dist.destroy_process_group()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--engine", choices=["torch", "accelerate"], default="torch",
                        help="data-parallel MultiTaskNet (torch) or AcceleratedMultiTaskNet")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.device, args.epochs, args.engine)
        return
    from sklearn_mtml import MultiTaskNet

    X, Y = make_data(args.rows + 20_000, args.features)
    X, Xt, Y, Yt = X[:args.rows], X[args.rows:], Y[:args.rows], Y[args.rows:]
    with tempfile.TemporaryDirectory() as out:
        np.savez(os.path.join(out, "data.npz"), X=X, Y=Y, Xt=Xt, Yt=Yt)
        threads = max(1, (os.cpu_count() or 1) // args.nproc) if args.device == "cpu" else 4
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc_per_node={args.nproc}", __file__, "--worker", out,
                        "--device", args.device, "--epochs", str(args.epochs),
                        "--engine", args.engine],
                       check=True, env=env)
        launch_s = time.perf_counter() - start
        with open(os.path.join(out, "result.json")) as f:
            ddp = json.load(f)
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1) if args.device == "cpu" else 4)
    start = time.perf_counter()
    single = MultiTaskNet(**params(args.device, args.epochs)).fit(X, Y)
    single_s = time.perf_counter() - start
    single_scores = single.score_tasks(Xt, Yt)
    print(f"device={args.device} rows={args.rows:,} features={args.features} "
          f"epochs={args.epochs} processes={args.nproc} engine={args.engine}")
    print()
    print("| run | fit s | ratio | test scores |")
    print("|---|---:|---:|---|")
    fmt = lambda s: ", ".join(f"{k} {v:.3f}" for k, v in s.items())  # noqa: E731
    print(f"| single process | {single_s:.1f} | 1.00x | {fmt(single_scores)} |")
    print(f"| {args.nproc} processes (fit only) | {ddp['seconds']:.1f} | "
          f"{ddp['seconds'] / single_s:.2f}x | {fmt(ddp['scores'])} |")
    print(f"(with process start-up: {launch_s:.1f} s)")


if __name__ == "__main__":
    main()
