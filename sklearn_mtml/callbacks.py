"""skorch callbacks of ``MultiTaskNet``."""

from __future__ import annotations

import builtins
import numbers
from typing import Any

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog
from skorch.callbacks import EarlyStopping as SkorchEarlyStopping
from skorch.callbacks import ProgressBar as SkorchProgressBar

from ._task_epochs import TaskEpochs, row_losses

__all__ = ["PER_TASK_PREFIXES", "CompactPrintLog", "EarlyStopping", "ProgressBar",
           "TaskScores", "TaskWeights", "print_sink"]

#: History keys that exist once per task (``<prefix><task>``).
PER_TASK_PREFIXES = ("train_loss_", "valid_loss_", "valid_acc_", "valid_r2_", "weight_")


def print_sink(*args: Any, **kwargs: Any) -> None:
    """Print as :func:`print` does: the default ``sink`` of this module's callbacks.

    skorch's callbacks default to the built-in ``print`` itself, which a fitted net then
    pickles by reference; a library that replaces ``builtins.print`` in the process (Ray
    does, on ``ray.init()``) makes that reference unpicklable ("it's not the same object as
    builtins.print"). This function pickles by its own name and looks ``print`` up when
    called.
    """
    builtins.print(*args, **kwargs)


def _emit(sink: Any, text: str, verbose: Any) -> None:
    """Apply skorch's rule: a printing sink obeys ``verbose``, any other sink gets every line."""
    if verbose or (sink is not print and sink is not print_sink):
        sink(text)


class CompactPrintLog(PrintLog):
    """skorch's ``PrintLog`` with one short line per epoch unless ``verbose >= 2``.

    With ``verbose=1`` the table shows the epoch, the training loss, the validation loss and
    score (when there is a validation split) and the duration; with ``verbose=2`` it also
    shows every task's losses, metrics and weights. Keys such as ``train_loss_best`` are
    dropped as in ``PrintLog``. Parameters are those of :class:`skorch.callbacks.PrintLog`,
    except that ``sink`` defaults to :func:`print_sink`.
    """

    per_task_ = True

    def __init__(self, keys_ignored: Any = None, sink: Any = print_sink,
                 tablefmt: str = "simple", floatfmt: str = ".4f", stralign: str = "right"):
        super().__init__(keys_ignored=keys_ignored, sink=sink, tablefmt=tablefmt,
                         floatfmt=floatfmt, stralign=stralign)

    def _sink(self, text: str, verbose: Any) -> None:
        _emit(self.sink, text, verbose)

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        self.per_task_ = getattr(net, "verbose", 0) >= 2
        super().on_train_begin(net, **kwargs)

    def _sorted_keys(self, keys: Any) -> list[str]:
        keys = super()._sorted_keys(keys)
        if self.per_task_:
            return keys
        return [k for k in keys if not k.startswith(PER_TASK_PREFIXES)]


class ProgressBar(SkorchProgressBar):
    """skorch's ``ProgressBar`` (tqdm) for ``MultiTaskNet``: it knows the resolved batch sizes.

    skorch's own bar computes the batches of an epoch from ``net.batch_size``, which is
    ``"auto"`` by default here; this one reads the size the fit chose (``batch_size_``) and
    the validation batch size. Parameters are those of :class:`skorch.callbacks.ProgressBar`.

    Examples
    --------
    >>> from sklearn_mtml import MultiTaskNet
    >>> from sklearn_mtml.callbacks import ProgressBar
    >>> net = MultiTaskNet(callbacks=[ProgressBar()])
    """

    def _get_batch_size(self, net: Any, training: bool) -> int:
        if not training and hasattr(net, "_predict_batch_size"):
            return int(net._predict_batch_size())
        size = super()._get_batch_size(net, training)
        if isinstance(size, str):  # "auto": what the running fit resolved
            size = getattr(net, "batch_size_", 1)
        return int(size)


