"""Plots of a fitted :class:`~sklearn_mtml.MultiTaskNet` (needs the matplotlib extra).

* :func:`plot_history`: per-task learning curves, task weights and validation metrics;
* :func:`plot_modality_weights`: how much each input block (modality) counted for each row;
* :func:`plot_task_attention`: which modality, feature group or expert each task relies on;
* :func:`plot_confusion_matrices`: one confusion matrix per classification task.

Every function returns the matplotlib :class:`~matplotlib.figure.Figure` it drew on. The ones
that read a network also accept a :class:`~sklearn.pipeline.Pipeline` whose last step is a
``MultiTaskNet``: ``X`` then goes through the steps before it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._optional import require

__all__ = [
    "plot_confusion_matrices",
    "plot_history",
    "plot_modality_weights",
    "plot_task_attention",
]

_PANELS = ("loss", "weight", "metric")
_METRIC_LABELS = {"acc": "accuracy", "r2": "R²"}


def _pyplot(needed_by: str = "plot_history"):
    return require("matplotlib.pyplot", needed_by=needed_by, extra="plot")


def _new_figure(plt: Any, n_rows: int, n_cols: int, panel_size: tuple[float, float]):
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows))
    return fig, list(axes.ravel())


def _given_axes(ax: Any, n: int, what: str) -> list:
    axes = list(np.asarray(ax, dtype=object).ravel()) if isinstance(
        ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) != n:
        raise ValueError(f"ax holds {len(axes)} axes for {n} {what}.")
    return axes


def _legend_below(axis: Any, handles: list | None = None, labels: list | None = None,
                  ncol: int | None = None, tick_lines: int = 1) -> Any:
    """A legend centred under the axes, below the tick labels and the x label.

    It is placed ``tick_lines`` lines of tick labels plus the x label below the axes (an
    offset in points, so it holds for any figure size), where it can never hide a curve;
    constrained layout makes room for it.
    """
    from matplotlib.transforms import offset_copy

    if handles is None:
        handles, labels = axis.get_legend_handles_labels()
    if not handles:
        return None
    ncol = ncol or min(len(handles), 3)
    size = axis.xaxis.label.get_fontsize()
    drop = 1.3 * size * (tick_lines + (1 if axis.get_xlabel() else 0)) + 10
    anchor = offset_copy(axis.transAxes, fig=axis.figure, y=-drop, units="points")
    return axis.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                       bbox_transform=anchor, ncol=ncol, fontsize="small", frameon=False,
                       borderaxespad=0.0, handlelength=1.6, columnspacing=1.2)


def _legend_rows(axis: Any, groups: list[tuple[list, list]], max_cols: int = 4
                 ) -> tuple[list, list, int]:
    """Lay legend entries out in rows: each group starts a new row (tasks, then line styles).

    As many columns as fit in the width of the axes (estimated from the longest label), at
    most ``max_cols``. Matplotlib fills a legend column by column, so the entries are
    reordered column-major and short rows are padded with invisible entries.
    """
    from matplotlib.lines import Line2D

    groups = [(list(h), list(lab)) for h, lab in groups if h]
    longest = max(len(lab) for _, labels in groups for lab in labels)
    entry_pts = 30 + 0.5 * 8.3 * longest  # handle, spacing and a "small" label
    spec = axis.get_subplotspec() if hasattr(axis, "get_subplotspec") else None
    if spec is not None:  # the axes' share of the figure width, less its y tick labels
        columns = spec.colspan.stop - spec.colspan.start
        share = columns / spec.get_gridspec().ncols
        width_pts = share * axis.figure.get_figwidth() * 72 - 50
    else:
        width_pts = axis.get_position().width * axis.figure.get_figwidth() * 72
    fit = max(1, int(width_pts // entry_pts))
    ncol = max(1, min(max_cols, fit, max(len(h) for h, _ in groups)))
    rows = []
    for handles, labels in groups:
        for start in range(0, len(handles), ncol):
            row = list(zip(handles[start:start + ncol], labels[start:start + ncol]))
            row += [(Line2D([], [], alpha=0.0), "")] * (ncol - len(row))
            rows.append(row)
    ordered = [rows[r][c] for c in range(ncol) for r in range(len(rows))]
    return [h for h, _ in ordered], [lab for _, lab in ordered], ncol


# ----------------------------------------------------------------------------------------
# plot_history
# ----------------------------------------------------------------------------------------
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


def _metric_key(net: Any, history: Any, name: str) -> str | None:
    """History key of a task's validation metric (``valid_acc_<task>``, ``valid_r2_<task>``)."""
    task = getattr(net, "tasks_", {}).get(name) if hasattr(net, "tasks_") else None
    candidates = [f"valid_{task.metric_name}_{name}"] if task is not None else [
        f"valid_{m}_{name}" for m in _METRIC_LABELS]
    return next((k for k in candidates if any(k in row for row in history)), None)


