"""Each task's own best epoch, kept only where the validation rows show it is better.

A multi-task network stops early on the summed validation loss and restores the weights of
one epoch for every task. A weak, noisy task (a target the inputs barely predict) can be best
several epochs before the others: from then on the shared layers serve the other tasks and
its head fits noise (negative transfer, seen on the clothing reviews' feedback count in
``benchmarks/bench_quality.py``). :class:`TaskEpochs` follows each task's validation loss,
keeps the network's weights at each task's best epoch and, at the end of training, lets a
task predict with its own epoch's weights when a paired test on the validation rows says the
gain over the shared epoch is beyond noise. With a few dozen validation rows the best epoch
of one task is mostly chance, and the test keeps the shared epoch there.

Used by :class:`sklearn_mtml.callbacks.EarlyStopping` and by the stacked search of
:class:`sklearn_mtml.model_selection.LossWeightSearchCV`, which must give the same fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

State = dict[str, torch.Tensor]


def row_losses(tasks: Sequence[Any], outputs: Sequence[torch.Tensor], targets: torch.Tensor
               ) -> torch.Tensor:
    """Per-row loss of every task, ``(n, T)`` (unmasked: unlabelled rows hold any value)."""
    return torch.stack([task.loss(out, targets[:, t]).float().reshape(-1)
                        for t, (task, out) in enumerate(zip(tasks, outputs))], 1)


class TaskEpochs:
    """Track each task's best validation epoch and decide which tasks keep theirs.

    Parameters
    ----------
    task_names : sequence of str
        The tasks, in output order.
    threshold, threshold_mode :
        What counts as an improvement of a task's validation loss, as in early stopping.
    min_z : float
        The paired ``z`` statistic (mean per-row loss reduction over its standard error,
        on the task's labelled validation rows) a task's own epoch needs over the shared one.
    min_rows : int
        The labelled validation rows (effective number, with sample weights) a task needs
        for the test: on fewer, the normal approximation of a heavy-tailed per-row loss is
        unreliable and a task's best epoch is mostly chance.
    """

    def __init__(self, task_names: Sequence[str], threshold: float, threshold_mode: str,
                 min_z: float, min_rows: int = 100):
        self.task_names = list(task_names)
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.min_z = min_z
        self.min_rows = min_rows
        self.best_loss = [math.inf] * len(self.task_names)
        self.best_epoch: list[int | None] = [None] * len(self.task_names)
        self.shared_epoch: int | None = None
        self.rows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.states: dict[int, State] = {}
        self._parts: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add_batch(self, losses: torch.Tensor, weights: torch.Tensor) -> None:
        """Record a validation batch's per-row losses ``(n, T)`` and label weights ``(n, T)``."""
        self._parts.append((losses.detach().float(), weights.detach().float()))

    def _improved(self, t: int, loss: float) -> bool:
        best = self.best_loss[t]
        if not math.isfinite(loss):
            return False
        if not math.isfinite(best):
            return True
        change = self.threshold * abs(best) if self.threshold_mode == "rel" else self.threshold
        return loss < best - change

    def end_epoch(self, epoch: int, task_losses: Sequence[float], shared_best: bool,
                  snapshot: Callable[[], State]) -> None:
        """Close a validation pass: update the tasks' best epochs and keep what they need.

        ``shared_best`` says whether this epoch is the shared (early-stopping) best so far;
        ``snapshot`` returns a copy of the network's weights, called once at most.
        """
        parts, self._parts = self._parts, []
        if not parts:
            return
        improved = [t for t, loss in enumerate(task_losses) if self._improved(t, float(loss))]
        for t in improved:
            self.best_loss[t] = float(task_losses[t])
            self.best_epoch[t] = epoch
        if shared_best:
            self.shared_epoch = epoch
        if improved or shared_best:
            self.rows[epoch] = (torch.cat([p[0] for p in parts]),
                                torch.cat([p[1] for p in parts]))
        if improved:
            self.states[epoch] = snapshot()
        wanted = {e for e in self.best_epoch if e is not None}
        self.states = {e: s for e, s in self.states.items() if e in wanted}
        wanted.add(self.shared_epoch if self.shared_epoch is not None else -1)
        self.rows = {e: r for e, r in self.rows.items() if e in wanted}

    def paired_sums(self) -> torch.Tensor:
        """Per task, ``[Σw·d, Σw·d², Σw, Σw²]`` of ``d`` = shared − own per-row loss.

        Zero for a task whose best epoch is the shared one (or without the rows). These are
        sums, so data-parallel processes add theirs before :meth:`decide`.
        """
        T = len(self.task_names)
        out = torch.zeros(T, 4, dtype=torch.float64)
        shared = self.rows.get(self.shared_epoch) if self.shared_epoch is not None else None
        if shared is None:
            return out
        for t, epoch in enumerate(self.best_epoch):
            if epoch is None or epoch == self.shared_epoch or epoch not in self.rows:
                continue
            own_losses, w = self.rows[epoch]
            d = (shared[0][:, t] - own_losses[:, t]).double()
            wt = w[:, t].double()
            keep = wt > 0
            d, wt = d[keep], wt[keep]
            out[t] = torch.stack([(wt * d).sum(), (wt * d * d).sum(), wt.sum(),
                                  (wt * wt).sum()]).cpu()
        return out

    def decide(self, sums: torch.Tensor) -> dict[str, tuple[int, float, State]]:
        """The tasks that keep their own epoch: ``{name: (epoch, z, weights)}``.

        ``sums`` are :meth:`paired_sums` (added across processes). A task keeps its own
        epoch when ``z = mean(d) / se(d) > min_z``, ``se`` from the weighted variance of the
        per-row differences and the effective number of rows ``(Σw)² / Σw²``, which must be
        at least ``min_rows``.
        """
        chosen: dict[str, tuple[int, float, State]] = {}
        for t, name in enumerate(self.task_names):
            swd, swd2, sw, sw2 = (float(v) for v in sums[t])
            epoch = self.best_epoch[t]
            if sw <= 0 or sw2 <= 0 or epoch is None or epoch not in self.states:
                continue
            mean = swd / sw
            var = max(swd2 / sw - mean * mean, 0.0)
            n_eff = sw * sw / sw2
            if n_eff < max(self.min_rows, 2):
                continue
            se = math.sqrt(var / n_eff)
            z = math.inf if se == 0 and mean > 0 else (mean / se if se > 0 else 0.0)
            if z > self.min_z:
                chosen[name] = (epoch, z, self.states[epoch])
        return chosen