class TaskScores(Callback):
    """Record each task's validation metric and their mean, once per epoch.

    A default callback of ``MultiTaskNet`` (named ``valid_scores``). On validation batches
    it sums each task's metric statistics on the device (:meth:`Task.metric_sums
    <sklearn_mtml.tasks.Task.metric_sums>`); at the end of the epoch it reads them once and
    records ``valid_<metric>_<task>`` (``acc`` or ``r2``) and ``valid_score``, their mean
    (NaN-skipping), the same quantity :meth:`MultiTaskNet.score
    <sklearn_mtml.MultiTaskNet.score>` returns. Remove it with
    ``callbacks__valid_scores=None`` to skip that work.
    """

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        self.sums_: torch.Tensor | None = None

    def on_batch_end(self, net: Any, batch: Any = None,  # noqa: D102
                     training: bool | None = None, y_pred: Any = None, **kwargs: Any) -> None:
        if training or y_pred is None:
            return
        targets, label_mask = batch[1]
        sums = torch.stack([task.metric_sums(out, targets[:, t], label_mask[:, t])
                            for t, (task, out) in enumerate(zip(net.tasks_.values(), y_pred))])
        self.sums_ = sums if self.sums_ is None else self.sums_ + sums

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        sums_t = getattr(self, "sums_", None)
        if sums_t is None:
            return
        if hasattr(net, "_sum_across_processes"):  # data-parallel fits: every process's rows
            sums_t = net._sum_across_processes(sums_t)
        sums = sums_t.cpu().numpy()
        scores = []
        for (name, task), s in zip(net.tasks_.items(), sums):
            score = task.metric_from_sums(s)
            scores.append(score)
            net.history.record(f"valid_{task.metric_name}_{name}", score)
        net.history.record("valid_score", float("nan") if np.all(np.isnan(scores))
                           else float(np.nanmean(scores)))
        self.sums_ = None


class TaskWeights(Callback):
    """Record each task's loss weight (``weight_<task>``) once per epoch.

    A default callback of ``MultiTaskNet`` (named ``task_weights``). The weights recorded are
    those in force at the epoch's last training step (adaptive weightings — uncertainty,
    DWA, GradNorm — change them during training), kept on the device until the epoch ends.
    """

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        self.last_: torch.Tensor | None = None

    def on_batch_end(self, net: Any, training: bool | None = None,  # noqa: D102
                     **kwargs: Any) -> None:
        if training:
            self.last_ = net.weighting_.task_weights().detach()

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        last = getattr(self, "last_", None)
        if last is None:
            return
        for name, w in zip(net.task_names_, last.float().cpu().numpy().reshape(-1)):
            net.history.record(f"weight_{name}", float(w))


