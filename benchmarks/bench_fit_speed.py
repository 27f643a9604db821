"""Fit and predict speed: hand-written PyTorch loop vs plain skorch vs MultiTaskNet.

The same shared-bottom 3-task network (one binary, one 5-class, one regression task) and the
same data are trained (a) by a hand-written eager PyTorch loop over tensors on the device,
(b) by a plain skorch ``NeuralNet`` with a summed multi-task loss and skorch's default
DataLoader, and (c) by ``MultiTaskNet``. Prediction is timed against a plain
``torch.no_grad()`` pass. All in one process; each timing is the best of ``--repeats`` runs, and
the ratios to the reference are what to read (these machines are noisy).

Usage::

    python benchmarks/bench_fit_speed.py                    # CPU-sized defaults
    python benchmarks/bench_fit_speed.py --n 200000 --device cuda   # the GPU figure
    python benchmarks/bench_fit_speed.py --options   # + precision, compile (+ cuda_graphs on CUDA)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skorch import NeuralNet
from torch import nn

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.nn.model import MultiTaskModule

HIDDEN = (256, 128)
TOWER = (64,)
N_CLASSES = 5


def make_data(n: int, d: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(np.float32)
    w = rng.randn(d, 3).astype(np.float32) / np.sqrt(d)
    z = X @ w
    y_bin = (z[:, 0] > 0).astype(np.int64)
    y_cls = np.digitize(z[:, 1], np.quantile(z[:, 1], [0.2, 0.4, 0.6, 0.8])).astype(np.int64)
    y_reg = (z[:, 2] + 0.1 * rng.randn(n)).astype(np.float32)
    return X, y_bin, y_cls, y_reg


def build_module(d: int) -> MultiTaskModule:
    return MultiTaskModule({"X": (d,)}, [1, N_CLASSES, 1], hidden_sizes=HIDDEN, tower_sizes=TOWER)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def summed_loss(outputs, y_bin, y_cls, y_reg):
    return (nn.functional.binary_cross_entropy_with_logits(outputs[0][:, 0], y_bin.float())
            + nn.functional.cross_entropy(outputs[1], y_cls)
            + nn.functional.mse_loss(outputs[2][:, 0], y_reg))


def hand_loop(data, device, epochs, batch_size, lr):
    X, y_bin, y_cls, y_reg = data
    torch.manual_seed(0)
    model = build_module(X.shape[1]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    sync(device)
    start = time.perf_counter()
    Xt = torch.from_numpy(X).to(device)
    yb, yc, yr = (torch.from_numpy(a).to(device) for a in (y_bin, y_cls, y_reg))
    n = len(Xt)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, device=device)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            opt.zero_grad(set_to_none=True)
            out = model({"X": Xt[idx]})
            loss = summed_loss(out, yb[idx], yc[idx], yr[idx])
            loss.backward()
            opt.step()
    sync(device)
    return time.perf_counter() - start, model


class _ConcatOutputs(nn.Module):
    """Plain skorch needs one output tensor: concatenate the task outputs."""

    def __init__(self, d):
        super().__init__()
        self.inner = build_module(d)

    def forward(self, X):
        return torch.cat(self.inner({"X": X}), dim=1)


class _SummedCriterion(nn.Module):
    def forward(self, y_pred, y_true):
        outs = [y_pred[:, :1], y_pred[:, 1:1 + N_CLASSES], y_pred[:, 1 + N_CLASSES:]]
        return summed_loss(outs, y_true[:, 0].long(), y_true[:, 1].long(), y_true[:, 2])


def plain_skorch(data, device, epochs, batch_size, lr):
    X, y_bin, y_cls, y_reg = data
    Y = np.column_stack([y_bin, y_cls, y_reg]).astype(np.float32)
    torch.manual_seed(0)
    net = NeuralNet(_ConcatOutputs, _SummedCriterion, module__d=X.shape[1],
                    optimizer=torch.optim.AdamW, lr=lr, max_epochs=epochs,
                    batch_size=batch_size, train_split=None, device=str(device), verbose=0,
                    iterator_train__shuffle=True)
    sync(device)
    start = time.perf_counter()
    net.fit(X, Y)
    sync(device)
    return time.perf_counter() - start, net


#: The hand-written loop's model and training: no input scaling, wide path, validation split
#: or schedule, so that MultiTaskNet does the same work.
SAME_MODEL = {"input_scaling": None, "module__wide": False, "early_stopping": False,
              "lr_schedule": None}


def ours(data, device, epochs, batch_size, lr, **params):
    X, y_bin, y_cls, y_reg = data
    Y = np.column_stack([y_bin, y_cls, y_reg]).astype(np.float32)
    net = MultiTaskNet(tasks=["binary", "multiclass", "regression"], lr=lr, max_epochs=epochs,
                       batch_size=batch_size, device=str(device), random_state=0,
                       module__hidden_sizes=HIDDEN, module__tower_sizes=TOWER,
                       **(SAME_MODEL | params))
    sync(device)
    start = time.perf_counter()
    net.fit(X, Y)
    sync(device)
    return time.perf_counter() - start, net


def time_predict(fn, device, repeats):
    best = np.inf
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="rows")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--options", action="store_true",
                        help="also time precision='bf16', '16-mixed', compile=True and, "
                             "on CUDA, cuda_graphs=True")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    data = make_data(args.n, args.features)
    runs = {"hand-written loop": hand_loop, "plain skorch": plain_skorch,
            "MultiTaskNet": ours,
            "MultiTaskNet, default features": lambda *a: ours(
                *a, input_scaling="robust", module__wide=True, lr_schedule="cosine")}
    if args.options:
        runs |= {"MultiTaskNet, precision='bf16'": lambda *a: ours(*a, precision="bf16"),
                 "MultiTaskNet, precision='16-mixed'": lambda *a: ours(
                     *a, precision="16-mixed"),
                 # compiled once per fit: the first epoch pays the compilation
                 "MultiTaskNet, compile=True": lambda *a: ours(*a, compile=True)}
        if device.type == "cuda":  # CUDA graphs need a CUDA device
            runs |= {"MultiTaskNet, cuda_graphs=True": lambda *a: ours(*a, cuda_graphs=True),
                     "MultiTaskNet, cuda_graphs=True, precision='bf16'": lambda *a: ours(
                         *a, cuda_graphs=True, precision="bf16")}
    fit_times = {name: np.inf for name in runs}
    models = {}
    hand_loop(data, device, 1, args.batch_size, 1e-3)  # warm-up (allocator, kernels)
    for _ in range(args.repeats):
        for name, fn in runs.items():  # interleaved so drift hits all three alike
            seconds, model = fn(data, device, args.epochs, args.batch_size, 1e-3)
            fit_times[name] = min(fit_times[name], seconds)
            models[name] = model
    X = data[0]
    ref_model = models["hand-written loop"].eval()

    def plain_pass():
        with torch.no_grad():
            out = ref_model({"X": torch.from_numpy(X).to(device)})
            return [o.cpu() for o in out]

    pred_times = {
        "hand-written loop": time_predict(plain_pass, device, args.repeats),
        "plain skorch": time_predict(lambda: models["plain skorch"].forward(X), device,
                                     args.repeats),
    }
    for name in runs:
        if name.startswith("MultiTaskNet"):
            pred_times[name] = time_predict(
                lambda net=models[name]: net.forward_outputs(X), device, args.repeats)
    scores = models["MultiTaskNet"].score_tasks(X, np.column_stack(data[1:]))
    print(f"device={device} n={args.n} features={args.features} batch={args.batch_size} "
          f"epochs={args.epochs} threads={torch.get_num_threads()} best of {args.repeats}")
    print()
    print("| run | fit s | fit ratio | predict s | predict ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in runs:
        print(f"| {name} | {fit_times[name]:.3f} | "
              f"{fit_times[name] / fit_times['hand-written loop']:.2f}x | "
              f"{pred_times[name]:.4f} | "
              f"{pred_times[name] / pred_times['hand-written loop']:.2f}x |")
    print()
    print("MultiTaskNet training scores (sanity):",
          {k: round(v, 3) for k, v in scores.items()})


if __name__ == "__main__":
    main()
