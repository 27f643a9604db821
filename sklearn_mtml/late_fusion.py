"""Model-based late fusion: one estimator per modality, predictions combined per task.

:class:`LateFusionClassifier` and :class:`LateFusionRegressor` fit one scikit-learn
estimator per block of a block input (a :class:`~sklearn_mtml.blocks.ModalityBlocks`, the
output of :class:`~sklearn_mtml.ModalityFusion`, or a dict of arrays) on the rows where that
modality is present, and combine the per-modality predictions of each row over the
modalities it has:

* ``"mean"``: the plain mean of the probabilities (classification) or predictions
  (regression);
* ``"weighted"``: a weighted mean whose weights are learned, per task, from out-of-fold
  predictions (``cross_val_predict``): each modality's skill over the constant prior,
  ``1 - loss / loss_prior`` (log-loss for classifiers, squared error for regressors, i.e.
  McFadden's pseudo-R² and R²), clipped at 0;
* ``"stack"``: a ``final_estimator`` per task fitted on the out-of-fold predictions, as in
  :class:`~sklearn.ensemble.StackingClassifier` (binary probabilities keep one column); an
  absent modality contributes the constant prior.

Means are renormalised over the modalities present in each row; a row with no modality is
an error. Multi-task: with a 2-D ``y`` the per-modality estimator must be multi-output
(``MultiOutputClassifier``, a random forest, a :class:`~sklearn_mtml.MultiTaskNet`, ...) and
the combination is done per task.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import KFold, check_cv, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from ._compat import HasMethods, StrOptions
from ._inputs import InputLayout
from .blocks import ModalityBlocks

__all__ = ["LateFusionClassifier", "LateFusionRegressor"]

#: Name of the single block made from a plain 2-D ``X``.
_SINGLE = "X"


def sample_weight_params(estimator: Any, weight: np.ndarray | None) -> dict[str, Any]:
    """The fit parameters that give ``weight`` to ``estimator`` (a pipeline's last step)."""
    if weight is None:
        return {}
    if isinstance(estimator, Pipeline):
        return {f"{estimator.steps[-1][0]}__sample_weight": weight}
    return {"sample_weight": weight}


def _fit_one(estimator: Any, X: Any, y: np.ndarray, cv: Any, method: str | None,
             weight: np.ndarray | None) -> tuple[Any, Any]:
    """Out-of-fold predictions (when ``method``) and the estimator refitted on all rows."""
    oof = None
    params = sample_weight_params(estimator, weight)
    if method is not None:
        oof = cross_val_predict(clone(estimator), X, y, cv=cv, method=method, params=params)
    return clone(estimator).fit(X, y, **params), oof


def _column(Y: np.ndarray, t: int) -> np.ndarray:
    """Column ``t`` of a 2-D target with its own dtype (an object ``Y`` mixes label types)."""
    col = Y[:, t]
    return np.asarray(col.tolist()) if col.dtype == object else col


def _flat(block: Any) -> Any:
    if sp.issparse(block) or block.ndim == 2:
        return block
    return block.reshape(block.shape[0], -1)


class _BaseLateFusion(MetaEstimatorMixin, BaseEstimator):
    """Shared fitting and combination logic of the late-fusion estimators."""

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), dict],
        "combine": [StrOptions({"mean", "weighted", "stack"})],
        "final_estimator": [HasMethods(["fit", "predict"]), None],
        "cv": ["cv_object"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, estimator: Any, *, combine: str = "mean", final_estimator: Any = None,
                 cv: Any = 5, n_jobs: int | None = None):
        self.estimator = estimator
        self.combine = combine
        self.final_estimator = final_estimator
        self.cv = cv
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ inputs
    def _blocks(self, X: Any, reset: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Per-modality 2-D blocks and presence masks of a block input or a plain matrix."""
        if isinstance(X, Mapping) and not sp.issparse(X):
            X = ModalityBlocks.from_dict(X)
        if isinstance(X, ModalityBlocks):
            if reset:
                for attr in ("n_features_in_", "feature_names_in_"):
                    self.__dict__.pop(attr, None)
            blocks = {k: _flat(v) for k, v in X.blocks.items()}
            masks = dict(X.masks)
            shapes = {k: tuple(v.shape[1:]) for k, v in X.blocks.items()}
        else:
            arr = validate_data(self, X, reset=reset, accept_sparse=["csr", "csc"],
                                ensure_all_finite=not self._allow_nan(), dtype="numeric",
                                ensure_min_samples=1)
            blocks, masks = {_SINGLE: arr}, {_SINGLE: np.ones(arr.shape[0], dtype=bool)}
            shapes = {_SINGLE: tuple(arr.shape[1:])}
        n = next(iter(blocks.values())).shape[0]
        if n == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        if reset:
            self.block_names_ = list(blocks)
            self.block_shapes_ = shapes
        else:  # the network's rule: every fitted block, each with its fitted row shape
            InputLayout(self.block_names_, self.block_shapes_).check_shapes(shapes)
            blocks = {k: blocks[k] for k in self.block_names_}  # the fitted order
            masks = {k: masks[k] for k in self.block_names_}
        present = np.column_stack([masks[k] for k in blocks])
        none = ~present.any(axis=1)
        if none.any():
            rows = np.flatnonzero(none)
            raise ValueError(
                f"Rows {rows[:10].tolist()} have no modality present ({int(none.sum())} "
                f"rows); late fusion needs at least one of {list(blocks)} per row."
            )
        return blocks, masks

    def _base_tags(self, get: Any) -> bool:
        """Whether every per-modality estimator has a tag (read with ``get``)."""
        ests = self.estimator.values() if isinstance(self.estimator, Mapping) else [
            self.estimator]
        try:
            return all(get(get_tags(e)) for e in ests)
        except Exception:  # pragma: no cover - non-conforming estimator
            return False

    def _allow_nan(self) -> bool:
        return self._base_tags(lambda t: t.input_tags.allow_nan)

    def _estimator_for(self, name: str) -> Any:
        if isinstance(self.estimator, Mapping):
            return self.estimator[name]
        return self.estimator

    def _ravel_single_column(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] == 1 and not self._base_tags(
                lambda t: t.target_tags.multi_output):
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning, stacklevel=3,
            )
            return y.ravel()
        return y

    def _oof_splitter(self, y: np.ndarray) -> Any:
        """The splits of the out-of-fold predictions for ``y``.

        An integer ``cv`` gives scikit-learn's splitter, except that plain ``KFold`` (what a
        multi-task or regression ``y`` gets) is shuffled with a fixed seed: rows stored in
        label order would otherwise leave whole classes out of every training fold.
        """
        splitter = check_cv(self.cv, y, classifier=is_classifier(self))
        if isinstance(self.cv, Integral) and type(splitter) is KFold:
            splitter = KFold(splitter.n_splits, shuffle=True, random_state=0)
        return splitter

    def _check_estimator_names(self, names: list[str]) -> None:
        if not isinstance(self.estimator, Mapping):
            return
        missing = [k for k in names if k not in self.estimator]
        extra = [k for k in self.estimator if k not in names]
        if missing or extra:
            raise ValueError(
                f"estimator is a dict but its keys do not match the blocks {names}: "
                f"missing {missing}, unknown {extra}."
            )

    # ------------------------------------------------------------------ per-task predictions
    def _task_preds(self, est: Any, X: Any) -> list[np.ndarray]:
        """One array per task: aligned probabilities (n, K_t) or predictions (n,)."""
        raise NotImplementedError

    def _oof_task_preds(self, oof: Any, y: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def _loss(self, t: int, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
              ) -> float:
        raise NotImplementedError

    def _default_final(self) -> Any:
        raise NotImplementedError

    def _meta(self, t: int, preds: list[np.ndarray]) -> np.ndarray:
        cols = []
        for p in preds:
            p = p.reshape(len(p), -1)
            cols.append(p[:, 1:] if p.shape[1] == 2 else p)
        return np.hstack(cols)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseLateFusion:
        """Fit one estimator per modality (and the combination) on ``X`` and ``y``.

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays, or array-like of shape (n_samples, n_features)
            Block input (3-D/4-D blocks are flattened for the per-modality estimators; in a
            dict, an all-NaN row is an absent modality), or one 2-D matrix (one block
            ``"X"``).
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets; 2-D for several tasks.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: passed to every per-modality estimator's ``fit`` (to the last step
            of a pipeline) on the rows of its modality, to the out-of-fold predictions, to
            the priors and the skills of ``combine="weighted"`` and to the final
            estimators of ``combine="stack"``.

        Returns
        -------
        self
            The fitted estimator.
        """
        blocks, masks = self._blocks(X, reset=True)
        self._check_estimator_names(list(blocks))
        n = next(iter(blocks.values())).shape[0]
        weight = (None if sample_weight is None
                  else _check_sample_weight(sample_weight, np.empty((n, 0))))
        Y = self._check_targets(y, n, weight)
        if Y.shape[1] > 1 and not self._base_tags(lambda t: t.target_tags.multi_output):
            raise ValueError(
                f"y has {Y.shape[1]} tasks but the per-modality estimator is single-output; "
                "use a multi-output one (e.g. MultiOutputClassifier / MultiOutputRegressor, "
                "or MultiTaskNet)."
            )
        y_fit = Y[:, 0] if Y.shape[1] == 1 else Y
        method = None if self.combine == "mean" else self._oof_method
        jobs = []
        for name, block in blocks.items():
            rows = np.flatnonzero(masks[name])
            if rows.size == 0:
                raise ValueError(f"Block {name!r} is absent in every row; it cannot be fitted.")
            y_rows = y_fit[rows]
            cv = self._oof_splitter(y_rows) if method else None
            jobs.append(delayed(_fit_one)(self._estimator_for(name), block[rows], y_rows, cv,
                                          method, None if weight is None else weight[rows]))
        results = Parallel(n_jobs=self.n_jobs)(jobs)
        self.estimators_ = {name: r[0] for name, r in zip(blocks, results)}
        if self.combine == "mean":
            self.weights_ = np.ones((Y.shape[1], len(blocks))) / len(blocks)
            return self
        # Out-of-fold predictions on all rows: the prior where a modality is absent.
        oof = {}
        for (name, mask), (_, raw) in zip(masks.items(), results):
            local = self._oof_task_preds(raw, y_fit[mask])
            full = [np.repeat(self._prior_[t][None], n, axis=0) for t in range(Y.shape[1])]
            for t, p in enumerate(local):
                full[t][mask] = p
            oof[name] = full
        if self.combine == "weighted":
            skill = np.zeros((Y.shape[1], len(blocks)))
            for j, (name, mask) in enumerate(masks.items()):
                for t in range(Y.shape[1]):
                    yt = _column(Y, t)[mask]
                    w_t = None if weight is None else weight[mask]
                    prior = np.repeat(self._prior_[t][None], len(yt), axis=0)
                    base = self._loss(t, yt, prior, w_t)
                    loss = self._loss(t, yt, oof[name][t][mask], w_t)
                    skill[t, j] = 1.0 - loss / base if base > 0 else float(loss == 0)
            self.oof_scores_ = skill
            w = np.clip(skill, 0, None)
            zero = w.sum(axis=1) == 0
            w[zero] = 1.0
            self.weights_ = w / w.sum(axis=1, keepdims=True)
            return self
        final = self._default_final() if self.final_estimator is None else self.final_estimator
        self.final_estimators_ = [
            clone(final).fit(self._meta(t, [oof[k][t] for k in blocks]), _column(Y, t),
                             **sample_weight_params(final, weight))
            for t in range(Y.shape[1])
        ]
        return self

    # ------------------------------------------------------------------ combination
    def _combined(self, X: Any) -> list[np.ndarray]:
        """Per-task combined probabilities (classifier) or predictions (regressor)."""
        check_is_fitted(self)
        blocks, masks = self._blocks(X, reset=False)
        n = next(iter(blocks.values())).shape[0]
        T = len(self._prior_)
        preds = {}
        for name, block in blocks.items():
            mask = masks[name]
            full = [np.repeat(self._prior_[t][None], n, axis=0).astype(float) for t in range(T)]
            if mask.any():
                for t, p in enumerate(self._task_preds(self.estimators_[name], block[mask])):
                    full[t][mask] = p
            preds[name] = full
        if self.combine == "stack":
            return [self._final_output(t, self.final_estimators_[t],
                                       self._meta(t, [preds[k][t] for k in blocks]))
                    for t in range(T)]
        present = np.column_stack([masks[k] for k in blocks]).astype(float)
        out = []
        for t in range(T):
            w = present * self.weights_[t][None, :]
            fallback = w.sum(axis=1) == 0  # only zero-weight modalities in this row
            w[fallback] = present[fallback]
            w /= w.sum(axis=1, keepdims=True)
            stacked = np.stack([preds[k][t].reshape(n, -1) for k in blocks], axis=1)
            combined = np.einsum("nm,nmk->nk", w, stacked)
            out.append(combined if combined.shape[1] > 1 or self._is_proba else combined[:, 0])
        return out

    def modality_weights(self, X: Any) -> np.ndarray:
        """Weight of each modality in each row's combination (mean/weighted).

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays or array-like
            Input with the fitted blocks.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_tasks, n_blocks)
            Rows sum to 1 over the present modalities; absent ones weigh 0.
        """
        check_is_fitted(self)
        if self.combine == "stack":
            raise AttributeError("combine='stack' has no per-modality weights; see "
                                 "final_estimators_.")
        _, masks = self._blocks(X, reset=False)
        present = np.column_stack(list(masks.values())).astype(float)
        w = present[:, None, :] * self.weights_[None]
        zero = w.sum(axis=2) == 0
        w[zero] = np.broadcast_to(present[:, None, :], w.shape)[zero]
        return w / w.sum(axis=2, keepdims=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = self._base_tags(lambda t: t.target_tags.multi_output)
        tags.input_tags.sparse = self._base_tags(lambda t: t.input_tags.sparse)
        tags.input_tags.allow_nan = self._allow_nan()
        return tags


class LateFusionClassifier(ClassifierMixin, _BaseLateFusion):
    """Late fusion of classifiers: one per modality, probabilities combined per task.

    Parameters
    ----------
    estimator : classifier or dict of str to classifier
        Cloned for every block, or one per block name. It needs ``predict_proba``; with a
        2-D ``y`` it must be multi-output (``predict_proba`` returning one array per task,
        e.g. ``MultiOutputClassifier``, ``RandomForestClassifier``,
        :class:`~sklearn_mtml.MultiTaskNet`).
    combine : {"mean", "weighted", "stack"}, default="mean"
        How per-modality probabilities are combined; see the module documentation.
    final_estimator : classifier or None, default=None
        ``combine="stack"``: fitted per task on the out-of-fold probabilities; None is
        ``LogisticRegression()``.
    cv : int, cross-validation generator or iterable, default=5
        Splits of the out-of-fold predictions (``"weighted"``, ``"stack"``), as in
        ``cross_val_predict`` (stratified for a 1-D ``y``); where that gives a plain
        ``KFold`` (several tasks, regression), an integer means a shuffled one (fixed seed).
    n_jobs : int or None, default=None
        Modalities fitted in parallel (joblib).

    Attributes
    ----------
    estimators_ : dict of str to estimator
        The per-modality estimators, fitted on the rows where their modality is present.
    classes_ : ndarray or list of ndarray
        Classes of the task (1-D ``y``), or one array per task.
    weights_ : ndarray of shape (n_tasks, n_blocks)
        Modality weights per task (``"mean"``: uniform; ``"weighted"``: learned).
    oof_scores_ : ndarray of shape (n_tasks, n_blocks)
        ``"weighted"``: out-of-fold skill of each modality, ``1 - log_loss / log_loss_prior``.
    final_estimators_ : list of estimator
        ``"stack"``: the fitted final estimator of each task.
    block_names_ : list of str
        Blocks seen at fit (``["X"]`` for a plain matrix).
    n_features_in_ : int
        Number of features of a plain 2-D ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_mtml.blocks import ModalityBlocks
    >>> from sklearn_mtml.late_fusion import LateFusionClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 200)
    >>> Xb = ModalityBlocks({"good": y[:, None] + 0.3 * rng.randn(200, 2),
    ...                      "noise": rng.randn(200, 3)})
    >>> clf = LateFusionClassifier(LogisticRegression(), combine="weighted").fit(Xb, y)
    >>> clf.weights_.round(2)
    array([[1., 0.]])
    >>> clf.predict_proba(Xb[:2]).shape
    (2, 2)
    """

    _oof_method = "predict_proba"
    _is_proba = True

    def _check_targets(self, y: Any, n: int, weight: np.ndarray | None) -> np.ndarray:
        if y is None:
            raise ValueError(
                "LateFusionClassifier requires y to be passed, but the target y is None."
            )
        if hasattr(y, "to_numpy"):
            y = y.to_numpy()
        y = self._ravel_single_column(check_array(y, ensure_2d=False, dtype=None,
                                                  input_name="y"))
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_tasks), got shape {y.shape}.")
        for t in range(y.shape[1] if y.ndim == 2 else 0):
            check_classification_targets(_column(y, t))
        if y.ndim == 1:
            check_classification_targets(y)
        if len(y) != n:
            raise ValueError(f"X has {n} samples but y has {len(y)}.")
        Y = y.reshape(n, -1)
        self._y_1d = y.ndim == 1
        classes = [np.unique(_column(Y, t)) for t in range(Y.shape[1])]
        self.classes_ = classes[0] if self._y_1d else classes
        self._classes = classes
        self._prior_ = [
            np.array([np.average(_column(Y, t) == c, weights=weight) for c in cl])
            for t, cl in enumerate(classes)
        ]
        return Y

    @staticmethod
    def _align(proba: np.ndarray, local: np.ndarray, classes: np.ndarray) -> np.ndarray:
        out = np.zeros((proba.shape[0], len(classes)))
        pos = {c: i for i, c in enumerate(classes.tolist())}
        idx = [pos[c] for c in np.asarray(local).tolist()]
        out[:, idx] = proba
        return out

    def _task_preds(self, est: Any, X: Any) -> list[np.ndarray]:
        if not hasattr(est, "predict_proba"):
            raise AttributeError(
                f"{type(est).__name__} has no predict_proba; late fusion of classifiers "
                "combines probabilities."
            )
        proba = est.predict_proba(X)
        T = len(self._classes)
        if T == 1:
            proba = proba[0] if isinstance(proba, list) else proba
            local = est.classes_[0] if isinstance(est.classes_, list) else est.classes_
            return [self._align(np.asarray(proba), local, self._classes[0])]
        if not isinstance(proba, list) or len(proba) != T:
            raise ValueError(
                f"y has {T} tasks but {type(est).__name__}.predict_proba did not return one "
                "array per task; use a multi-output estimator (e.g. MultiOutputClassifier)."
            )
        return [self._align(np.asarray(p), local, cl)
                for p, local, cl in zip(proba, est.classes_, self._classes)]

    def _oof_task_preds(self, oof: Any, y: np.ndarray) -> list[np.ndarray]:
        Y = y.reshape(len(y), -1)
        oof = oof if isinstance(oof, list) else [oof]
        return [self._align(np.asarray(p), np.unique(_column(Y, t)), self._classes[t])
                for t, p in enumerate(oof)]

    def _loss(self, t: int, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
              ) -> float:
        # float32 probabilities (from float32 features) sum to 1 only to float32 precision:
        # renormalise, or log_loss warns that they "do not sum to one" once upcast
        pred = np.clip(pred, 1e-15, 1)
        pred = pred / pred.sum(axis=1, keepdims=True)
        return float(log_loss(y, pred, labels=self._classes[t], sample_weight=weight))

    def _default_final(self) -> Any:
        return LogisticRegression()

    def _final_output(self, t: int, final: Any, meta: np.ndarray) -> np.ndarray:
        return self._align(final.predict_proba(meta), final.classes_, self._classes[t])

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Combined class probabilities.

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays or array-like
            Input with the fitted blocks.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), or list of such arrays
            One array per task for a 2-D ``y``, columns ordered as ``classes_``.
        """
        out = self._combined(X)
        return out[0] if self._y_1d else out

    def predict(self, X: Any) -> np.ndarray:
        """Predict the class of each task.

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays or array-like
            Input with the fitted blocks.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        cols = [cl[np.argmax(p, axis=1)] for p, cl in zip(self._combined(X), self._classes)]
        if self._y_1d:
            return cols[0]
        if len({c.dtype for c in cols}) == 1:
            return np.column_stack(cols)
        out = np.empty((len(cols[0]), len(cols)), dtype=object)  # tasks of mixed label types
        for t, c in enumerate(cols):
            out[:, t] = c
        return out

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy; for several tasks, the mean over tasks of each task's accuracy.

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays or array-like
            Input with the fitted blocks.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
        """
        if self._y_1d:
            return super().score(X, y, sample_weight=sample_weight)
        pred = self.predict(X)
        Y = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y).reshape(len(pred), -1)
        return float(np.mean([
            accuracy_score(Y[:, t].tolist(), pred[:, t].tolist(), sample_weight=sample_weight)
            for t in range(Y.shape[1])
        ]))


