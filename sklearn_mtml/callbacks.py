"""skorch callbacks of ``MultiTaskNet``."""

from __future__ import annotations

from typing import Any

from skorch.callbacks import PrintLog
from skorch.callbacks import ProgressBar as SkorchProgressBar

__all__ = ["PER_TASK_PREFIXES", "CompactPrintLog", "ProgressBar"]

#: History keys that exist once per task (``<prefix><task>``).
PER_TASK_PREFIXES = ("train_loss_", "valid_loss_", "valid_acc_", "valid_r2_", "weight_")


class CompactPrintLog(PrintLog):
    """skorch's ``PrintLog`` with one short line per epoch unless ``verbose >= 2``.

    With ``verbose=1`` the table shows the epoch, the training loss, the validation loss and
    score (when there is a validation split) and the duration; with ``verbose=2`` it also
    shows every task's losses, metrics and weights. Keys such as ``train_loss_best`` are
    dropped as in ``PrintLog``. Parameters are those of :class:`skorch.callbacks.PrintLog`.
    """

    per_task_ = True

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