def _default_panels(net: Any, history: Any, names: list[str]) -> list[str]:
    panels = ["loss"]
    weights = [w for w in (_column(history, f"weight_{n}") for n in names) if w is not None]
    if weights:
        values = np.concatenate(weights)
        values = values[np.isfinite(values)]
        if values.size and np.ptp(values) > 1e-9:  # adaptive or unequal weights
            panels.append("weight")
    if any(_metric_key(net, history, n) is not None for n in names):
        panels.append("metric")
    return panels


def plot_history(
    net: Any,
    keys: Sequence[str] | str | None = None,
    ax: Any = None,
    tasks: Sequence[str] | None = None,
) -> Any:
    """Plot per-task learning curves, task weights and validation metrics from a history.

    One panel per entry of ``keys``, each with its own legend under the axes (so that no
    curve is hidden); a task keeps one colour in every panel:

    * ``"loss"``: training loss of each task (``train_loss_<task>``, solid) and, when a
      validation split was used, its validation loss (``valid_loss_<task>``, dashed);
    * ``"weight"``: the task weights in force in each epoch (``weight_<task>``), which move
      under adaptive weightings (uncertainty, DWA, GradNorm, ...);
    * ``"metric"``: the validation metric of each task (``valid_acc_<task>`` or
      ``valid_r2_<task>``) and, with several tasks, their mean ``valid_score`` (black,
      dotted) — the score ``GridSearchCV`` maximises. R² below -1 (early epochs) is cut off.

    With early stopping, a grey vertical line marks the epoch whose weights were restored
    (``best_epoch_``).

    Parameters
    ----------
    net : MultiTaskNet or skorch History
        A fitted network (its ``history``, ``task_names_`` and ``best_epoch_`` are used) or
        a history.
    keys : {"loss", "weight", "metric"} or sequence of them, default=None
        Panels to draw, in order. ``None``: ``"loss"``, then ``"weight"`` when the weights
        are not all equal and constant (an adaptive weighting, or unequal ``loss_weights``),
        then ``"metric"`` when a validation split recorded one.
    ax : matplotlib Axes or sequence of Axes, optional
        Axes to draw on, one per panel; by default a new figure with one row of panels.
        The legends sit under the axes: give your figure ``layout="constrained"`` so that
        it makes room for them.
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

    See Also
    --------
    sklearn_mtml.MultiTaskNet : the ``history_`` keys are listed in its docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet, plot_history
    >>> X = np.random.RandomState(0).randn(100, 3)
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    >>> net = MultiTaskNet(tasks=["binary", "regression"], max_epochs=3, train_split=0.2,
    ...                    random_state=0).fit(X, Y)
    >>> fig = plot_history(net)
    >>> [axis.get_title() for axis in fig.axes]
    ['Per-task loss', 'Validation metric']
    """
    history = getattr(net, "history_", None) or getattr(net, "history", None)
    if history is None and isinstance(net, list):
        history = net
    if history is None or len(history) == 0:
        raise ValueError("The net has no training history: fit it first.")
    names = list(tasks) if tasks is not None else _task_names(net, history)
    if not names:
        raise ValueError("No per-task entries (train_loss_<task>) in the history.")
    if keys is None:
        keys = _default_panels(net, history, names)
    elif isinstance(keys, str):
        keys = (keys,)
    keys = list(keys)
    unknown = [k for k in keys if k not in _PANELS]
    if unknown or not keys:
        raise ValueError(f"Unknown history panels {unknown or keys}; expected some of "
                         f"{list(_PANELS)}.")
    plt = _pyplot()
    if ax is None:
        fig, axes = _new_figure(plt, 1, len(keys), (4.6, 4.0))
    else:
        axes = _given_axes(ax, len(keys), f"panels {keys}")
        fig = axes[0].figure
    epochs = np.asarray([row.get("epoch", i + 1) for i, row in enumerate(history)])
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    best = getattr(net, "best_epoch_", None)
    for panel, axis in zip(keys, axes):
        handles, labels = [], []
        has_valid = False
        low = np.inf
        for i, name in enumerate(names):
            color = colors[i % len(colors)]
            if panel == "loss":
                train = _column(history, f"train_loss_{name}")
                valid = _column(history, f"valid_loss_{name}")
                if train is not None:
                    line, = axis.plot(epochs, train, color=color, label=f"{name} (train)")
                    handles.append(line)
                    labels.append(name)
                if valid is not None:
                    line, = axis.plot(epochs, valid, color=color, linestyle="--",
                                      label=f"{name} (valid)")
                    has_valid = True
                    if train is None:
                        handles.append(line)
                        labels.append(name)
            elif panel == "weight":
                weight = _column(history, f"weight_{name}")
                if weight is not None:
                    line, = axis.plot(epochs, weight, color=color, label=name)
                    handles.append(line)
                    labels.append(name)
            else:
                key = _metric_key(net, history, name)
                metric = None if key is None else _column(history, key)
                if key is not None and metric is not None:
                    metric_name = key[len("valid_"):-len(name) - 1]
                    line, = axis.plot(epochs, metric, color=color,
                                      label=f"{name} ({metric_name})")
                    handles.append(line)
                    labels.append(f"{name} ({_METRIC_LABELS.get(metric_name, metric_name)})")
                    low = min(low, float(np.nanmin(metric)))
        if not handles:
            if panel == "metric":
                raise ValueError("No validation metric in the history: fit with a "
                                 "train_split (e.g. train_split=0.2) to record one.")
            raise ValueError(f"No {panel!r} entries for tasks {names} in the history.")
        task_labels = list(labels)
        metric_names = list(dict.fromkeys(
            lab.rsplit("(", 1)[-1].rstrip(")") for lab in task_labels
            if panel == "metric" and lab.endswith(("(accuracy)", "(R²)"))))
        if len(metric_names) == 1:  # one metric: the y label names it, the legend the tasks
            task_labels = [lab.rsplit(" (", 1)[0] for lab in task_labels]
        extra_handles, extra_labels = [], []
        if panel == "metric" and len(handles) > 1 and tasks is None:
            score = _column(history, "valid_score")
            if score is not None:
                line, = axis.plot(epochs, score, color="black", linestyle=":", linewidth=2,
                                  label="mean (valid_score)")
                extra_handles.append(line)
                extra_labels.append("mean of the tasks")
        if panel == "loss" and has_valid:
            from matplotlib.lines import Line2D

            extra_handles += [Line2D([], [], color="grey"),
                              Line2D([], [], color="grey", linestyle="--")]
            extra_labels += ["train", "validation"]
        if best is not None and panel != "weight":
            extra_handles.append(axis.axvline(best, color="grey", linewidth=1, alpha=0.6,
                                              label="best epoch"))
            extra_labels.append(f"best epoch ({best})")
        if panel == "metric" and low < -1:
            top = axis.get_ylim()[1]
            axis.set_ylim(-1.05, max(top, 0.0))
        if panel == "weight" and len(handles) > 1 and all(
                np.array_equal(h.get_ydata(), handles[0].get_ydata()) for h in handles):
            axis.text(0.5, 0.55, "all tasks weigh the same\n(curves on top of each other)",
                      transform=axis.transAxes, ha="center", va="bottom", fontsize="small",
                      color="dimgrey")
        axis.set_xlabel("epoch")
        axis.set_ylabel({"loss": "task loss", "weight": "task weight",
                         "metric": "validation " + " / ".join(metric_names)}[panel])
        axis.set_title({"loss": "Per-task loss", "weight": "Task weights",
                        "metric": "Validation metric"}[panel])
        _legend_below(axis, *_legend_rows(axis, [(handles, task_labels),
                                                 (extra_handles, extra_labels)]))
        axis.grid(True, alpha=0.3)
    return fig


