"""Learning-curve plots of a fitted :class:`~sklearn_mtml.MultiTaskNet` (matplotlib extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import require

__all__ = ["plot_history"]

_PANELS = ("loss", "weight", "metric")


def _pyplot():
    return require("matplotlib.pyplot", needed_by="plot_history", extra="plot")


def _column(history: Any, key: str) -> np.ndarray | None:
    """Values of ``key`` over epochs (NaN where an epoch lacks it); ``None`` if never set."""
    values = [row.get(key, np.nan) for row in history]
    if all(isinstance(v, float) and np.isnan(v) for v in values):
        return None
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None


def _task_names(net: Any, history: Any) -> list[str]:
    names = getattr(net, "task_names_", None)
    if names is not None:
        return list(names)
    keys = history[-1].keys() if len(history) else []
    return [k[len("train_loss_"):] for k in keys if k.startswith("train_loss_")
            and not k.endswith("_best")]


def plot_history(
    net: Any,
    keys: Sequence[str] = ("loss", "weight"),
    ax: Any = None,
    tasks: Sequence[str] | None = None,
) -> Any:
    """Plot per-task learning curves and task weights from a net's history.

    One panel per entry of ``keys``:

    * ``"loss"``: training loss of each task (``train_loss_<task>``, solid) and, when a
      validation split was used, its validation loss (``valid_loss_<task>``, dashed, same
      colour);
    * ``"weight"``: the task weights in force in each epoch (``weight_<task>``), which move
      under adaptive weightings (uncertainty, DWA, GradNorm, ...);
    * ``"metric"``: the validation metric of each task (``valid_<metric>_<task>``: accuracy
      or R²), when a validation split was used.

    Parameters
    ----------
    net : MultiTaskNet or skorch History
        A fitted network (its ``history`` and ``task_names_`` are used) or a history.
    keys : sequence of {"loss", "weight", "metric"}, default=("loss", "weight")
        Panels to draw, in order.
    ax : matplotlib Axes or sequence of Axes, optional
        Axes to draw on, one per panel; by default a new figure with one row of panels.
    tasks : sequence of str, optional
        Tasks to show (default: all).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the panels.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        For an unknown panel, a net without history, or a ``"metric"`` panel without a
        validation split.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet
    >>> X = np.random.RandomState(0).randn(40, 3)
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    >>> net = MultiTaskNet(tasks=["binary", "regression"], max_epochs=3).fit(X, Y)
    >>> fig = plot_history(net, keys=("loss", "weight"))
    >>> len(fig.axes)
    2
    """
    if isinstance(keys, str):
        keys = (keys,)
    keys = list(keys)
    unknown = [k for k in keys if k not in _PANELS]
    if unknown or not keys:
        raise ValueError(f"Unknown history panels {unknown or keys}; expected some of "
                         f"{list(_PANELS)}.")
    history = getattr(net, "history_", None) or getattr(net, "history", None)
    if history is None and isinstance(net, list):
        history = net
    if history is None or len(history) == 0:
        raise ValueError("The net has no training history: fit it first.")
    names = list(tasks) if tasks is not None else _task_names(net, history)
    if not names:
        raise ValueError("No per-task entries (train_loss_<task>) in the history.")
    plt = _pyplot()
    if ax is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        axes = list(np.asarray(axes, dtype=object).ravel())
        if len(axes) != len(keys):
            raise ValueError(f"ax holds {len(axes)} axes for {len(keys)} panels {keys}.")
        fig = axes[0].figure
    epochs = np.asarray([row.get("epoch", i + 1) for i, row in enumerate(history)])
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for panel, axis in zip(keys, axes):
        drawn = False
        for i, name in enumerate(names):
            color = colors[i % len(colors)]
            if panel == "loss":
                train = _column(history, f"train_loss_{name}")
                valid = _column(history, f"valid_loss_{name}")
                if train is not None:
                    axis.plot(epochs, train, color=color, label=f"{name} (train)")
                    drawn = True
                if valid is not None:
                    axis.plot(epochs, valid, color=color, linestyle="--",
                              label=f"{name} (valid)")
                    drawn = True
            elif panel == "weight":
                weight = _column(history, f"weight_{name}")
                if weight is not None:
                    axis.plot(epochs, weight, color=color, label=name)
                    drawn = True
            else:
                key = next((k for k in history[-1] if k.startswith("valid_")
                            and k.endswith(f"_{name}") and not k.startswith("valid_loss_")),
                           None)
                metric = None if key is None else _column(history, key)
                if metric is not None:
                    metric_name = key[len("valid_"):-len(name) - 1]
                    axis.plot(epochs, metric, color=color, label=f"{name} ({metric_name})")
                    drawn = True
        if not drawn:
            if panel == "metric":
                raise ValueError("No validation metric in the history: fit with a "
                                 "train_split (e.g. train_split=0.2) to record one.")
            raise ValueError(f"No {panel!r} entries for tasks {names} in the history.")
        axis.set_xlabel("epoch")
        axis.set_ylabel({"loss": "task loss", "weight": "task weight",
                         "metric": "validation metric"}[panel])
        axis.set_title({"loss": "Per-task loss", "weight": "Task weights",
                        "metric": "Validation metric"}[panel])
        axis.legend(fontsize="small")
        axis.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