class LateFusionRegressor(RegressorMixin, _BaseLateFusion):
    """Late fusion of regressors: one per modality, predictions combined per task.

    Parameters
    ----------
    estimator : regressor or dict of str to regressor
        Cloned for every block, or one per block name; multi-output for a 2-D ``y``.
    combine : {"mean", "weighted", "stack"}, default="mean"
        How per-modality predictions are combined; see the module documentation.
    final_estimator : regressor or None, default=None
        ``combine="stack"``: fitted per task on the out-of-fold predictions; None is
        ``RidgeCV()``.
    cv : int, cross-validation generator or iterable, default=5
        Splits of the out-of-fold predictions (``"weighted"``, ``"stack"``); an integer means
        a shuffled ``KFold`` (fixed seed), so that rows stored in target order still give
        representative folds.
    n_jobs : int or None, default=None
        Modalities fitted in parallel (joblib).

    Attributes
    ----------
    estimators_ : dict of str to estimator
        The per-modality estimators, fitted on the rows where their modality is present.
    weights_ : ndarray of shape (n_tasks, n_blocks)
        Modality weights per task (``"mean"``: uniform; ``"weighted"``: learned).
    oof_scores_ : ndarray of shape (n_tasks, n_blocks)
        ``"weighted"``: out-of-fold R² of each modality.
    final_estimators_ : list of estimator
        ``"stack"``: the fitted final estimator of each task.
    block_names_ : list of str
        Blocks seen at fit (``["X"]`` for a plain matrix).
    n_features_in_ : int
        Number of features of a plain 2-D ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn_mtml.late_fusion import LateFusionRegressor
    >>> rng = np.random.RandomState(0)
    >>> good = rng.randn(200, 2)
    >>> y = good @ [1.0, -2.0]
    >>> reg = LateFusionRegressor(Ridge(), combine="weighted").fit(
    ...     {"good": good, "noise": rng.randn(200, 3)}, y)
    >>> reg.weights_.round(2)
    array([[1., 0.]])
    """

    _oof_method = "predict"
    _is_proba = False

    def _check_targets(self, y: Any, n: int, weight: np.ndarray | None) -> np.ndarray:
        if y is None:
            raise ValueError(
                "LateFusionRegressor requires y to be passed, but the target y is None."
            )
        if hasattr(y, "to_numpy"):
            y = y.to_numpy()
        y = self._ravel_single_column(check_array(y, ensure_2d=False, dtype="numeric",
                                                  input_name="y"))
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_tasks), got shape {y.shape}.")
        if len(y) != n:
            raise ValueError(f"X has {n} samples but y has {len(y)}.")
        Y = y.reshape(n, -1).astype(np.float64)
        self._y_1d = y.ndim == 1
        self._prior_ = [np.array([np.average(Y[:, t], weights=weight)])
                        for t in range(Y.shape[1])]
        return Y

    def _task_preds(self, est: Any, X: Any) -> list[np.ndarray]:
        pred = np.asarray(est.predict(X), dtype=np.float64).reshape(X.shape[0], -1)
        if pred.shape[1] != len(self._prior_):
            raise ValueError(
                f"y has {len(self._prior_)} tasks but {type(est).__name__}.predict returned "
                f"{pred.shape[1]} columns; use a multi-output regressor."
            )
        return [pred[:, t:t + 1] for t in range(pred.shape[1])]

    def _oof_task_preds(self, oof: Any, y: np.ndarray) -> list[np.ndarray]:
        oof = np.asarray(oof, dtype=np.float64).reshape(len(y), -1)
        return [oof[:, t:t + 1] for t in range(oof.shape[1])]

    def _loss(self, t: int, y: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
              ) -> float:
        return float(np.average((y.astype(np.float64) - pred[:, 0]) ** 2, weights=weight))

    def _default_final(self) -> Any:
        return RidgeCV()

    def _final_output(self, t: int, final: Any, meta: np.ndarray) -> np.ndarray:
        return np.asarray(final.predict(meta), dtype=np.float64).ravel()

    def predict(self, X: Any) -> np.ndarray:
        """Predict every task.

        Parameters
        ----------
        X : ModalityBlocks, dict of arrays or array-like
            Input with the fitted blocks.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
        """
        cols = [np.asarray(c).reshape(-1) for c in self._combined(X)]
        return cols[0] if self._y_1d else np.column_stack(cols)