# ----------------------------------------------------------------------------------------
# helpers for the plots that read a fitted network
# ----------------------------------------------------------------------------------------
def _fitted_net(net: Any, X: Any, needed_by: str) -> tuple[Any, Any]:
    """Return ``(MultiTaskNet, X)``; a Pipeline's earlier steps transform ``X``."""
    from sklearn.exceptions import NotFittedError

    from .estimators import MultiTaskNet

    if hasattr(net, "steps") and hasattr(net, "__getitem__") and len(net.steps):
        last = net.steps[-1][1]
        if isinstance(last, MultiTaskNet):
            if not last.__sklearn_is_fitted__():
                raise NotFittedError(f"{needed_by} needs a fitted MultiTaskNet; the "
                                     "pipeline's MultiTaskNet is not fitted: call fit first.")
            if len(net.steps) > 1 and X is not None:
                X = net[:-1].transform(X)
            return last, X
    if not isinstance(net, MultiTaskNet):
        raise TypeError(f"{needed_by} expects a fitted MultiTaskNet (or a Pipeline ending in "
                        f"one), got {type(net).__name__}.")
    if not net.__sklearn_is_fitted__():
        raise NotFittedError(f"{needed_by} needs a fitted MultiTaskNet: call "
                             "net.fit(X, Y) first.")
    return net, X


