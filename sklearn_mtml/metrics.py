"""Multi-task metrics: Δp against a baseline, and per-task scorers for model selection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["delta_p", "task_scorer", "task_scorers"]


def _as_vector(values: Mapping[str, float] | Sequence[float], names: list[str] | None,
               what: str) -> np.ndarray:
    if isinstance(values, Mapping):
        if names is None:
            raise TypeError(f"{what} is a dict but the other scores are not: pass both as "
                            "dicts keyed by task name, or both as sequences in task order.")
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"{what} has no score for tasks {missing}.")
        values = [values[n] for n in names]
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must hold numbers, got {values!r}.") from exc
    return arr


def delta_p(
    scores: Mapping[str, float] | Sequence[float],
    baseline: Mapping[str, float] | Sequence[float],
    higher_is_better: bool | Mapping[str, bool] | Sequence[bool] = True,
) -> float:
    r"""Mean relative gain over a baseline, in percent (Δp, as LibMTL defines it).

    .. math::

        Δp = \frac{100}{T} \sum_{t=1}^{T} σ_t \, \frac{M_t - M_{B,t}}{|M_{B,t}|}

    with ``σ_t = +1`` when higher is better for task ``t``'s metric and ``-1`` when lower is
    better, ``M_t`` the model's score and ``M_{B,t}`` the baseline's (usually single-task
    models). The denominator's absolute value makes the sign meaningful for baselines below 0
    (e.g. a negative R²); it equals LibMTL's definition for positive metrics. Positive Δp means
    the model beats the baseline on average.

    Parameters
    ----------
    scores : dict of str to float, or sequence of float
        The model's score per task.
    baseline : dict of str to float, or sequence of float
        The baseline's score per task (same tasks; dict keys or order).
    higher_is_better : bool, or dict / sequence of bool, default=True
        Direction of each task's metric (one bool for all tasks).

    Returns
    -------
    delta : float
        Δp in percent.

    Raises
    ------
    ValueError
        For mismatched tasks, a baseline score of 0 or a non-finite score.

    Examples
    --------
    >>> round(delta_p({"a": 0.9, "b": 2.0}, {"a": 0.8, "b": 2.5}, {"a": True, "b": False}), 6)
    16.25
    """
    names = list(scores) if isinstance(scores, Mapping) else None
    if names is None and isinstance(baseline, Mapping):
        raise TypeError("baseline is a dict but scores is not: pass both as dicts keyed by "
                        "task name, or both as sequences in task order.")
    m = _as_vector(scores, names, "scores")
    b = _as_vector(baseline, names, "baseline")
    if m.shape != b.shape:
        raise ValueError(f"scores has {m.size} tasks but baseline has {b.size}.")
    if m.size == 0:
        raise ValueError("delta_p needs at least one task.")
    if isinstance(higher_is_better, (bool, np.bool_)):
        sign = np.full(m.size, 1.0 if higher_is_better else -1.0)
    else:
        hib = higher_is_better
        if isinstance(hib, Mapping):
            if names is None:
                raise TypeError("higher_is_better is a dict: pass scores as a dict too.")
            missing = [n for n in names if n not in hib]
            if missing:
                raise ValueError(f"higher_is_better has no entry for tasks {missing}.")
            hib = [hib[n] for n in names]
        hib = list(hib)
        if len(hib) != m.size:
            raise ValueError(f"higher_is_better has {len(hib)} entries for {m.size} tasks.")
        sign = np.where(np.asarray(hib, dtype=bool), 1.0, -1.0)
    if not (np.isfinite(m).all() and np.isfinite(b).all()):
        raise ValueError(f"scores and baseline must be finite, got {m.tolist()} and "
                         f"{b.tolist()}.")
    if (b == 0).any():
        bad = [names[i] if names else int(i) for i in np.flatnonzero(b == 0)]
        raise ValueError(f"baseline score is 0 for tasks {bad}: the relative gain is undefined.")
    return float(np.mean(sign * (m - b) / np.abs(b)) * 100.0)


def _score_tasks(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """Call ``score_tasks`` of a fitted MultiTaskNet, or of the last step of a pipeline."""
    if hasattr(estimator, "score_tasks"):
        return estimator.score_tasks(X, y)
    steps = getattr(estimator, "steps", None)
    if steps:
        final = steps[-1][1]
        if hasattr(final, "score_tasks"):
            Xt = X
            for _, step in steps[:-1]:
                if step is not None and step != "passthrough":
                    Xt = step.transform(Xt)
            return final.score_tasks(Xt, y)
    raise TypeError(
        f"{type(estimator).__name__} has no score_tasks method; per-task scorers need a "
        "MultiTaskNet or a Pipeline ending with one."
    )


def task_scorer(task: str) -> Callable[[Any, Any, Any], float]:
    """A scorer ``(estimator, X, y) -> float`` returning one task's score.

    The score is the one of :meth:`MultiTaskNet.score_tasks` (accuracy for classification,
    R² for regression; higher is better), so it fits ``GridSearchCV(scoring=...)`` and
    ``cross_validate``. The estimator may be a ``MultiTaskNet`` or a ``Pipeline`` ending with
    one.

    Parameters
    ----------
    task : str
        Task name (a column of ``Y``).

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_mtml import MultiTaskNet
    >>> search = GridSearchCV(MultiTaskNet(), {"lr": [1e-3, 1e-2]},
    ...                       scoring=task_scorers(["price", "kind"]), refit="price")
    """
    if not isinstance(task, str):
        raise TypeError(f"task must be a task name (str), got {task!r}.")

    def scorer(estimator: Any, X: Any, y: Any) -> float:
        scores = _score_tasks(estimator, X, y)
        if task not in scores:
            raise ValueError(f"Unknown task {task!r}; the model's tasks are {list(scores)}.")
        return float(scores[task])

    scorer.__name__ = f"task_scorer_{task}"
    scorer.__qualname__ = scorer.__name__
    return scorer


def task_scorers(tasks: Iterable[str], mean: bool = True) -> dict[str, Callable]:
    """A scorer per task (and their mean) for multi-metric ``GridSearchCV``.

    Parameters
    ----------
    tasks : iterable of str
        Task names.
    mean : bool, default=True
        Also include ``"mean"``: the mean of the per-task scores (``MultiTaskNet.score``).

    Returns
    -------
    scoring : dict of str to callable
        ``{task: scorer}`` (plus ``"mean"``), to pass as ``scoring=`` with ``refit=<key>``.
    """
    scoring = {t: task_scorer(t) for t in tasks}
    if mean:
        def mean_scorer(estimator: Any, X: Any, y: Any) -> float:
            return float(np.nanmean(list(_score_tasks(estimator, X, y).values())))

        scoring["mean"] = mean_scorer
    return scoring
