"""Task kinds: target encoding, loss, output activation and metric for one task.

A *task* is one target column of ``Y``. Each kind (``"binary"``, ``"multiclass"``,
``"regression"``) is one small class behind the :data:`TASK_KINDS` registry; a new kind is
one subclass of :class:`Task` and one registry entry.

Targets are encoded once per fit into a float32 vector plus a boolean *label mask*: a missing
label (``NaN`` or ``None``) gives ``mask=False`` and the task's loss ignores that row, while the
row still trains every other task.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
import torch
from sklearn.metrics import r2_score
from torch.nn import functional as F

from ._missing import missing_mask

__all__ = [
    "MAX_SILENT_CLASSES",
    "MIN_ROWS_PER_CLASS",
    "TASK_KINDS",
    "BinaryTask",
    "MulticlassTask",
    "RegressionTask",
    "Task",
    "TaskInferenceWarning",
    "TaskSet",
    "infer_task_kind",
    "is_missing",
    "make_task",
    "resolve_loss_weights",
    "resolve_task_kinds",
]


def is_missing(values: np.ndarray) -> np.ndarray:
    """Return a boolean mask of missing entries (``None``, ``NaN``, ``pd.NA``, ``NaT``).

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        One target column, of any dtype.

    Returns
    -------
    mask : ndarray of bool, shape (n_samples,)
        ``True`` where the entry is missing (the rule of :mod:`sklearn_mtml._missing`).
    """
    return missing_mask(values)


def _non_missing(values: np.ndarray) -> np.ndarray:
    return np.asarray(values)[~is_missing(values)]


#: Integer-valued columns with at most this many distinct values are inferred as classes
#: without a warning (digits 0-9, ratings 1-5, ...).
MAX_SILENT_CLASSES = 10
#: Fewest labelled rows per distinct value, on average, for an integer-valued column to be read
#: as class codes when it has more than :data:`MAX_SILENT_CLASSES` values.
MIN_ROWS_PER_CLASS = 5


class TaskInferenceWarning(UserWarning):
    """Warn that a task kind was inferred from an ambiguous column of whole numbers.

    Raised by :func:`infer_task_kind` (so by ``MultiTaskNet.fit`` for the tasks it infers) when
    whole numbers are inferred as ``"regression"``, or as ``"multiclass"`` with more than
    :data:`MAX_SILENT_CLASSES` classes: such a column may be class codes or a quantity. The
    message names the column and says which kind was inferred and how to declare the other.
    Declaring the task's kind, e.g. ``tasks={"age": "regression"}``, silences it.
    """


def infer_task_kind(values: np.ndarray, *, name: str | None = None) -> str:
    """Infer a task kind from one target column.

    Missing entries are ignored; ``n`` below is the number of labelled rows and ``k`` the number
    of distinct labelled values. The rule, applied in order:

    1. Strings and booleans (also object columns of strings, or of strings mixed with ints)
       are labels: ``"binary"`` when ``k <= 2``, ``"multiclass"`` otherwise.
    2. Numbers that are not all whole (``0.5``, ``2.25``), or not all finite, give
       ``"regression"``.
    3. Whole numbers (integer dtype, whole-number floats such as ``3.0``, object arrays of
       Python ints) give ``"binary"`` when ``k <= 2``. For ``k >= 3`` four signs say the
       values are a quantity (counts, ages, prices, scores) rather than class codes:

       * *few rows*: fewer than ``MIN_ROWS_PER_CLASS`` (5) labelled rows per value on average
         (``k > n / 5``), too few examples to learn that many classes; this is the typical
         trap of whole-number regression targets on small data sets;
       * *odd start*: the smallest value is not 0 or 1, whereas label encoders number classes
         ``0..k-1`` or ``1..k`` (ages start at 18, years at 1990, temperatures go below 0);
       * *sparse*: the values are spread out (``max - min + 1 > 2 k``), like prices 100, 250,
         1200;
       * *float*: the column is float and has no missing entry (measurements stored as
         ``120.0``). A float column with ``NaN`` does not count: numpy has no integer
         ``NaN``, so class codes with missing labels are necessarily float.

    4. With ``3 <= k <= MAX_SILENT_CLASSES`` (10) the column is ``"multiclass"`` (digits 0-9,
       ratings 1-5, ...) unless it shows *few rows*, *odd start* and *float* together, the
       profile of a measurement on a tiny sample (``load_linnerud``'s waist sizes, 31.0 to
       46.0 in 20 rows), which gives ``"regression"``.
    5. With ``k > 10`` the column is ``"regression"`` if it shows any of the four signs and
       ``"multiclass"`` otherwise (contiguous codes from 0 or 1 with at least 5 rows each,
       like CIFAR-100's labels 0-99).

    A column of whole numbers inferred as ``"regression"``, or with more than 10 values
    inferred as ``"multiclass"``, raises a :class:`TaskInferenceWarning` that names the
    column, ``k``, the kind inferred and how to declare the other one. Strings, booleans,
    non-whole numbers and whole numbers read as at most 10 classes never warn. Declaring the
    task's kind (``tasks={name: kind}``) skips inference and its warning.

    This differs from :func:`sklearn.utils.multiclass.type_of_target`, which calls every
    integer-valued column with more than two values multi-class: a regression target of
    whole numbers would otherwise silently become a classifier with one class per value.

    Parameters
    ----------
    values : ndarray of shape (n_samples,)
        One target column.
    name : str or None, default=None
        The task's name, used in the warning message.

    Returns
    -------
    kind : str
        One of ``"binary"``, ``"multiclass"``, ``"regression"``.

    Warns
    -----
    TaskInferenceWarning
        When whole numbers are inferred as ``"regression"``, or as ``"multiclass"`` with more
        than 10 distinct values.
    """
    values = np.asarray(values)
    present = _non_missing(values)
    has_missing = present.size < values.shape[0]
    is_float = present.dtype.kind == "f"
    if present.dtype.kind == "O":
        types = {type(v) for v in present}
        if types and all(issubclass(t, (bool, np.bool_)) for t in types):
            return _label_kind(present)
        if all(issubclass(t, (int, np.integer)) for t in types):
            try:
                present = np.array(present.tolist(), dtype=np.int64)
            except OverflowError:
                present = present.astype(np.float64)
        elif all(issubclass(t, (bool, np.bool_, int, np.integer, str)) for t in types):
            return _label_kind(present)
        else:
            try:
                present = present.astype(np.float64)
            except (TypeError, ValueError):
                return _label_kind(present)
            is_float = True
    kind = present.dtype.kind
    if kind in "bUS":
        return _label_kind(present)
    if kind == "f":
        if present.size == 0 or not np.all(np.isfinite(present)):
            return "regression"
        if not np.all(present == np.round(present)):
            return "regression"
    elif kind not in "iu":
        return "regression"
    uniques = np.unique(present)
    k = int(uniques.size)
    if k <= 2:
        return "binary"
    n = int(present.size)
    lo, hi = uniques[0], uniques[-1]
    few_rows = k * MIN_ROWS_PER_CLASS > n
    odd_start = lo not in (0, 1)
    stored_float = is_float and not has_missing
    if k <= MAX_SILENT_CLASSES:
        if not (few_rows and odd_start and stored_float):
            return "multiclass"
        reasons = [f"fewer than {MIN_ROWS_PER_CLASS} rows per value",
                   f"the smallest value is {_fmt(lo)}, not 0 or 1", "the column is float"]
    else:
        reasons = []
        if few_rows:
            reasons.append(f"fewer than {MIN_ROWS_PER_CLASS} rows per value")
        if odd_start:
            reasons.append(f"the smallest value is {_fmt(lo)}, not 0 or 1")
        if float(hi) - float(lo) + 1 > 2 * k:
            reasons.append("the values are sparse")
        if stored_float:
            reasons.append("the column is float")
    inferred = "regression" if reasons else "multiclass"
    other = "multiclass" if reasons else "regression"
    why = ("; ".join(reasons) if reasons
           else "they look like class codes: from 0 or 1, near-contiguous, "
                f"at least {MIN_ROWS_PER_CLASS} rows per value")
    column = f"Task {name!r}" if name is not None else "The target column"
    key = name if name is not None else "<name>"
    warnings.warn(
        f"{column} has {k} distinct integer values ({_fmt(lo)} to {_fmt(hi)}) in {n} labelled "
        f"rows and was inferred as {inferred!r} ({why}). If it is "
        f"{'made of class labels' if reasons else 'a quantity'}, declare it: "
        f'tasks={{"{key}": "{other}"}}; declaring its kind also silences this warning.',
        TaskInferenceWarning,
        stacklevel=2,
    )
    return inferred


def _label_kind(present: np.ndarray) -> str:
    """Binary for at most two distinct labels, multi-class otherwise."""
    try:
        k = len(set(present.tolist()))
    except TypeError:  # unhashable labels
        k = len(set(map(str, present)))
    return "binary" if k <= 2 else "multiclass"


def _fmt(v: object) -> str:
    """Format a whole number without a trailing ``.0``."""
    return str(int(v))  # type: ignore[call-overload]


class Task:
    """Base class of a task kind.

    Parameters
    ----------
    name : str
        The task's name (a column of ``Y``).

    Attributes
    ----------
    n_outputs : int
        Width of the network output this task's head must produce.
    metric_name : str
        Short name of the metric reported for this task (``"acc"``, ``"r2"``).
    """

    kind: ClassVar[str] = ""
    metric_name: ClassVar[str] = ""
    is_classification: ClassVar[bool] = False

    def __init__(self, name: str):
        self.name = name

    # -- fitting and encoding ----------------------------------------------------------------
    def fit(self, values: np.ndarray) -> Task:
        """Learn the encoding of one target column (missing labels are ignored)."""
        raise NotImplementedError

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encode a target column into a float32 training target and a label mask.

        Parameters
        ----------
        values : ndarray of shape (n_samples,)
            Target column, missing labels as ``NaN``/``None``.

        Returns
        -------
        target : ndarray of float32, shape (n_samples,)
            Encoded target (class index or standardised value); ``0`` where missing.
        mask : ndarray of bool, shape (n_samples,)
            ``True`` where the row has a label.
        """
        raise NotImplementedError

    # -- torch side ------------------------------------------------------------------------
    @property
    def n_outputs(self) -> int:
        """Number of network outputs for this task."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample loss of shape ``(n,)`` from head output ``(n, n_outputs)``."""
        raise NotImplementedError

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                    ) -> torch.Tensor:
        """Sufficient statistics of the validation metric on a batch, on the device.

        Summed over batches, :meth:`metric_from_sums` turns them into the metric of the
        whole validation set, with no host synchronisation per batch.

        Parameters
        ----------
        output : Tensor of shape (n, n_outputs)
            The task's head outputs.
        target : Tensor of shape (n,)
            Encoded targets.
        weight : Tensor of shape (n,)
            Label weight of each row (0 where the label is missing).

        Returns
        -------
        sums : Tensor of shape (4,)
        """
        raise NotImplementedError

    def metric_from_sums(self, sums: np.ndarray) -> float:
        """The metric named :attr:`metric_name` from summed :meth:`metric_sums` (NaN if none)."""
        raise NotImplementedError

    # -- numpy side ------------------------------------------------------------------------
    def decode(self, output: np.ndarray) -> np.ndarray:
        """Turn raw head outputs ``(n, n_outputs)`` into predictions in the original space."""
        raise NotImplementedError

    def score(self, y_true: np.ndarray, y_pred: np.ndarray,
              sample_weight: np.ndarray | None = None) -> float:
        """Score predictions against original-space labels (missing labels skipped).

        ``sample_weight`` (one weight per row, or ``None``) weights the rows.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _ClassificationTask(Task):
    is_classification = True
    metric_name = "acc"

    def fit(self, values: np.ndarray) -> _ClassificationTask:
        present = _homogeneous(_non_missing(values))
        if present.dtype.kind == "O":
            try:
                classes = np.unique(present)
            except TypeError as exc:
                raise ValueError(
                    f"Task {self.name!r}: labels of mixed, unorderable types "
                    f"({sorted({type(v).__name__ for v in present})}); "
                    "expected labels of one type."
                ) from exc
        else:
            classes = np.unique(present)
        if classes.size < 2:
            raise ValueError(
                f"Task {self.name!r} has {classes.size} class"
                f"{'' if classes.size == 1 else 'es'} in the labelled rows; a {self.kind} task "
                "needs at least 2 classes."
            )
        self._check_n_classes(classes)
        self.classes_ = classes
        return self

    def _check_n_classes(self, classes: np.ndarray) -> None:
        pass

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values)
        mask = ~is_missing(values)
        target = np.zeros(values.shape[0], dtype=np.float32)
        present = values[mask]
        if present.dtype.kind == "O" and self.classes_.dtype.kind != "O":
            try:
                typed = present.astype(self.classes_.dtype)
            except (TypeError, ValueError):
                pass
            else:  # only an exact conversion: 2.5 must not become class 2
                present = typed if bool(np.all(typed == present)) else present
        try:
            idx = np.searchsorted(self.classes_, present)
        except TypeError:  # labels of another type than the classes, not even orderable
            known = {c: i for i, c in enumerate(self.classes_.tolist())}
            idx = np.array([known.get(v, 0) for v in present.tolist()], dtype=np.intp)
        idx = np.clip(idx, 0, self.classes_.size - 1)
        found = self.classes_[idx] == present
        if not np.all(found):
            unseen = np.unique(np.asarray(present)[~found].astype(str))[:5]
            raise ValueError(
                f"Task {self.name!r}: labels {unseen.tolist()} were not seen at fit; "
                f"known classes are {self.classes_.tolist()}."
            )
        target[mask] = idx
        return target, mask

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                    ) -> torch.Tensor:
        """Weighted accuracy counts ``(n_correct, n, 0, 0)`` (see :meth:`Task.metric_sums`)."""
        m = weight.to(target.dtype)
        pred = (output[:, 0] > 0) if output.shape[1] == 1 else output.argmax(1)
        zero = m.new_zeros(())
        return torch.stack([((pred.to(target.dtype) == target).to(m.dtype) * m).sum(),
                            m.sum(), zero, zero])

    def metric_from_sums(self, sums: np.ndarray) -> float:
        """Accuracy from :meth:`metric_sums`."""
        return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")

    def predict_proba(self, output: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` from raw head outputs."""
        raise NotImplementedError

    def decode(self, output: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(output), axis=1)]

    def score(self, y_true: np.ndarray, y_pred: np.ndarray,
              sample_weight: np.ndarray | None = None) -> float:
        mask = ~is_missing(y_true)
        dtype = self.classes_.dtype
        y_true = np.asarray(y_true)[mask].astype(dtype)
        correct = y_true == np.asarray(y_pred)[mask].astype(dtype)
        w = None if sample_weight is None else np.asarray(sample_weight)[mask]
        return float(np.average(correct, weights=w))


