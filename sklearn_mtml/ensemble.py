"""A cross-fitted ensemble of networks: each trained on all folds but one, stopped on that one.

:class:`KFoldEnsemble` splits the training rows into ``cv`` folds and fits one copy of a
:class:`~sklearn_mtml.MultiTaskNet` (or of a pipeline ending in one) per fold: the copy trains
on the other folds and early-stops on its own, so that every row serves once for stopping and
``cv - 1`` times for training, and no row is left out of training altogether (a single net
holds back its ``validation_fraction`` for good). Predictions average the copies: the class
probabilities of a classification task, the predicted values of a regression task.

On small data this does two things a single net cannot. Early stopping on one small split is
noisy (30 validation rows choose the epoch of a 300-row data set); the ensemble's members each
stop on a different fold and their errors average out. And the average of several networks
has less variance than any of them, which is what separates a network from a random forest on
a few hundred rows. The cost is ``cv`` fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.model_selection import KFold, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, Interval, _num_samples
from .estimators import MeanTaskScoreMixin, MultiTaskNet
from .tasks import Task, _ClassificationTask

__all__ = ["KFoldEnsemble"]


class FoldSplit:
    """A ``train_split`` for :class:`~sklearn_mtml.MultiTaskNet`: fixed validation rows.

    Parameters
    ----------
    valid : array-like of int
        Indices of the validation rows among the rows passed to ``fit``; the others train.
    """

    def __init__(self, valid: Any):
        self.valid = np.asarray(valid, dtype=np.intp)

    def __call__(self, dataset: Any, y: Any = None) -> tuple[Any, Any]:
        """Split ``dataset`` into the training and the validation rows (two ``Subset``)."""
        from torch.utils.data import Subset

        is_valid = np.zeros(len(dataset), dtype=bool)
        is_valid[self.valid] = True
        return (Subset(dataset, np.flatnonzero(~is_valid).tolist()),
                Subset(dataset, np.flatnonzero(is_valid).tolist()))

    def __repr__(self) -> str:
        return f"FoldSplit(<{self.valid.size} validation rows>)"


def _final_net(estimator: Any) -> MultiTaskNet:
    """The :class:`MultiTaskNet` of ``estimator`` (itself, or a pipeline's last step)."""
    net = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not isinstance(net, MultiTaskNet):
        raise TypeError(
            "KFoldEnsemble needs a MultiTaskNet or a Pipeline whose last step is one, got "
            f"{type(net).__name__}."
        )
    return net


def _param_prefix(estimator: Any) -> str:
    """Prefix of the network's parameters within ``estimator`` (``"<step>__"`` for a pipeline)."""
    return f"{estimator.steps[-1][0]}__" if isinstance(estimator, Pipeline) else ""


def _fit_member(estimator: Any, X: Any, y: Any, valid: np.ndarray, seed: int,
                fit_params: dict[str, Any]) -> Any:
    prefix = _param_prefix(estimator)
    member = clone(estimator).set_params(**{f"{prefix}train_split": FoldSplit(valid),
                                            f"{prefix}random_state": seed})
    return member.fit(X, y, **fit_params)


class KFoldEnsemble(MeanTaskScoreMixin, MetaEstimatorMixin, BaseEstimator):
    """Cross-fitted ensemble of multi-task networks, one per fold, each stopped on its fold.

    Splits the training rows with ``cv``; for each split, a clone of ``estimator`` trains on
    the training rows and early-stops on the held-out ones (its ``train_split`` is set to
    them), with its own seed. Predictions average the members: class probabilities for
    classification tasks (the predicted label is the most probable class of the average),
    values for regression tasks. The number of fits is the number of splits.

    Parameters
    ----------
    estimator : MultiTaskNet or Pipeline ending in one, default=None
        The model to replicate; ``None`` is ``MultiTaskNet()``. A pipeline's feature steps are
        refitted by each member on all the rows it receives (as a single pipeline would be).
        The network's ``train_split`` and ``random_state`` are set per member.
    cv : int or cross-validation splitter, default=5
        An int is the number of folds of a shuffled :class:`~sklearn.model_selection.KFold`
        (seeded by ``random_state``); a splitter (``GroupKFold``, ``StratifiedKFold``, ...) is
        used as given, with the ``groups`` passed to :meth:`fit`. Each split's test rows are
        its member's validation rows.
    n_jobs : int, default=None
        Members fitted in parallel (joblib); ``None`` is 1.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds of an int ``cv`` and each member's network (member ``i`` gets the
        ``i``-th draw). An int gives the same ensemble on every fit.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members, in split order.
    validation_indices_ : list of ndarray
        Each member's validation rows (indices into the ``X`` given to :meth:`fit`).
    task_names_ : list of str
        Task names, in the order of :meth:`predict`'s columns.
    classes_ : ndarray or list of ndarray
        Class labels of the classification tasks, as :class:`MultiTaskNet` gives them.
    n_features_in_ : int
        Number of input columns (when ``X`` is a 2-D array).
    feature_names_in_ : ndarray of str
        Input column names (when ``X`` is a DataFrame with string column names).

    See Also
    --------
    sklearn_mtml.MultiTaskNet : the network each member is.
    sklearn.ensemble.BaggingClassifier : bootstrap bagging, without early stopping on the
        left-out rows.

    Notes
    -----
    Every member must see a label of every task among its training rows; a task labelled in
    a handful of rows may need fewer folds. The members' validation rows are not a test set:
    they chose each member's epoch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import KFoldEnsemble, MultiTaskNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5)).astype(np.float32)
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1] + 0.1 * rng.normal(size=300)])
    >>> model = KFoldEnsemble(MultiTaskNet(tasks=["binary", "regression"]), cv=3,
    ...                       random_state=0).fit(X, Y)
    >>> model.predict(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator: Any = None, *, cv: Any = 5, n_jobs: int | None = None,
                 random_state: Any = None):
        self.estimator = estimator
        self.cv = cv
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _template(self) -> Any:
        return MultiTaskNet() if self.estimator is None else self.estimator

    def __sklearn_tags__(self):  # noqa: D105
        return get_tags(self._template())  # a fresh Tags object: the network's

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, groups: Any = None,
            **fit_params: Any) -> KFoldEnsemble:
        """Fit one member per split of the rows.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or ModalityBlocks
            Input, as the wrapped estimator takes it.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks), or DataFrame
            Targets; ``NaN``/``None`` marks a missing label.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, passed to every member's network.
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` splitter (``GroupKFold``): members then
            stop on groups they did not train on.
        **fit_params : dict
            Passed to every member's ``fit``.

        Returns
        -------
        self : KFoldEnsemble
        """
        template = self._template()
        _final_net(template)  # a clear error before any fit
        n = _num_rows(X)
        cv = self.cv
        rng = check_random_state(self.random_state)
        if isinstance(cv, Integral):
            cv = KFold(int(cv), shuffle=True, random_state=rng.randint(np.iinfo(np.int32).max))
            y_split = None
        else:  # the user's splitter sees y (StratifiedKFold needs it)
            cv, y_split = check_cv(cv), y
        splits = [np.asarray(valid) for _, valid in cv.split(np.zeros((n, 1)), y_split, groups)]
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(splits))
        if sample_weight is not None:
            fit_params = {**fit_params, f"{_param_prefix(template)}sample_weight": sample_weight}
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(template, X, y, valid, int(seed), fit_params)
            for valid, seed in zip(splits, seeds)
        )
        self.validation_indices_ = splits
        for stale in ("classes_", "n_features_in_", "feature_names_in_"):  # from a former fit
            self.__dict__.pop(stale, None)
        first = self.estimators_[0]
        net = _final_net(first)
        self.task_names_ = list(net.task_names_)
        if hasattr(net, "classes_"):
            self.classes_ = net.classes_
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(first, name):
                setattr(self, name, getattr(first, name))
        return self

    def _net(self) -> MultiTaskNet:
        """The first member's network: tasks, classes and output layout of every member."""
        check_is_fitted(self, "estimators_")
        return _final_net(self.estimators_[0])

    def _member_outputs(self, X: Any) -> list[list[np.ndarray]]:
        """Each member's raw head outputs (one array per task) on ``X``."""
        check_is_fitted(self, "estimators_")
        outputs = []
        for member in self.estimators_:
            Xt = member[:-1].transform(X) if isinstance(member, Pipeline) and len(member) > 1 else X
            outputs.append(_final_net(member).forward_outputs(Xt))
        return outputs

    def _average(self, X: Any) -> list[tuple[Task, np.ndarray]]:
        """``(task, average)`` per task: the members' mean probabilities or values."""
        outputs = self._member_outputs(X)
        averaged: list[tuple[Task, np.ndarray]] = []
        for i, task in enumerate(self._net().tasks_.values()):
            if isinstance(task, _ClassificationTask):
                averaged.append((task, np.mean([task.predict_proba(out[i]) for out in outputs],
                                               axis=0)))
                continue
            values = [task.decode(out[i]) for out in outputs]
            if not all(v.dtype.kind in "biuf" for v in values):
                raise TypeError(
                    f"KFoldEnsemble averages numeric predictions, but task {task.name!r} "
                    f"({task.kind}) predicts {values[0].dtype}."
                )
            averaged.append((task, np.mean(values, axis=0)))
        return averaged

    def predict(self, X: Any) -> np.ndarray:
        """Predict every task from the members' average.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or ModalityBlocks
            Input, as at fit.

        Returns
        -------
        Y_pred : ndarray of shape (n_samples, n_tasks), or (n_samples,) after a 1-D fit
            As :meth:`MultiTaskNet.predict`: the most probable class of the averaged
            probabilities, the averaged value of a regression task.
        """
        cols = [task.classes_[np.argmax(avg, axis=1)] if isinstance(task, _ClassificationTask)
                else avg for task, avg in self._average(X)]
        return self._net()._stack_predictions(cols)

    def _has_classification_task(self) -> bool:
        if not hasattr(self, "estimators_"):
            return True  # let predict_proba raise NotFittedError
        return any(t.is_classification for t in self._net().tasks_.values())

    @available_if(_has_classification_task)
    def predict_proba(self, X: Any) -> list[np.ndarray] | np.ndarray:
        """The members' mean class probabilities of every classification task.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or ModalityBlocks
            Input, as at fit.

        Returns
        -------
        proba : list of ndarray, or ndarray after a 1-D fit
            One ``(n_samples, n_classes)`` array per classification task, in task order,
            columns ordered as ``classes_``.
        """
        probas = [avg for task, avg in self._average(X) if task.is_classification]
        return probas[0] if self._net()._y_1d else probas

    def score_tasks(self, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        """Score each task: accuracy for classification, R² for regression.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or ModalityBlocks
            Input.
        y : array-like or DataFrame
            True targets, one column per task; rows with a missing label are skipped.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in every task's score.

        Returns
        -------
        scores : dict of str to float
            Task name → score.
        """
        return self._net()._score_predictions(self.predict(X), y, sample_weight)


def _num_rows(X: Any) -> int:
    """Number of rows of any input :class:`MultiTaskNet` or a pipeline takes."""
    if getattr(X, "shape", None):  # arrays, sparse matrices and arrays, ModalityBlocks
        return int(X.shape[0])
    if isinstance(X, Mapping):  # a dict of blocks
        if not X:
            raise ValueError("X is an empty dict; expected one array per input block.")
        return _num_samples(next(iter(X.values())))
    return _num_samples(X)
