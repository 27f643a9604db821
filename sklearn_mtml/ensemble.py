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

``blend`` mixes a scikit-learn model into the average, task by task: it is fitted on the same
folds, and each task's share of it is the one that minimises the loss of the out-of-fold
predictions (log-loss for classification, squared error for regression). A task where the
forest (or the linear model) predicts better than the networks leans on it; a task where it
does not keeps the networks. The share is chosen on rows that no member trained on, after
calibrating each part's class probabilities by a temperature chosen on the same rows. On a
block input the shortcuts fit one model per modality, so that a modality missing at predict
time is not read as zeros.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone, is_classifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, check_cv
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, Interval, StrOptions, _num_samples, _safe_indexing
from .blocks import ModalityBlocks
from .estimators import MeanTaskScoreMixin, MultiTaskNet
from .late_fusion import LateFusionClassifier, LateFusionRegressor, sample_weight_params
from .tasks import Task, _ClassificationTask, is_missing

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
                fit_params: dict[str, Any]) -> tuple[Any, list[tuple[type[Warning], str]]]:
    """Fit one member; return it with the warnings it raised (``(category, message)``).

    The ensemble warns once for what every member warns about (a task kind inferred from
    its column, ...), in this process even when the member trained in another.
    """
    prefix = _param_prefix(estimator)
    member = clone(estimator).set_params(**{f"{prefix}train_split": FoldSplit(valid),
                                            f"{prefix}random_state": seed})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        member.fit(X, y, **fit_params)
    return member, [(w.category, str(w.message)) for w in caught]


#: The ``blend`` shortcuts: the scikit-learn model a user would try first, per kind of task.
BLEND_SHORTCUTS = ("forest", "boosting", "linear")
#: The networks' shares tried when choosing a task's blend (0: the blended model alone),
#: rounded so that ``blend_weights_`` reads 0.15, not 0.15000000000000002.
_SHARES = np.round(np.linspace(0.0, 1.0, 21), 2)