def _presence(net: Any, X: Any) -> np.ndarray:
    """Boolean ``(n, n_blocks)`` presence of each block in ``X`` (as the net reads it)."""
    return np.asarray(net._validate_X(X, reset=False)[1], dtype=bool)


def _missing(names: list[str], present: np.ndarray) -> str:
    """``"no audio"``, ``"no audio, image"`` or ``""`` for a row's presence."""
    missing = [n for n, p in zip(names, present) if not p]
    return f"no {', '.join(missing)}" if missing else ""


def _select_rows(rows: Any, n: int, n_rows: int, incomplete: np.ndarray | None = None
                 ) -> np.ndarray:
    if rows is None:
        if incomplete is not None and incomplete.any() and (~incomplete).any():
            half = n_rows // 2
            picked = np.concatenate([np.flatnonzero(~incomplete)[:n_rows - half],
                                     np.flatnonzero(incomplete)[:half]])
            return np.sort(picked)
        return np.arange(min(n, n_rows))
    idx = np.arange(n)[rows] if isinstance(rows, slice) else np.asarray(rows)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"A boolean rows mask must have shape ({n},), got {idx.shape}.")
        idx = np.flatnonzero(idx)
    idx = np.atleast_1d(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"rows must be integer positions, a boolean mask or a slice; got "
                         f"{rows!r}.")
    if idx.size == 0:
        raise ValueError("rows selects no row.")
    if idx.min() < -n or idx.max() >= n:
        raise ValueError(f"rows {idx.tolist()[:10]} are out of range for X with {n} rows.")
    return np.where(idx < 0, idx + n, idx)


