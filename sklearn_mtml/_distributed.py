"""Data-parallel training across processes (``torch.distributed``), as ``MultiTaskNet`` uses it.

Every process calls ``fit`` on the same data; the fit shards the training rows across the
processes of the default process group (``torchrun`` starts them and sets the environment),
wraps the network in :class:`~torch.nn.parallel.DistributedDataParallel`, and sums the
per-epoch statistics across processes, so every process records the same history and makes
the same early-stopping decisions.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import distributed as dist

__all__ = ["all_reduce_sum", "average_gradients", "broadcast_seed", "process_group"]


def process_group(requested: bool | str) -> tuple[int, int]:
    """``(rank, world_size)`` of the data-parallel group a fit uses (``(0, 1)``: none).

    Parameters
    ----------
    requested : bool or "auto"
        The estimator's ``distributed`` parameter: ``"auto"`` uses the default process group
        when one with more than one process is initialised, ``True`` requires it, ``False``
        ignores it.
    """
    active = dist.is_available() and dist.is_initialized()
    if requested is True and not active:
        raise RuntimeError(
            "distributed=True needs torch.distributed's default process group: start the "
            "processes with torchrun and call torch.distributed.init_process_group() first "
            "(see docs/scaling.md)."
        )
    if requested is False or not active:
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def all_reduce_sum(tensor: torch.Tensor, world: int) -> torch.Tensor:
    """Sum ``tensor`` across the processes (in place; a no-op for one process)."""
    if world > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def average_gradients(params: Iterable[torch.nn.Parameter], world: int) -> None:
    """Average the gradients of parameters that ``DistributedDataParallel`` does not own."""
    if world <= 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world


def broadcast_seed(seed: int | None, world: int) -> int | None:
    """Rank 0's seed on every process (a fresh one when ``seed`` is None).

    So that all processes draw the same validation split and the same shuffling order.
    """
    if world <= 1:
        return seed
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
    box = [seed]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])