class BinaryTask(_ClassificationTask):
    """Binary classification: one logit, sigmoid output, binary cross-entropy."""

    kind = "binary"

    def _check_n_classes(self, classes: np.ndarray) -> None:
        if classes.size > 2:
            raise ValueError(
                f"Task {self.name!r} is declared 'binary' but has {classes.size} classes "
                f"({classes[:10].tolist()}); declare it 'multiclass' instead."
            )

    @property
    def n_outputs(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(output[:, 0], target, reduction="none")

    def predict_proba(self, output: np.ndarray) -> np.ndarray:
        p1 = 1.0 / (1.0 + np.exp(-output[:, 0].astype(np.float64)))
        return np.column_stack([1.0 - p1, p1])


class MulticlassTask(_ClassificationTask):
    """Multi-class classification: one logit per class, softmax output, cross-entropy."""

    kind = "multiclass"

    @property
    def n_outputs(self) -> int:
        return int(self.classes_.size)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target.long(), reduction="none")

    def predict_proba(self, output: np.ndarray) -> np.ndarray:
        z = output.astype(np.float64)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class RegressionTask(Task):
    """Regression: one linear output on a standardised target, squared or Huber loss.

    The target is standardised with its fit-time mean and standard deviation so that tasks of
    different scales have comparable losses; predictions are mapped back to the original scale
    and kept within the training targets' range widened by ``bounds`` of it on each side, so
    that a shifted input (a later period, an unseen group) cannot send a prediction far beyond
    anything seen at fit.

    Parameters
    ----------
    name : str
        The task's name.
    loss : {"squared", "huber"}, default="squared"
        Squared error, or the Huber loss (quadratic within one standard deviation of the
        target, linear beyond: robust to outlying labels). With the Huber loss the target is
        centred on its median and scaled by its inter-quartile range (as a standard
        deviation), so that the outlying labels do not widen the quadratic zone.
    bounds : float or None, default=0.25
        Predictions are clipped to ``[min - bounds·range, max + bounds·range]`` of the
        training targets; ``None`` leaves them unbounded.
    """

    kind = "regression"
    metric_name = "r2"
    LOSSES = ("squared", "huber")

    def __init__(self, name: str, loss: str = "squared", bounds: float | None = 0.25):
        super().__init__(name)
        if loss not in self.LOSSES:
            raise ValueError(f"Task {name!r}: unknown regression loss {loss!r}; expected one "
                             f"of {list(self.LOSSES)}.")
        if bounds is not None and not (np.isfinite(bounds) and bounds >= 0):
            raise ValueError(f"Task {name!r}: regression bounds must be None or a finite "
                             f"number >= 0, got {bounds!r}.")
        self.loss_name = loss
        self.bounds = None if bounds is None else float(bounds)

    def fit(self, values: np.ndarray) -> RegressionTask:
        present = self._as_float(_non_missing(values))
        if present.size == 0:
            raise ValueError(f"Task {self.name!r} has no labelled rows.")
        if not np.all(np.isfinite(present)):
            raise ValueError(f"Task {self.name!r}: regression targets contain inf.")
        std = float(present.std())
        if self.loss_name == "huber":
            # outlying labels must not set the scale that decides what counts as an outlier
            q25, median, q75 = np.percentile(present, [25, 50, 75])
            self.mean_, iqr_std = float(median), float(q75 - q25) / 1.3489795
            self.scale_ = iqr_std if iqr_std > 0 else (std if std > 0 else 1.0)
        else:
            self.mean_ = float(present.mean())
            self.scale_ = std if std > 0 else 1.0
        lo, hi = float(present.min()), float(present.max())
        margin = 0.0 if self.bounds is None else self.bounds * (hi - lo)
        self.range_ = (lo - margin, hi + margin)
        return self

    def _as_float(self, values: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            bad = next((v for v in np.asarray(values, dtype=object) if not _is_number(v)), None)
            raise ValueError(
                f"Task {self.name!r} is a regression task but its targets are not numeric "
                f"(found {bad!r}); declare it 'binary' or 'multiclass', or pass numbers."
            ) from exc

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values)
        mask = ~is_missing(values)
        target = np.zeros(values.shape[0], dtype=np.float32)
        present = self._as_float(values[mask])
        if not np.all(np.isfinite(present)):
            raise ValueError(f"Task {self.name!r}: regression targets contain inf.")
        target[mask] = (present - self.mean_) / self.scale_
        return target, mask

    @property
    def n_outputs(self) -> int:
        return 1

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if getattr(self, "loss_name", "squared") == "huber":
            return 2.0 * F.huber_loss(output[:, 0], target, reduction="none", delta=1.0)
        return (output[:, 0] - target) ** 2

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
                    ) -> torch.Tensor:
        """Weighted ``(SS_res, Σy, Σy², n)`` on the encoded target (R² is invariant to it)."""
        m = weight.to(target.dtype)
        res = ((output[:, 0] - target) ** 2 * m).sum()
        return torch.stack([res, (target * m).sum(), (target ** 2 * m).sum(), m.sum()])

    def metric_from_sums(self, sums: np.ndarray) -> float:
        """R² from :meth:`metric_sums` (NaN without labels or with a constant target)."""
        n = sums[3]
        if n <= 0:
            return float("nan")
        ss_tot = sums[2] - sums[1] ** 2 / n
        return float(1.0 - sums[0] / ss_tot) if ss_tot > 0 else float("nan")

    def decode(self, output: np.ndarray) -> np.ndarray:
        values = output[:, 0].astype(np.float64) * self.scale_ + self.mean_
        if getattr(self, "bounds", None) is not None and hasattr(self, "range_"):
            values = np.clip(values, *self.range_)
        return values

    def score(self, y_true: np.ndarray, y_pred: np.ndarray,
              sample_weight: np.ndarray | None = None) -> float:
        mask = ~is_missing(y_true)
        w = None if sample_weight is None else np.asarray(sample_weight)[mask]
        return float(r2_score(self._as_float(np.asarray(y_true)[mask]),
                              self._as_float(np.asarray(y_pred)[mask]), sample_weight=w))