# ----------------------------------------------------------------------------------------
# plot_modality_weights
# ----------------------------------------------------------------------------------------
def plot_modality_weights(
    net: Any,
    X: Any,
    *,
    kind: str = "rows",
    rows: Any = None,
    n_rows: int = 20,
    ax: Any = None,
) -> Any:
    """Plot how much each input block (modality) counted for each row.

    Reads :meth:`MultiTaskNet.modality_weights` (per-row weights of the blocks, summing to 1
    over the blocks a row has; an absent block weighs 0) of a net that fuses several blocks
    with weights: ``fusion="attention"``, ``"gated"`` or ``"late"`` (``"auto"``, the default
    for several blocks, is late fusion, whose weights are learned per task and only change
    from row to row with the blocks a row has).

    Parameters
    ----------
    net : MultiTaskNet or Pipeline
        A fitted network with several input blocks, or a pipeline ending in one (``X`` then
        goes through the steps before it, e.g. a :class:`~sklearn_mtml.ModalityFusion`).
    X : dict of arrays, ModalityBlocks or DataFrame
        Rows to explain, with the fitted layout (or the pipeline's input).
    kind : {"rows", "distribution"}, default="rows"
        ``"rows"``: one horizontal stacked bar per row (``rows``, or ``n_rows`` rows), its
        tick label naming the modalities the row lacks. ``"distribution"``: box plots of
        each block's weight over all rows of ``X``, grouped by which blocks the rows have
        (every block, or some missing), with the number of rows of each group.
    rows : array-like of int, boolean mask or slice, optional
        Rows to draw with ``kind="rows"``. Default: the first ``n_rows`` rows, or, when some
        rows of ``X`` lack a modality, the first ``n_rows // 2`` of those and the first rows
        with every modality, so that both kinds show.
    n_rows : int, default=20
        Number of rows drawn by default with ``kind="rows"``.
    ax : matplotlib Axes, optional
        Axes to draw on; by default a new figure. The legend sits under the axes: give your
        figure ``layout="constrained"`` so that it makes room for it.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        When the net is not fitted.
    TypeError
        When ``net`` is not a MultiTaskNet (or a pipeline ending in one).
    ValueError
        For a net fitted on one block, a fusion without weights (``"concat"``, and the one
        chosen for ``architecture="task_attention"``: see :func:`plot_task_attention`), an
        unknown ``kind`` or bad ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet, plot_modality_weights
    >>> rng = np.random.RandomState(0)
    >>> X = {"a": rng.randn(60, 3), "b": rng.randn(60, 2)}
    >>> X["b"][:10] = np.nan                      # 10 rows without block "b"
    >>> y = (X["a"][:, 0] > 0).astype(int)
    >>> net = MultiTaskNet(fusion="attention", max_epochs=2, random_state=0).fit(X, y)
    >>> fig = plot_modality_weights(net, X, n_rows=8)
    >>> fig.axes[0].get_yticklabels()[0].get_text()
    'row 0 (no b)'
    """
    if kind not in ("rows", "distribution"):
        raise ValueError(f"Unknown kind {kind!r}; expected 'rows' or 'distribution'.")
    net, X = _fitted_net(net, X, "plot_modality_weights")
    names = list(net.module_.block_names)
    if len(names) < 2:
        raise ValueError(f"plot_modality_weights needs a net fitted on several input blocks "
                         f"(modalities); this one has one block {names}.")
    fusion = net.module_.fusion_name
    if fusion == "concat":
        hint = (" Its architecture attends over the modalities itself: use "
                "plot_task_attention." if "attention" in str(net.architecture) else "")
        raise ValueError(
            "plot_modality_weights needs a fusion with per-row weights ('attention', 'gated' "
            f"or 'late'/'auto'); this net uses fusion='concat', which has none.{hint}")
    weights = np.asarray(net.modality_weights(X), dtype=float)
    present = _presence(net, X)
    incomplete = np.asarray(~present.all(1))  # rows missing a block
    plt = _pyplot("plot_modality_weights")
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    if ax is None:
        if kind == "rows":
            n_shown = len(_select_rows(rows, len(weights), n_rows, incomplete))
            size = (6.4, 1.6 + 0.24 * n_shown)
        else:
            size = (6.4, 4.2)
        fig, (ax,) = _new_figure(plt, 1, 1, size)
    fig = ax.figure
    if kind == "rows":
        idx = _select_rows(rows, len(weights), n_rows, incomplete)
        y = np.arange(len(idx))
        left = np.zeros(len(idx))
        for j, name in enumerate(names):
            ax.barh(y, weights[idx, j], left=left, color=colors[j % len(colors)],
                    label=name, height=0.8, edgecolor="white", linewidth=0.5)
            left += weights[idx, j]
        ax.set_yticks(y, [f"row {i}" + (f" ({_missing(names, present[i])})"
                                         if _missing(names, present[i]) else "")
                          for i in idx], fontsize="small")
        ax.set_ylim(len(idx) - 0.5, -0.5)  # first row on top
        ax.set_xlim(0, 1)
        ax.set_xlabel("weight of each modality in the fusion (a row sums to 1)")
        ax.set_title(f"Modality weights per row ({fusion} fusion)")
        _legend_below(ax, ncol=min(len(names), 4))
        ax.xaxis.grid(True, alpha=0.3)
        return fig
    patterns, inverse = np.unique(present, axis=0, return_inverse=True)
    order = np.argsort(-patterns.sum(1), kind="stable")  # every block first
    width = 0.8 / len(names)
    ticks, tick_labels = [], []
    for pos, p in enumerate(order):
        in_group = inverse.ravel() == p
        label = " + ".join(n for n, keep in zip(names, patterns[p]) if keep) or "none"
        ticks.append(pos)
        tick_labels.append(f"{label}\n({int(in_group.sum())} rows)")
        for j in range(len(names)):
            if not patterns[p, j]:
                continue
            box = ax.boxplot(weights[in_group, j], positions=[pos - 0.4 + width * (j + 0.5)],
                             widths=width * 0.8, patch_artist=True, showfliers=True,
                             flierprops={"markersize": 3, "alpha": 0.5})
            for patch in box["boxes"]:
                patch.set_facecolor(colors[j % len(colors)])
                patch.set_alpha(0.8)
            for median in box["medians"]:
                median.set_color("black")
    from matplotlib.patches import Patch

    ax.set_xticks(ticks, tick_labels, fontsize="small")
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("modalities the rows have")
    ax.set_ylabel("weight in the fusion")
    ax.set_title(f"Modality weights over {len(weights)} rows ({fusion} fusion)")
    _legend_below(ax, [Patch(facecolor=colors[j % len(colors)], alpha=0.8)
                       for j in range(len(names))], names, ncol=min(len(names), 4),
                  tick_lines=2)
    ax.yaxis.grid(True, alpha=0.3)
    return fig