def _base_model(name: str, classification: bool, seed: int, sparse: bool) -> Any:
    """The model a ``blend`` shortcut names, for a classification or a regression task.

    A sparse ``X`` is scaled without centring (which would densify it).
    """
    if name == "forest":
        return (RandomForestClassifier if classification else RandomForestRegressor)(
            random_state=seed)
    if name == "boosting":
        return (HistGradientBoostingClassifier if classification
                else HistGradientBoostingRegressor)(random_state=seed)
    final = (LogisticRegression(max_iter=1000) if classification
             else RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return make_pipeline(StandardScaler(with_mean=not sparse), final)


def _shortcut_model(name: str, classification: bool, seed: int, X: Any) -> Any:
    """The shortcut's model for the input it reads: one per block of a block input."""
    if not isinstance(X, ModalityBlocks):
        return _base_model(name, classification, seed, sp.issparse(X))
    late = LateFusionClassifier if classification else LateFusionRegressor
    return late({k: _base_model(name, classification, seed, sp.issparse(v))
                 for k, v in X.blocks.items()}, combine="mean")


def _is_block_input(X: Any) -> bool:
    """A :class:`ModalityBlocks` or a dict of blocks (a DOK matrix is a dict, not blocks)."""
    return isinstance(X, ModalityBlocks) or (isinstance(X, Mapping) and not sp.issparse(X))


def _numeric_problem(X: Any, shortcut: str) -> Exception | None:
    """Why a shortcut's model cannot read ``X`` as a numeric 2-D matrix (None: it can)."""
    if sp.issparse(X):
        return None
    try:
        values = np.asarray(X)
        if values.dtype.kind not in "biufc":  # complex: left to the models to reject
            values = values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        return TypeError(
            f"blend={shortcut!r} fits a scikit-learn model on X itself, which needs a numeric "
            f"2-D X or a block input (ModalityBlocks, a dict of arrays), but X "
            f"({type(X).__name__}) does not convert to numbers ({exc}). Wrap the network in a "
            "pipeline with its feature steps (the shortcut then reads their output), or pass "
            "a scikit-learn estimator with its own feature steps, e.g. "
            "blend=make_pipeline(ModalityFusion(..., output='concat'), "
            "RandomForestClassifier()), or a dict of them per task."
        )
    if values.ndim != 2:
        return ValueError(f"blend={shortcut!r} needs a 2-D X, a block input or a pipeline "
                          f"with feature steps; got {values.ndim} dimension(s).")
    return None


def _feature_blocks(X: Any, shortcut: str) -> ModalityBlocks:
    """The blocks of features a shortcut reads: every block but those of token ids."""
    Xb = X if isinstance(X, ModalityBlocks) else ModalityBlocks.from_dict(X)
    keep = [k for k in Xb.names if k not in Xb.vocab_sizes]
    if not keep:
        raise ValueError(
            f"blend={shortcut!r} fits one model per block of features, but every block "
            f"({Xb.names}) holds token ids, which the networks embed; pass a scikit-learn "
            "estimator with its own feature steps as blend instead."
        )
    return ModalityBlocks({k: Xb.blocks[k] for k in keep},
                          masks={k: Xb.masks[k] for k in keep})


def _shortcut_input(X: Any, shortcut: str) -> Any:
    """What a shortcut's model reads of ``X``: the feature blocks of a block input, or X."""
    return _feature_blocks(X, shortcut) if _is_block_input(X) else X


def _available(X: Any) -> np.ndarray:
    """Rows a blended model can predict: those with a block present (all rows of a matrix)."""
    if isinstance(X, ModalityBlocks):
        return np.asarray(X.presence.any(axis=1))
    return np.ones(_num_rows(X), dtype=bool)


def _take_rows(X: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` of any input :class:`MultiTaskNet` or a pipeline takes."""
    if sp.issparse(X):  # first: a DOK matrix is also a dict
        return X.tocsr()[rows]  # COO, DIA, ... do not index rows
    if isinstance(X, Mapping):
        return {k: _safe_indexing(v, rows) for k, v in X.items()}
    if not (hasattr(X, "shape") or isinstance(X, list)):  # an array-like: __array__ only
        X = np.asarray(X)
    return _safe_indexing(X, rows)


def _has_feature_steps(estimator: Any) -> bool:
    return isinstance(estimator, Pipeline) and len(estimator) > 1


def _member_features(member: Any, X: Any) -> Any:
    """What a member's network reads of ``X``: the output of its feature steps."""
    return member[:-1].transform(X) if _has_feature_steps(member) else X


def _member_output(member: Any, X: Any) -> list[np.ndarray]:
    """A member's raw head outputs (one array per task) on ``X``, through its feature steps."""
    return _final_net(member).forward_outputs(_member_features(member, X))


def _task_prediction(task: Task, output: np.ndarray) -> np.ndarray:
    """What the ensemble averages for a task: class probabilities, or decoded values."""
    if isinstance(task, _ClassificationTask):
        return task.predict_proba(output)
    values = task.decode(output)
    if values.dtype.kind not in "biuf":
        raise TypeError(
            f"KFoldEnsemble averages numeric predictions, but task {task.name!r} "
            f"({task.kind}) predicts {values.dtype}."
        )
    return values.astype(np.float64)


def _model_prediction(task: Task, model: Any, X: Any) -> np.ndarray:
    """A blended model's prediction in the ensemble's terms (probabilities over all classes).

    NaN on the rows the model cannot predict (no block of its input present): :func:`_mix`
    gives them the networks alone, whatever the share.
    """
    rows = _available(X)
    classes = task.classes_.size if isinstance(task, _ClassificationTask) else 0
    out = np.full((len(rows), classes) if classes else len(rows), np.nan)
    if not rows.any():
        return out
    X_rows = X if rows.all() else _take_rows(X, np.flatnonzero(rows))
    if not classes:
        out[rows] = np.asarray(model.predict(X_rows), dtype=np.float64).ravel()
        return out
    proba = np.zeros((int(rows.sum()), classes))
    proba[:, np.asarray(model.classes_, dtype=np.intp)] = model.predict_proba(X_rows)
    out[rows] = proba
    return out


def _mix(share: float, networks: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``share * networks + (1 - share) * model``; the networks alone where model is NaN."""
    mixed = share * networks + (1 - share) * model
    absent = np.isnan(model) if model.ndim == 1 else np.isnan(model).any(axis=1)
    mixed[absent] = networks[absent]
    return mixed


#: The temperatures tried when calibrating a part's probabilities (below 1: sharper).
_TEMPERATURES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0,
                 5.0)


def _calibrate(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities: ``p ** (1 / T)``, renormalised (NaN rows stay)."""
    if temperature == 1.0 or proba.ndim == 1:  # values of a regression task: as they are
        return proba
    scaled = np.clip(proba, 1e-12, 1.0) ** (1.0 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def _fit_temperature(task: Task, target: np.ndarray, proba: np.ndarray,
                     weight: np.ndarray | None) -> float:
    """The temperature in ``_TEMPERATURES`` whose probabilities have the least log-loss.

    1 for a regression task, and on a tie. A forest's probabilities, averaged over trees
    (and over modalities), are soft: uncalibrated, their log-loss would hide a better
    accuracy from the choice of the share.
    """
    if not isinstance(task, _ClassificationTask):
        return 1.0
    rows = ~np.isnan(proba).any(axis=1)
    if not rows.any():
        return 1.0
    w = None if weight is None else weight[rows]
    best, chosen = _loss(task, target[rows], proba[rows], w), 1.0
    for t in _TEMPERATURES:
        loss = _loss(task, target[rows], _calibrate(proba[rows], t), w)
        if loss < best - 1e-12:
            best, chosen = loss, t
    return chosen


def _loss(task: Task, target: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
          ) -> float:
    """Log-loss of probabilities (targets: class codes) or squared error of values."""
    if isinstance(task, _ClassificationTask):
        p = np.clip(pred[np.arange(len(target)), target.astype(np.intp)], 1e-15, 1.0)
        return float(np.average(-np.log(p), weights=weight))
    return float(np.average((pred - target) ** 2, weights=weight))


def _blend_target(task: Task, column: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """What a blended model learns: class indices into ``classes_``, or the values."""
    if task.is_classification:
        return task.encode(column)[0].astype(np.intp)
    values = np.zeros(len(column))
    values[labelled] = np.asarray(column[labelled], dtype=np.float64)
    return values


def _choose_share(task: Task, target: np.ndarray, networks: np.ndarray, model: np.ndarray,
                  weight: np.ndarray | None) -> float:
    """The networks' share in ``_SHARES`` whose mix has the least loss (a tie: the larger)."""
    best, share = np.inf, 1.0
    for s in _SHARES[::-1]:
        loss = _loss(task, target, _mix(float(s), networks, model), weight)
        if loss < best - 1e-12:
            best, share = loss, float(s)
    return share


def _score(task: Task, y_true: np.ndarray, pred: np.ndarray, weight: np.ndarray | None
           ) -> float:
    """Accuracy of averaged probabilities or R² of averaged values."""
    if isinstance(task, _ClassificationTask):
        pred = task.classes_[np.argmax(pred, axis=1)]
    return task.score(y_true, pred, sample_weight=weight)


def _fit_model(model: Any, X: Any, target: np.ndarray, rows: np.ndarray,
               weight: np.ndarray | None, where: str) -> Any:
    """Fit a clone of a blended model on ``rows``; a failure says which task and fold."""
    model = clone(model)
    params = sample_weight_params(model, None if weight is None else weight[rows])
    try:
        return model.fit(_take_rows(X, rows), target[rows], **params)
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"KFoldEnsemble: while fitting the blended {type(model).__name__} "
                         f"{where}.")
        raise


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
        Seeds the folds of an int ``cv``, each member's network (member ``i`` gets the
        ``i``-th draw) and the models of a ``blend`` shortcut. An int gives the same
        ensemble on every fit.
    blend : {"forest", "boosting", "linear"}, estimator, dict or None, default=None
        A scikit-learn model mixed into each task's average, with a share chosen from the
        out-of-fold predictions. For every task it is fitted on each split's training rows
        and predicts that split's validation rows, as the members do; the network's share
        ``w`` in ``0, 0.05, ..., 1`` that minimises the loss of ``w * networks + (1 - w) *
        model`` on those rows (log-loss of the probabilities, squared error of the values,
        weighted by ``sample_weight``) is kept, and the model is refitted on all the
        labelled rows. ``None``: the networks alone. For a classification task, each part's
        probabilities are first calibrated by a temperature chosen on the same rows
        (``p ** (1 / T)``, renormalised; ``T`` in ``0.02 ... 5``, the least log-loss): a
        forest's votes are soft, and their log-loss would otherwise hide a better accuracy.

        - ``"forest"``: ``RandomForestClassifier`` / ``RandomForestRegressor``;
          ``"boosting"``: ``HistGradientBoostingClassifier`` / ``...Regressor``;
          ``"linear"``: ``StandardScaler`` + ``LogisticRegression`` / ``RidgeCV`` (alphas
          ``1e-3 ... 1e3``). They read a numeric 2-D ``X`` as it is. On a block input
          (:class:`~sklearn_mtml.ModalityBlocks`, a dict of arrays) they fit one model per
          block of features on the rows where it is present, averaged over the blocks each
          row has (:class:`~sklearn_mtml.LateFusionClassifier` /
          :class:`~sklearn_mtml.LateFusionRegressor`, ``combine="mean"``); token-id blocks
          are left to the networks, and a row with none of the blocks keeps the networks
          alone. Any other ``X`` is read through the feature steps of a pipeline
          ``estimator`` (those of the first member), by the same two rules.
        - An estimator (e.g. a pipeline with its own feature steps): cloned for every task;
          it gets the ``X`` given to :meth:`fit`, and the task's labels (class indices into
          ``classes_`` for a classification task, which needs ``predict_proba``; numbers for
          a regression task, which needs a regressor).
        - A dict: task name → any of the above, or ``None`` for a task not blended.

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
    blend_estimators_ : dict of str to estimator
        With ``blend``: the blended model of each blended task, fitted on all its labelled
        rows.
    blend_weights_ : dict of str to float
        With ``blend``: the networks' share ``w`` of each blended task (1: the networks
        alone, 0: the model alone).
    blend_temperatures_ : dict of str to dict of str to float
        With ``blend``: for each blended task, the temperature of the ``"networks"``'
        average and of the ``"model"``'s probabilities, applied before they are mixed
        (below 1: sharper; 1 for a regression task, and where calibration does not lower
        the log-loss). A temperature does not change which class a part predicts.
    oof_scores_ : dict of str to dict of str to float
        With ``blend``: for each blended task, the accuracy or R² of the out-of-fold
        predictions of ``"networks"``, ``"model"`` and ``"blend"`` (the chosen mix). The
        share was chosen on these rows, so ``"blend"`` is an optimistic estimate.

    See Also
    --------
    sklearn_mtml.MultiTaskNet : the network each member is.
    sklearn.ensemble.BaggingClassifier : bootstrap bagging, without early stopping on the
        left-out rows.

    Notes
    -----
    Every member must see a label of every task among its training rows; a task labelled in
    a handful of rows may need fewer folds. The members' validation rows are not a test set:
    they chose each member's epoch (which slightly favours the networks when ``blend``
    chooses its shares on the same rows).

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
    >>> blended = KFoldEnsemble(MultiTaskNet(tasks=["binary", "regression"]), cv=3,
    ...                         blend="linear", random_state=0).fit(X, Y)
    >>> sorted(blended.blend_weights_)
    ['task_0', 'task_1']
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "blend": [None, StrOptions(set(BLEND_SHORTCUTS)), HasMethods(["fit", "predict"]),
                  dict],
    }

    def __init__(self, estimator: Any = None, *, cv: Any = 5, n_jobs: int | None = None,
                 random_state: Any = None, blend: Any = None):
        self.estimator = estimator
        self.cv = cv
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.blend = blend

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
            Row weights, passed to every member's network, to the blended models and to
            the loss that chooses their shares.
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
        names = _final_net(template)._validate_targets(y)[0]  # a clear error before any fit
        blend, reads_features = self._blend_spec(names, X)
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
        blend_seed = int(rng.randint(np.iinfo(np.int32).max))  # after the members' draws
        if sample_weight is not None:
            fit_params = {**fit_params, f"{_param_prefix(template)}sample_weight": sample_weight}
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(template, X, y, valid, int(seed), fit_params)
            for valid, seed in zip(splits, seeds)
        )
        self.estimators_ = [member for member, _ in fitted]
        for category, message in dict.fromkeys(w for _, caught in fitted for w in caught):
            warnings.warn(message, category, stacklevel=3)  # the caller of fit (decorated)
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
        self._blend_reads_features_ = reads_features  # prediction reads the same
        X_short = self._shortcut_reads(blend, X)
        models = self._blend_models(blend, self._net().tasks_, blend_seed, X_short)
        self._blend_spec_ = blend
        self._fit_blend(models, X, X_short, y, sample_weight)
        return self

    def _shortcut_reads(self, blend: dict[str, Any], X: Any) -> Any:
        """What the ``blend`` shortcuts read of ``X`` (None without a shortcut).

        ``X`` itself when it is numeric or blocks, else the first member's features of it
        (``_blend_reads_features_``).
        """
        shortcuts = sorted({m for m in blend.values() if isinstance(m, str)})
        if not shortcuts:
            return None
        if not self._blend_reads_features_:
            return _shortcut_input(X, shortcuts[0])
        source = _member_features(self.estimators_[0], X)
        problem = None if _is_block_input(source) else _numeric_problem(source, shortcuts[0])
        if problem is not None:  # the pipeline's feature steps give neither
            raise problem
        return _shortcut_input(source, shortcuts[0])

    def _blend_spec(self, names: list[str], X: Any) -> tuple[dict[str, Any], bool]:
        """``blend`` per task name (tasks not blended left out), checked before any fit.

        Also whether the shortcuts must read the members' features, ``X`` being neither
        numeric nor blocks (``X`` is converted once to find out).
        """
        if self.blend is None:
            return {}, False
        if isinstance(self.blend, Mapping):
            unknown = sorted(set(map(str, self.blend)) - set(names))
            if unknown:
                raise ValueError(f"blend names tasks {unknown} that y does not have; the "
                                 f"tasks are {names}.")
            chosen = {str(k): v for k, v in self.blend.items() if v is not None}
        else:
            chosen = dict.fromkeys(names, self.blend)
        for name, model in chosen.items():
            if isinstance(model, str):
                if model not in BLEND_SHORTCUTS:
                    raise ValueError(f"blend of task {name!r} is {model!r}; expected one of "
                                     f"{list(BLEND_SHORTCUTS)}, an estimator or None.")
            elif not (hasattr(model, "fit") and hasattr(model, "predict")):
                raise TypeError(f"blend of task {name!r} must be a scikit-learn estimator, one "
                                f"of {list(BLEND_SHORTCUTS)} or None; got "
                                f"{type(model).__name__}.")
        shortcuts = sorted({m for m in chosen.values() if isinstance(m, str)})
        if not shortcuts or _is_block_input(X):
            return chosen, False
        problem = _numeric_problem(X, shortcuts[0])
        if problem is not None and not _has_feature_steps(self._template()):
            raise problem
        return chosen, problem is not None

    @staticmethod
    def _blend_models(spec: dict[str, Any], tasks: Mapping[str, Task], seed: int,
                      X_short: Any) -> dict[str, Any]:
        """The unfitted model of each blended task, checked against the task's kind.

        ``X_short`` is what the shortcuts read (their model is built for it).
        """
        models = {}
        for name, model in spec.items():
            task = tasks[name]
            if isinstance(model, str):
                models[name] = _shortcut_model(model, task.is_classification, seed, X_short)
            elif task.is_classification and not hasattr(model, "predict_proba"):
                raise TypeError(f"Task {name!r} is a {task.kind} task: its blended model must "
                                "have predict_proba (the ensemble averages probabilities); "
                                f"{type(model).__name__} has none.")
            elif not task.is_classification and is_classifier(model):
                raise TypeError(f"Task {name!r} is a regression task, but its blended model "
                                f"{type(model).__name__} is a classifier; pass a regressor.")
            else:
                models[name] = model
        return models

    def _fit_blend(self, models: dict[str, Any], X: Any, X_short: Any, y: Any,
                   sample_weight: Any) -> None:
        """Fit the blended models per fold and on all rows; choose each task's share.

        A shortcut's model reads ``X_short``, an estimator ``X``.
        """
        for stale in ("blend_estimators_", "blend_weights_", "blend_temperatures_",
                      "oof_scores_"):
            self.__dict__.pop(stale, None)
        net = self._net()
        if not models:
            return
        _, cols, _ = net._validate_targets(y, fitted=True)
        n = len(cols[0])
        weight = None if sample_weight is None else np.asarray(sample_weight, np.float64)
        column = dict(zip(net.task_names_, cols))
        labelled = {name: ~is_missing(column[name]) for name in models}
        targets = {name: _blend_target(net.tasks_[name], column[name], labelled[name])
                   for name in models}
        inputs = {name: X_short if isinstance(self._blend_spec_[name], str) else X
                  for name in models}
        usable = {name: labelled[name] & _available(inputs[name]) for name in models}
        folds = self.validation_indices_
        jobs: list[tuple[str, int | None, np.ndarray]] = [
            (name, k, np.flatnonzero(usable[name] & ~np.isin(np.arange(n), valid)))
            for name in models for k, valid in enumerate(folds)]
        jobs += [(name, None, np.flatnonzero(usable[name])) for name in models]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_model)(models[name], inputs[name], targets[name], rows, weight,
                                f"of task {name!r} on " + ("all rows" if k is None
                                                           else f"the rows of split {k}"))
            for name, k, rows in jobs
        )
        fold_models: dict[tuple[str, int | None], Any] = {
            (name, k): m for (name, k, _), m in zip(jobs, fitted)}
        X_valid = [_take_rows(X, valid) for valid in folds]  # each split's validation rows
        short_valid = (None if X_short is None
                       else [_take_rows(X_short, valid) for valid in folds])
        outputs = [_member_output(m, X_k) for m, X_k in zip(self.estimators_, X_valid)]
        index = {name: i for i, name in enumerate(net.task_names_)}
        self.blend_estimators_, self.blend_weights_, self.oof_scores_ = {}, {}, {}
        self.blend_temperatures_ = {}
        for name in models:
            task, lab = net.tasks_[name], labelled[name]
            shape = ((n, task.classes_.size) if isinstance(task, _ClassificationTask)
                     else (n,))
            oof_net, oof_model, count = np.zeros(shape), np.zeros(shape), np.zeros(n)
            for k, valid in enumerate(folds):
                keep = lab[valid]
                rows = valid[keep]
                if rows.size:
                    pred_net = _task_prediction(task, outputs[k][index[name]])
                    oof_net[rows] += pred_net[keep]
                    X_k = (short_valid[k] if short_valid is not None
                           and isinstance(self._blend_spec_[name], str) else X_valid[k])
                    oof_model[rows] += _model_prediction(task, fold_models[name, k],
                                                         X_k)[keep]
                    count[rows] += 1
            seen = count > 0
            per_row = count[seen].reshape((-1,) + (1,) * (len(shape) - 1))
            pn, pm = oof_net[seen] / per_row, oof_model[seen] / per_row
            target = targets[name][seen]
            w = None if weight is None else weight[seen]
            temperature = {part: _fit_temperature(task, target, pred, w)
                           for part, pred in (("networks", pn), ("model", pm))}
            pn_cal = _calibrate(pn, temperature["networks"])
            pm_cal = _calibrate(pm, temperature["model"])
            share = _choose_share(task, target, pn_cal, pm_cal, w)
            self.blend_estimators_[name] = fold_models[name, None]
            self.blend_weights_[name] = share
            self.blend_temperatures_[name] = temperature
            self.oof_scores_[name] = {
                label: _score(task, column[name][seen], pred, w)
                for label, pred in (("networks", pn), ("model", _mix(0.0, pn, pm)),
                                    ("blend", _mix(share, pn_cal, pm_cal)))
            }

    def _net(self) -> MultiTaskNet:
        """The first member's network: tasks, classes and output layout of every member."""
        check_is_fitted(self, "estimators_")
        return _final_net(self.estimators_[0])

    def _average(self, X: Any) -> list[tuple[Task, np.ndarray]]:
        """``(task, average)`` per task: the members' mean probabilities or values.

        A blended task mixes in its model's prediction with the share chosen at fit.
        """
        net = self._net()
        features = [_member_features(member, X) for member in self.estimators_]
        outputs = [_final_net(m).forward_outputs(f)
                   for m, f in zip(self.estimators_, features)]
        models = getattr(self, "blend_estimators_", {})
        shortcut_X = None
        averaged: list[tuple[Task, np.ndarray]] = []
        for i, (name, task) in enumerate(net.tasks_.items()):
            avg = np.mean([_task_prediction(task, out[i]) for out in outputs], axis=0)
            if name not in models:
                averaged.append((task, avg))
                continue
            share, temperature = self.blend_weights_[name], self.blend_temperatures_[name]
            avg = _calibrate(avg, temperature["networks"])
            if share < 1.0:
                X_model = X
                if isinstance(self._blend_spec_[name], str):  # a shortcut: its input
                    if shortcut_X is None:
                        source = features[0] if self._blend_reads_features_ else X
                        shortcut_X = _shortcut_input(source, self._blend_spec_[name])
                    X_model = shortcut_X
                model = _calibrate(_model_prediction(task, models[name], X_model),
                                   temperature["model"])
                avg = _mix(share, avg, model)
            averaged.append((task, avg))
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