class EarlyStopping(SkorchEarlyStopping):
    """skorch's ``EarlyStopping`` with ``MultiTaskNet``'s automatic settings.

    The default callback ``early_stopping`` of ``MultiTaskNet``: it is active when the net's
    ``early_stopping`` parameter holds out validation rows (``stops_early_``), stops when
    ``valid_loss`` has not improved by ``threshold`` for ``patience`` epochs, and restores
    the best epoch's state of the network **and** of the loss weighting (skorch's restores
    the module only), recording that epoch in ``net.best_epoch_``. Replace it (e.g.
    ``callbacks__early_stopping__patience=20``) or remove it
    (``callbacks__early_stopping=None``) like any default callback.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        History key to monitor.
    patience : int or "auto", default="auto"
        Epochs without improvement before stopping; ``"auto"``: the net's
        ``n_iter_no_change``.
    threshold : float, default=1e-4
        Smallest improvement that counts.
    threshold_mode : {"rel", "abs"}, default="rel"
        Whether ``threshold`` is relative to the best score or absolute.
    lower_is_better : bool, default=True
        Whether a lower monitored value is better.
    sink : callable, default=print_sink
        Where the stopping message goes when the net is verbose.
    load_best : bool, default=True
        Restore the best epoch's weights at the end of training.
    task_epochs : bool, default=True
        Let a task predict with the weights of its own best epoch (lowest
        ``valid_loss_<task>``) instead of the shared one, when a paired test on its
        validation rows says so (``task_epochs_z``, ``task_epochs_min_rows``). It guards a
        weak task against the epochs that the other tasks need and in which it only fits
        noise, and lets a task that still learns after the shared best go on. It needs
        ``load_best``, the ``valid_loss`` monitor and at least two tasks. While training it
        keeps at most one copy of the network's weights per task; the fitted net keeps one
        per epoch that tasks kept (``net.task_states_``), and each such epoch adds a forward
        pass at prediction. ``net.task_epochs_`` gives the epochs kept.
    task_epochs_z : float, default=1.5
        The evidence a task's own epoch needs: its mean per-row validation loss reduction
        over the shared epoch's, divided by the standard error of that mean, must exceed
        this.
    task_epochs_min_rows : int, default=100
        The labelled validation rows a task needs for that test. On fewer, a task's best
        epoch is mostly chance (the own epoch is the minimum over epochs of the same rows)
        and the shared epoch is kept.
    """

    def __init__(self, monitor: str = "valid_loss", patience: int | str = "auto",
                 threshold: float = 1e-4, threshold_mode: str = "rel",
                 lower_is_better: bool = True, sink: Any = print_sink, load_best: bool = True,
                 task_epochs: bool = True, task_epochs_z: float = 1.5,
                 task_epochs_min_rows: int = 100):
        super().__init__(monitor=monitor, patience=patience, threshold=threshold,
                         threshold_mode=threshold_mode, lower_is_better=lower_is_better,
                         sink=sink, load_best=load_best)
        self.task_epochs = task_epochs
        self.task_epochs_z = task_epochs_z
        self.task_epochs_min_rows = task_epochs_min_rows

    def _sink(self, text: str, verbose: Any) -> None:
        _emit(self.sink, text, verbose)

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        super().on_train_begin(net, **kwargs)
        patience = net.n_iter_no_change if self.patience == "auto" else self.patience
        if not isinstance(patience, numbers.Integral) or isinstance(patience, bool) \
                or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive integer or 'auto', "
                             f"got {self.patience!r}.")
        self.patience_ = int(patience)
        self.active_ = bool(getattr(net, "stops_early_", True))
        self.first_epoch_ = len(net.history)
        self.best_states_: dict[str, dict[str, torch.Tensor]] | None = None
        self.tracker_ = self._task_tracker(net) if self.active_ else None

    def _task_tracker(self, net: Any) -> TaskEpochs | None:
        """A tracker of each task's best epoch for this fit (``None``: not asked or n/a)."""
        if not self.task_epochs:
            return None
        z = self.task_epochs_z
        if not isinstance(z, numbers.Real) or isinstance(z, bool) or not z >= 0:
            raise ValueError(f"EarlyStopping: task_epochs_z must be a non-negative number, "
                             f"got {z!r}.")
        rows = self.task_epochs_min_rows
        if not isinstance(rows, numbers.Integral) or isinstance(rows, bool) or rows < 2:
            raise ValueError(f"EarlyStopping: task_epochs_min_rows must be an integer of at "
                             f"least 2, got {rows!r}.")
        if (not self.load_best or self.monitor != "valid_loss" or not self.lower_is_better
                or len(getattr(net, "task_names_", ())) < 2):
            return None
        return TaskEpochs(net.task_names_, self.threshold, self.threshold_mode, float(z),
                          int(rows))

    def on_batch_end(self, net: Any, batch: Any = None,  # noqa: D102
                     training: bool | None = None, y_pred: Any = None, **kwargs: Any) -> None:
        tracker = getattr(self, "tracker_", None)
        if training or tracker is None or y_pred is None:
            return
        targets, label_mask = batch[1]
        outputs = y_pred[0] if isinstance(y_pred, tuple) else y_pred
        tracker.add_batch(row_losses(list(net.tasks_.values()), outputs, targets), label_mask)

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        if not self.active_:
            return
        score = net.history[-1, self.monitor]
        improved = self._is_score_improved(score)
        if improved:
            self.misses_ = 0
            self.dynamic_threshold_ = self._calc_new_threshold(score)
            self.best_epoch_ = net.history[-1, "epoch"]
            if self.load_best:
                self.best_states_ = {
                    name: {k: v.detach().clone() for k, v in m.state_dict().items()}
                    for name, m in net._trained_modules().items()}
        else:
            self.misses_ += 1
        if self.tracker_ is not None:
            def snapshot() -> dict[str, torch.Tensor]:
                if improved and self.best_states_ is not None:
                    return self.best_states_["module_"]
                return {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

            self.tracker_.end_epoch(
                net.history[-1, "epoch"],
                [net.history[-1, f"valid_loss_{t}"] for t in net.task_names_],
                improved, snapshot)
        if self.misses_ >= self.patience_:
            self._sink(f"Stopping since {self.monitor} has not improved in the last "
                       f"{self.patience_} epochs.", verbose=net.verbose)
            raise KeyboardInterrupt

    def on_train_end(self, net: Any, **kwargs: Any) -> None:  # noqa: D102
        if not self.active_ or not self.best_epoch_:
            return
        net.best_epoch_ = self.best_epoch_ - self.first_epoch_
        if self.best_states_ is not None and self.best_epoch_ != net.history[-1, "epoch"]:
            for name, module in net._trained_modules().items():
                module.load_state_dict(self.best_states_[name])
        tracker, self.tracker_ = self.tracker_, None
        if tracker is None:
            return
        sums = tracker.paired_sums()
        if hasattr(net, "_sum_across_processes"):  # data-parallel: every process's rows
            sums = net._sum_across_processes(sums.to(net.device_)).cpu()
        chosen = tracker.decide(sums)
        net._set_task_epochs({name: (epoch - self.first_epoch_, state)
                             for name, (epoch, _, state) in chosen.items()})
        for name, (epoch, z, _) in chosen.items():
            self._sink(f"Task {name!r} keeps its own best epoch {epoch - self.first_epoch_} "
                       f"(valid_loss_{name} {tracker.best_loss[net.task_names_.index(name)]:.4g}"
                       f"; paired z={z:.1f} over the shared epoch {net.best_epoch_}).",
                       verbose=net.verbose)

    def __getstate__(self) -> dict:  # noqa: D105
        state = super().__getstate__()
        state["best_states_"] = None  # the weights are in the net already
        state["tracker_"] = None
        return state