# ----------------------------------------------------------------------------------------
# plot_task_attention
# ----------------------------------------------------------------------------------------
def _task_weights(net: Any, X: Any) -> tuple[np.ndarray, list[str], str]:
    """Per-row weights of each task over tokens or experts: ``(n, T, S)``, labels, kind."""
    import torch

    from .nn.architectures import MMoE, TaskAttention

    arch = getattr(net.module_, "architecture", None)
    if isinstance(arch, TaskAttention):
        weights = net.attention_weights(X)
        labels = (list(net.module_.block_names) if arch.token_proj is not None
                  else [f"group {g}" for g in range(weights.shape[2])])
        what = "modalities" if arch.token_proj is not None else "feature groups"
        return weights, labels, f"Task attention over {what}"
    if isinstance(arch, MMoE):
        collected: list[torch.Tensor] = []

        def hook(module, args, output):
            collected.append(module.gate_weights(args[0]).detach())

        handle = arch.register_forward_hook(hook)
        try:
            net.forward_outputs(X)
        finally:
            handle.remove()
        weights = torch.cat(collected).float().cpu().numpy()
        return weights, [f"expert {k}" for k in range(weights.shape[2])], "MMoE gates"
    raise ValueError(
        "plot_task_attention needs architecture='task_attention' (attention of each task "
        "over the modalities or feature groups) or 'mmoe' (gates of each task over the "
        "experts), with a fusion other than 'late'; this net has "
        f"architecture={net.architecture!r} and fusion={net.module_.fusion_name!r}.")