def _homogeneous(values: np.ndarray) -> np.ndarray:
    """Give an object array of labels of one plain type (ints, strings, ...) that type's dtype."""
    if values.dtype.kind != "O" or values.size == 0:
        return values
    if len({type(v) for v in values}) == 1:
        typed = np.array(values.tolist())
        if typed.dtype.kind in "biufU":
            return typed
    return values


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


#: Registry of task kinds: name -> class.
TASK_KINDS: dict[str, type[Task]] = {
    "binary": BinaryTask,
    "multiclass": MulticlassTask,
    "regression": RegressionTask,
}


def make_task(name: str, kind: str | None, values: np.ndarray, *, regression_loss: str = "squared",
              regression_bounds: float | None = 0.25) -> Task:
    """Create and fit the task ``name`` of kind ``kind`` on its target column.

    Parameters
    ----------
    name : str
        Task name.
    kind : str or None
        A key of :data:`TASK_KINDS`, or ``None`` to infer it with :func:`infer_task_kind`.
    values : ndarray of shape (n_samples,)
        The task's target column.
    regression_loss : {"squared", "huber"}, default="squared"
        Loss of a regression task (see :class:`RegressionTask`).
    regression_bounds : float or None, default=0.25
        Prediction bounds of a regression task (see :class:`RegressionTask`).

    Returns
    -------
    task : Task
        The fitted task.
    """
    present = _non_missing(values)
    if present.size == 0:
        raise ValueError(
            f"Task {name!r} has no labelled row: every target is missing. Drop the task or "
            "provide labels."
        )
    if kind is None:
        kind = infer_task_kind(values, name=name)
    if kind not in TASK_KINDS:
        raise ValueError(
            f"Unknown kind {kind!r} for task {name!r}; expected one of {sorted(TASK_KINDS)}."
        )
    if kind == "regression":
        regression = cast("type[RegressionTask]", TASK_KINDS[kind])
        return regression(name, loss=regression_loss, bounds=regression_bounds).fit(values)
    return TASK_KINDS[kind](name).fit(values)


