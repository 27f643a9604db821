"""The training budget of a fit, chosen from the data.

Batch size, epochs, learning-rate schedule, early stopping and CPU threads.

These are the rules behind ``MultiTaskNet``'s ``"auto"`` defaults, kept in one place so that
the docs, the estimator and the tests agree on them.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import torch

__all__ = [
    "TRAINING_STEPS",
    "auto_batch_size",
    "auto_max_epochs",
    "cosine_factor",
    "fit_threads",
    "torch_threads",
]

#: Optimizer steps that ``max_epochs="auto"`` plans for (before early stopping).
TRAINING_STEPS = 2000
#: Bounds of ``max_epochs="auto"``.
MIN_EPOCHS, MAX_EPOCHS = 10, 300
#: Bounds of ``batch_size="auto"``.
MIN_BATCH, MAX_BATCH = 16, 256
#: Floating-point operations per optimizer step below which one CPU thread is fastest.
SINGLE_THREAD_FLOPS = 2e8
#: Final learning rate of the cosine schedule, as a fraction of ``lr``.
COSINE_FLOOR = 0.05


def auto_batch_size(n_train: int) -> int:
    """Batch size for ``n_train`` training rows: ``n/32`` as a power of two, in [16, 256].

    Small data get small batches (enough optimizer steps per epoch), large data the
    throughput of larger ones.

    Parameters
    ----------
    n_train : int
        Number of training rows.

    Returns
    -------
    batch_size : int
    """
    target = max(n_train / 32.0, 1.0)
    size = 2 ** round(math.log2(target))
    return int(min(max(size, MIN_BATCH), MAX_BATCH))


def auto_max_epochs(batches_per_epoch: int, n_train: int | None = None,
                    early_stopping: bool = True) -> int:
    """Epochs for the step budget, within [10, 300].

    With early stopping the budget is :data:`TRAINING_STEPS` optimizer steps (the validation
    loss decides when to stop). Without it (data too small to hold rows out) nothing guards
    against overfitting, so the budget is ``2 · n_train`` steps, at most
    :data:`TRAINING_STEPS`: a tiny data set gets few passes.

    Parameters
    ----------
    batches_per_epoch : int
        Optimizer steps per epoch.
    n_train : int or None, default=None
        Training rows (needed without early stopping).
    early_stopping : bool, default=True
        Whether early stopping watches the fit.

    Returns
    -------
    max_epochs : int
    """
    steps = TRAINING_STEPS
    if not early_stopping and n_train is not None:
        steps = min(TRAINING_STEPS, 2 * int(n_train))
    epochs = math.ceil(steps / max(batches_per_epoch, 1))
    return int(min(max(epochs, MIN_EPOCHS), MAX_EPOCHS))


def cosine_factor(epoch: int, n_epochs: int) -> float:
    """Learning-rate factor of ``epoch`` (0-based) under cosine decay to :data:`COSINE_FLOOR`.

    Parameters
    ----------
    epoch : int
        Current epoch, from 0.
    n_epochs : int
        Planned number of epochs.

    Returns
    -------
    factor : float
        1 at the first epoch, :data:`COSINE_FLOOR` at the last.
    """
    if n_epochs <= 1:
        return 1.0
    progress = min(epoch / (n_epochs - 1), 1.0)
    return COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fit_threads(flops_per_step: float) -> int:
    """Intra-op threads for CPU training steps that cost ``flops_per_step``.

    Small steps run fastest, and reproducibly, on one thread: OpenMP's fork-join and spinning
    cost more than they save, many times more on a machine loaded by other jobs. Larger steps
    use torch's current thread count, capped by the cores this process may use.

    Parameters
    ----------
    flops_per_step : float
        Estimated floating-point operations of one training step (forward and backward).

    Returns
    -------
    n_threads : int
    """
    if flops_per_step < SINGLE_THREAD_FLOPS:
        return 1
    return max(1, min(torch.get_num_threads(), _cpu_count()))


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op threads (``None``: unchanged)."""
    previous = torch.get_num_threads()
    if n_threads is None or n_threads == previous:
        yield
        return
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