def plot_task_attention(
    net: Any,
    X: Any,
    *,
    rows: Any = None,
    ax: Any = None,
    annotate: bool = True,
    cmap: str = "viridis",
    colorbar: bool = True,
    vmax: float | None = 1.0,
) -> Any:
    """Heatmap of how much each task attends to each modality, feature group or expert.

    For ``architecture="task_attention"`` the cells are the attention of each task's
    queries over the tokens (:meth:`MultiTaskNet.attention_weights`): the input blocks when
    the net reads several (absent ones get no attention), else its learned feature groups.
    For ``architecture="mmoe"`` they are each task's gate weights over the experts. A row of
    the heatmap sums to 1.

    Parameters
    ----------
    net : MultiTaskNet or Pipeline
        A fitted network with ``architecture="task_attention"`` or ``"mmoe"`` and a fusion
        other than ``"late"`` (``fusion="auto"`` picks ``"concat"`` for task attention), or
        a pipeline ending in one.
    X : array-like, dict of arrays, ModalityBlocks or DataFrame
        Rows to explain, with the fitted layout (or the pipeline's input).
    rows : int, array-like of int, boolean mask or slice, optional
        An int draws that row's weights; several rows draw their mean. Default: the mean
        over every row of ``X``.
    ax : matplotlib Axes, optional
        Axes to draw on; by default a new figure.
    annotate : bool, default=True
        Write each cell's value in it.
    cmap : str, default="viridis"
        Colour map.
    colorbar : bool, default=True
        Draw a colour bar.
    vmax : float or None, default=1.0
        Top of the colour scale, which starts at 0. The default keeps heatmaps drawn side
        by side comparable (weights lie in [0, 1]); ``None`` stretches the scale to the
        largest weight drawn (for many tokens with small weights).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        When the net is not fitted.
    TypeError
        When ``net`` is not a MultiTaskNet (or a pipeline ending in one).
    ValueError
        When the architecture has no task attention or gates, or for bad ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet, plot_task_attention
    >>> rng = np.random.RandomState(0)
    >>> X = {"a": rng.randn(60, 3), "b": rng.randn(60, 2)}
    >>> Y = np.column_stack([X["a"][:, 0] > 0, X["b"][:, 0] > 0]).astype(int)
    >>> net = MultiTaskNet(architecture="task_attention", max_epochs=2,
    ...                    random_state=0).fit(X, Y)
    >>> fig = plot_task_attention(net, X)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    """
    net, X = _fitted_net(net, X, "plot_task_attention")
    weights, labels, title = _task_weights(net, X)
    n = weights.shape[0]
    if rows is None:
        matrix, which = weights.mean(0), f"mean over {n} rows"
    elif isinstance(rows, (int, np.integer)):
        (row,) = _select_rows([rows], n, 1)
        names = list(net.module_.block_names)
        missing = _missing(names, _presence(net, X)[row]) if len(names) > 1 else ""
        matrix, which = weights[row], f"row {row}" + (f", {missing}" if missing else "")
    else:
        idx = _select_rows(rows, n, n)
        matrix, which = weights[idx].mean(0), f"mean over {len(idx)} rows"
    tasks = list(net.task_names_)
    plt = _pyplot("plot_task_attention")
    if ax is None:
        size = (max(3.6, 1.2 * len(labels) + 2.8 + (1.0 if colorbar else 0.0)),
                max(2.6, 0.55 * len(tasks) + 1.6))
        fig, (ax,) = _new_figure(plt, 1, 1, size)
    fig = ax.figure
    vmax = max(float(matrix.max()), 1e-9) if vmax is None else float(vmax)
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(np.arange(len(labels)), labels, fontsize="small",
                  rotation=45 if max(len(s) for s in labels) > 8 else 0,
                  ha="right" if max(len(s) for s in labels) > 8 else "center")
    ax.set_yticks(np.arange(len(tasks)), tasks, fontsize="small")
    if annotate:
        cm = plt.get_cmap(cmap)
        for t in range(matrix.shape[0]):
            for s in range(matrix.shape[1]):
                r, g, b, _ = cm(min(matrix[t, s] / vmax, 1.0))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(s, t, f"{matrix[t, s]:.2f}", ha="center", va="center",
                        fontsize="small", color="white" if dark else "black")
    ax.set_xlabel("expert" if title == "MMoE gates" else "attended token")
    ax.set_ylabel("task")
    ax.set_title(f"{title}\n({which})", fontsize="medium")
    if colorbar:
        fig.colorbar(image, ax=ax, label="weight", shrink=0.9)
    return fig