def resolve_task_kinds(spec: Any, names: Sequence[str]) -> dict[str, str | None]:
    """Each task's declared kind from an estimator's ``tasks`` parameter (None: inferred).

    Parameters
    ----------
    spec : None, dict of str to str, or sequence of str
        ``None`` infers every task; a dict names some tasks (columns of ``Y``); a sequence
        gives one kind per column, in order.
    names : sequence of str
        The task names (columns of ``Y``).

    Returns
    -------
    kinds : dict of str to str or None
    """
    names = list(names)
    if spec is None:
        return dict.fromkeys(names)
    if isinstance(spec, Mapping):
        unknown = [k for k in spec if str(k) not in names]
        if unknown:
            raise ValueError(f"tasks names {unknown}, which are not columns of Y {names}.")
        return {n: spec.get(n) for n in names}
    if isinstance(spec, str) or not isinstance(spec, Sequence):
        raise TypeError(
            f"tasks must be None, a dict {{task: kind}} or a sequence of kinds, got {spec!r}."
        )
    if len(spec) != len(names):
        raise ValueError(f"tasks gives {len(spec)} kinds but Y has {len(names)} columns {names}.")
    return dict(zip(names, spec))


def resolve_loss_weights(spec: Any, names: Sequence[str]) -> list[float]:
    """One static loss weight per task from an estimator's ``loss_weights`` parameter.

    Parameters
    ----------
    spec : None, dict of str to float, or sequence of float
        ``None`` weighs every task 1; a dict names some tasks (the others weigh 1); a
        sequence gives one weight per task, in order.
    names : sequence of str
        The task names.

    Returns
    -------
    weights : list of float
        Finite, non-negative, not all zero.
    """
    names = list(names)
    if spec is None:
        weights: list[Any] = [1.0] * len(names)
    elif isinstance(spec, Mapping):
        unknown = [k for k in spec if str(k) not in names]
        if unknown:
            raise ValueError(
                f"loss_weights names {unknown}, which are not tasks; tasks are {names}."
            )
        weights = [spec.get(n, 1.0) for n in names]
    elif isinstance(spec, Sequence) and not isinstance(spec, str) or isinstance(spec, np.ndarray):
        if len(spec) != len(names):
            raise ValueError(f"loss_weights has {len(spec)} entries but there are {len(names)} "
                             f"tasks {names}.")
        weights = list(spec)
    else:
        raise TypeError(
            f"loss_weights must be None, a dict or a sequence of numbers, got {spec!r}."
        )
    try:
        floats = [float(w) for w in weights]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"loss_weights must be numbers, got {spec!r}.") from exc
    for n, w in zip(names, floats):
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"loss weight of task {n!r} must be finite and non-negative, "
                             f"got {w}.")
    if sum(floats) == 0:
        raise ValueError("loss_weights are all zero: at least one task must count.")
    return floats