# ----------------------------------------------------------------------------------------
# plot_confusion_matrices
# ----------------------------------------------------------------------------------------
def plot_confusion_matrices(
    net: Any,
    X: Any,
    Y: Any,
    *,
    tasks: Sequence[str] | None = None,
    normalize: str | None = None,
    n_cols: int = 3,
    ax: Any = None,
    cmap: str = "Blues",
    values_format: str | None = None,
    colorbar: bool = False,
) -> Any:
    """One :class:`~sklearn.metrics.ConfusionMatrixDisplay` per classification task.

    The net predicts ``X`` once; each classification task's matrix compares its predictions
    with ``Y``'s column on the rows that have a label (a missing label is skipped, as in
    :meth:`MultiTaskNet.score_tasks`). Classes are the task's ``classes_``, in order, so a
    class never predicted nor present in ``Y`` still has its row and column. Each panel's
    title gives the task's accuracy and number of labelled rows.

    Parameters
    ----------
    net : MultiTaskNet or Pipeline
        A fitted network with at least one classification task, or a pipeline ending in one.
    X : array-like, dict of arrays, ModalityBlocks or DataFrame
        Input rows (the pipeline's input for a pipeline).
    Y : DataFrame or array-like
        True targets, one column per task as at fit (1-D after a 1-D fit).
    tasks : sequence of str, optional
        Classification tasks to draw (default: all of them, in task order).
    normalize : {"true", "pred", "all"} or None, default=None
        Normalisation of the counts, as in :func:`sklearn.metrics.confusion_matrix`.
    n_cols : int, default=3
        Panels per row of the grid.
    ax : sequence of matplotlib Axes, optional
        One axes per task drawn; by default a new figure with a grid of panels.
    cmap : str, default="Blues"
        Colour map.
    values_format : str, optional
        Format of the cell values (default: ``"d"`` for counts, ``".2f"`` normalised).
    colorbar : bool, default=False
        Draw a colour bar beside each matrix.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the matrices.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    sklearn.exceptions.NotFittedError
        When the net is not fitted.
    TypeError
        When ``net`` is not a MultiTaskNet (or a pipeline ending in one).
    ValueError
        When the net has no classification task, ``tasks`` names a regression or unknown
        task, ``Y``'s tasks differ from the fitted ones, or ``ax`` holds the wrong number of
        axes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet, plot_confusion_matrices
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(80, 3)
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    >>> net = MultiTaskNet(tasks=["binary", "regression"], max_epochs=3,
    ...                    random_state=0).fit(X, Y)
    >>> fig = plot_confusion_matrices(net, X, Y)
    >>> fig.axes[0].get_title().split(":")[0]
    'task_0'
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    from .tasks import is_missing

    model = net
    net, _ = _fitted_net(net, None, "plot_confusion_matrices")
    classification = [n for n, t in net.tasks_.items() if t.is_classification]
    if not classification:
        kinds = {n: t.kind for n, t in net.tasks_.items()}
        raise ValueError("plot_confusion_matrices needs at least one classification task "
                         f"(binary or multiclass); the net's tasks are {kinds}.")
    if tasks is None:
        chosen = classification
    else:
        chosen = [tasks] if isinstance(tasks, str) else list(tasks)
        bad = [t for t in chosen if t not in classification]
        if bad or not chosen:
            raise ValueError(f"tasks {bad or chosen} are not classification tasks of the net; "
                             f"expected some of {classification}.")
    names, cols, _ = net._validate_targets(Y)
    if names != net.task_names_:
        raise ValueError(f"Y has tasks {names}, but the model was fitted on "
                         f"{net.task_names_}.")
    pred = np.asarray(model.predict(X))
    pred = pred.reshape(len(pred), -1)
    plt = _pyplot("plot_confusion_matrices")
    n_classes = max(net.tasks_[t].classes_.size for t in chosen)
    if ax is None:
        n_cols = max(1, min(int(n_cols), len(chosen)))
        n_rows = math.ceil(len(chosen) / n_cols)
        side = float(np.clip(1.6 + 0.42 * n_classes, 3.4, 8.0))
        fig, axes = _new_figure(plt, n_rows, n_cols, (side + (0.8 if colorbar else 0), side))
        for extra in axes[len(chosen):]:
            extra.remove()
    else:
        axes = _given_axes(ax, len(chosen), f"tasks {chosen}")
        fig = axes[0].figure
    for name, axis in zip(chosen, axes):
        j = net.task_names_.index(name)
        task = net.tasks_[name]
        labelled = ~is_missing(cols[j])
        y_true = np.asarray(cols[j])[labelled].astype(task.classes_.dtype)
        y_pred = pred[labelled, j].astype(task.classes_.dtype)
        display_labels = [str(c) for c in task.classes_]
        k = len(display_labels)
        text_size = "medium" if k <= 10 else "small" if k <= 16 else "xx-small"
        fmt = values_format or (".2f" if normalize else "d")
        ConfusionMatrixDisplay.from_predictions(
            y_true, y_pred, labels=task.classes_, display_labels=display_labels,
            normalize=normalize, ax=axis, cmap=cmap, colorbar=colorbar, values_format=fmt,
            text_kw={"fontsize": text_size})
        if max(len(s) for s in display_labels) > 3:
            plt.setp(axis.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
        accuracy = float(np.mean(y_true == y_pred)) if labelled.any() else float("nan")
        axis.set_title(f"{name}: accuracy {accuracy:.3f}\n({int(labelled.sum())} labelled "
                       "rows)", fontsize="medium")
    return fig