class TaskSet(Mapping[str, Task]):
    """The fitted tasks of a multi-task estimator, in output order.

    A read-only mapping ``{name: Task}`` that also encodes a target table for training and
    decodes network outputs into prediction columns, so that an estimator does neither
    task by task.

    Parameters
    ----------
    tasks : mapping of str to Task
        Fitted tasks, in output order.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml.tasks import TaskSet
    >>> tasks = TaskSet.fit(["kind", "price"], [np.array(["a", "b", "a"]),
    ...                                         np.array([1.5, 2.5, np.nan])])
    >>> [t.kind for t in tasks.values()]
    ['binary', 'regression']
    >>> targets, label_weight = tasks.encode([np.array(["b"]), np.array([np.nan])])
    >>> label_weight.tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, tasks: Mapping[str, Task]):
        self._tasks = dict(tasks)

    @classmethod
    def fit(cls, names: Sequence[str], columns: Sequence[np.ndarray],
            kinds: Mapping[str, str | None] | None = None, *,
            regression_loss: str = "squared",
            regression_bounds: float | None = 0.25) -> TaskSet:
        """Create and fit one task per target column (see :func:`make_task`).

        Parameters
        ----------
        names : sequence of str
            Task names.
        columns : sequence of ndarray
            One target column per task.
        kinds : dict of str to str or None, optional
            Declared kinds (``None`` or a missing name: inferred).
        regression_loss, regression_bounds
            Settings of the regression tasks.

        Returns
        -------
        tasks : TaskSet
        """
        kinds = kinds or {}
        return cls({name: make_task(name, kinds.get(name), col, regression_loss=regression_loss,
                                    regression_bounds=regression_bounds)
                    for name, col in zip(names, columns)})

    def __getitem__(self, name: str) -> Task:
        return self._tasks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"TaskSet({list(self._tasks.values())!r})"

    @property
    def names(self) -> list[str]:
        """Task names, in output order."""
        return list(self._tasks)

    def encode(self, columns: Sequence[np.ndarray], sample_weight: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Encode target columns for training.

        Parameters
        ----------
        columns : sequence of ndarray
            One target column per task, in order.
        sample_weight : ndarray of shape (n_samples,), optional
            Weight of each row.

        Returns
        -------
        targets : ndarray of float32, shape (n_samples, n_tasks)
        label_weight : ndarray of float32, shape (n_samples, n_tasks)
            The row's weight (1 without weights) where it has a label, else 0.
        """
        pairs = [task.encode(col) for task, col in zip(self._tasks.values(), columns)]
        label_weight = np.column_stack([p[1] for p in pairs]).astype(np.float32)
        if sample_weight is not None:
            label_weight *= np.asarray(sample_weight, dtype=np.float32)[:, None]
        return np.column_stack([p[0] for p in pairs]).astype(np.float32), label_weight

    def decode(self, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Prediction columns (original labels and units) from raw outputs, one per task."""
        return [task.decode(out) for task, out in zip(self._tasks.values(), outputs)]

    def classes(self) -> list[np.ndarray | None]:
        """Each task's classes (``None`` for a regression task)."""
        return [getattr(task, "classes_", None) for task in self._tasks.values()]
