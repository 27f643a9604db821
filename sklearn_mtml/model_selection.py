"""Model selection for :class:`~sklearn_mtml.MultiTaskNet`: a loss-weight search in one pass.

:class:`LossWeightSearchCV` has the interface of scikit-learn's ``GridSearchCV`` but trains
all the loss-weight candidates of a fold as **one stacked model**: the fold's data are
validated, encoded and scaled once, one network per candidate is built with exactly the
initialisation a separate fit would use, and the networks are stacked
(``torch.func.stack_module_state``) and trained together with ``torch.func.vmap`` on the same
batches, each with its own loss weights, learning rate and early stopping. Every candidate
then becomes an ordinary fitted ``MultiTaskNet`` (with its history), scored as
``GridSearchCV`` would score it.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import time
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from traceback import format_exc
from typing import Any, cast

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import indexable
from skorch.callbacks import EpochTimer, PrintLog
from torch.func import functional_call, stack_module_state, vmap

from ._compat import (
    BaseSearchCV,
    HasMethods,
    StrOptions,
    _check_method_params,
    _fit_and_score,
    _fit_context,
    _insert_error_scores,
    _num_samples,
    _safe_split,
    _score,
    _warn_or_raise_about_fit_failures,
)
from ._rows import DeviceRows, batch_spans
from ._task_epochs import TaskEpochs, row_losses
from ._training import cosine_factor, fit_threads, torch_threads
from .callbacks import EarlyStopping, TaskScores, TaskWeights
from .estimators import _LAYOUT_STATE, MultiTaskLoss, MultiTaskNet
from .weighting import FixedWeighting

__all__ = ["LossWeightSearchCV"]

#: MultiTaskNet parameters whose candidates share one stacked pass: each stacked network
#: has its own loss weights and its own optimizer settings (a parameter group per setting).
BATCHED_PARAMS = ("loss_weights", "lr", "optimizer__weight_decay")
#: Element-wise optimizers: one step over the stacked parameters is one step per candidate.
_ELEMENTWISE_OPTIMIZERS = (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD)
#: MultiTaskNet methods that the stacked pass reimplements: a subclass overriding one of
#: them is fitted candidate by candidate.
_TRAINING_HOOKS = ("fit", "_train", "train_step", "train_step_single", "validation_step",
                   "run_single_epoch", "get_iterator", "infer", "initialize_module",
                   "initialize_optimizer", "_prepare")
#: Default callbacks whose effect the stacked pass reproduces (printing is skipped).
_KNOWN_CALLBACKS = (EpochTimer, TaskScores, TaskWeights, PrintLog, EarlyStopping)


class _CannotStack(Exception):
    """The stacked pass cannot train these candidates (the message says why)."""


def _loss_weights_key(param_grid: Any) -> str:
    """The one ``...loss_weights`` key of the grid, after checking its candidates."""
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    keys: set[str] = set()
    for grid in grids:
        if not isinstance(grid, Mapping):
            raise TypeError(f"param_grid must be a dict or a list of dicts, got an entry "
                            f"{grid!r} of type {type(grid).__name__}.")
        for key, values in grid.items():
            if key.split("__")[-1] != "loss_weights":
                continue
            keys.add(key)
            if isinstance(values, Mapping):
                raise TypeError(
                    f"param_grid[{key!r}] must list loss-weight candidates, e.g. "
                    f"[{{'task_a': 1.0}}, {{'task_a': 0.5}}]; got one dict {values!r}: wrap "
                    "it in a list."
                )
            if isinstance(values, str) or not isinstance(values, (Sequence, np.ndarray)):
                raise TypeError(f"param_grid[{key!r}] must be a list of loss-weight "
                                f"candidates, got {values!r}.")
            for i, cand in enumerate(values):
                ok = cand is None or isinstance(cand, Mapping) or (
                    isinstance(cand, (Sequence, np.ndarray)) and not isinstance(cand, str))
                if not ok:
                    raise TypeError(
                        f"param_grid[{key!r}][{i}] is {cand!r}; each loss-weight candidate "
                        "must be a dict {task: weight}, a sequence of weights in task order, "
                        "or None (all weights 1), e.g. [{'task_a': 0.5}, [1.0, 0.5, 2.0]]."
                    )
    if not keys:
        names = sorted({k for g in grids for k in g})
        raise ValueError(
            "param_grid has no loss_weights entry: LossWeightSearchCV searches the loss "
            "weights of a MultiTaskNet, so the grid must list candidates under "
            "'loss_weights' (or '<step>__loss_weights' in a Pipeline), e.g. "
            f"{{'loss_weights': [{{'task_a': 1.0}}, {{'task_a': 0.5}}]}}; got keys {names}. "
            "Use sklearn.model_selection.GridSearchCV for grids without loss weights."
        )
    if len(keys) > 1:
        raise ValueError(f"param_grid lists loss weights under several names {sorted(keys)}; "
                         "expected one (the MultiTaskNet's).")
    return keys.pop()


def _net_prefix(estimator: Any) -> str | None:
    """``""`` for a MultiTaskNet, ``"<step>__"`` for a Pipeline ending in one, else None."""
    if isinstance(estimator, MultiTaskNet):
        return ""
    if isinstance(estimator, Pipeline) and isinstance(estimator.steps[-1][1], MultiTaskNet):
        return f"{estimator.steps[-1][0]}__"
    return None


def _freeze(params: Mapping[str, Any]) -> str:
    """A hashable key of a parameter dict (values compared by their repr)."""
    return repr(sorted((k, repr(v)) for k, v in params.items()))


def _stack_obstacle(estimator: Any, prefix: str | None, fit_params: Mapping[str, Any]
                    ) -> str | None:
    """Why this configured estimator cannot be trained stacked (``None``: it can)."""
    if prefix is None:
        return (f"the estimator is a {type(estimator).__name__}, not a MultiTaskNet or a "
                "Pipeline whose last step is one")
    net = estimator.steps[-1][1] if prefix else estimator
    for hook in _TRAINING_HOOKS:
        if getattr(type(net), hook) is not getattr(MultiTaskNet, hook):
            return f"{type(net).__name__} overrides MultiTaskNet.{hook}"
    weighting = net.weighting
    if not (weighting == "fixed" or (isinstance(weighting, type)
                                     and issubclass(weighting, FixedWeighting))):
        return (f"weighting={weighting!r} adapts the task weights during training (only "
                "weighting='fixed' trains stacked)")
    if net.optimizer not in _ELEMENTWISE_OPTIMIZERS:
        return (f"optimizer={getattr(net.optimizer, '__name__', net.optimizer)!r} (stacked "
                "training needs an element-wise optimizer: AdamW, Adam or SGD)")
    if "param_groups" in net.get_params_for("optimizer"):
        return "optimizer__param_groups is set"
    if net.compile:
        return "compile=True"
    precision = getattr(net, "precision", "32")
    if precision != "32":
        return f"precision={precision!r} (the stacked pass trains in float32)"
    if getattr(net, "streaming", False) is True:
        return "streaming=True (the stacked pass holds the fold's rows on the device)"
    if _world_size(getattr(net, "distributed", False)) > 1:
        return "the fit would be data-parallel (torch.distributed)"
    if net.iterator_train is not None or net.iterator_valid is not None:
        return "an iterator_train / iterator_valid class is set"
    extra = set(net.get_params_for("iterator_train")) - {"batch_size", "shuffle", "drop_last"}
    if extra:
        return f"iterator_train parameters {sorted(extra)}"
    probe = clone(net)
    probe.initialize()  # callbacks only: the network needs the data
    for name, cb in probe.callbacks_:
        if not isinstance(cb, _KNOWN_CALLBACKS):
            return f"callback {name!r} ({type(cb).__name__}) runs inside a single fit"
        if isinstance(cb, EarlyStopping) and (cb.monitor != "valid_loss"
                                              or not cb.lower_is_better):
            return f"callback {name!r} monitors {cb.monitor!r} (stacked: 'valid_loss' only)"
    allowed = {"sample_weight"} if not prefix else set()
    extra = set(fit_params) - allowed
    if extra:
        return f"fit parameters {sorted(extra)} are given"
    return None


def _world_size(distributed: Any) -> int:
    """Processes of a data-parallel fit with this ``distributed`` setting (1: none)."""
    try:
        from ._distributed import process_group
    except ImportError:  # pragma: no cover - a version without data-parallel training
        return 1
    try:
        return int(process_group(distributed)[1])
    except Exception:  # noqa: BLE001 - the fit reports a bad setting itself
        return 1


def _failed_out(error_score: Any, scorer: Any, n_test: int, fit_time: float,
                return_train_score: bool) -> dict[str, Any]:
    """The result of a failed fit, as ``_fit_and_score`` reports it."""
    if error_score == "raise":
        raise  # the exception being handled
    if hasattr(scorer, "_scorers"):
        scores: Any = {name: error_score for name in scorer._scorers}
    else:
        scores = error_score
    out = {"fit_error": format_exc(), "test_scores": scores, "n_test_samples": n_test,
           "fit_time": fit_time, "score_time": 0.0}
    if return_train_score:
        out["train_scores"] = copy.copy(scores)
    return out


class LossWeightSearchCV(BaseSearchCV):
    """Grid search over the loss weights of a MultiTaskNet, all candidates of a fold at once.

    The interface of :class:`sklearn.model_selection.GridSearchCV` (same parameters, same
    ``cv_results_`` keys, same ``best_*`` attributes, ``predict``/``score`` delegating to the
    refitted best estimator), for a :class:`~sklearn_mtml.MultiTaskNet` or a ``Pipeline``
    whose last step is one. ``GridSearchCV`` fits every candidate on every fold separately;
    here, on each fold, the data are prepared once (the net's own validation, target
    encoding and input scaling; a Pipeline's transformers are fitted once on the fold's
    training rows), one network per candidate is built exactly as a separate fit with the
    same ``random_state`` builds it, and all of them are trained together as one stacked
    model (``torch.func.stack_module_state`` and ``vmap``) on the same batch order. Each
    stacked network minimises its own objective ``Σ_t w_t L_t`` with its own learning rate
    and weight decay (one AdamW over the stacked parameters is one AdamW per candidate:
    Adam is element-wise) and stops early on its own, as ``MultiTaskNet`` does: the pass
    ends when every candidate has stopped, and each keeps its best epoch. Each network is
    then loaded into an ordinary fitted ``MultiTaskNet`` (with its ``history_``) and scored
    with ``scoring``.

    Parameters that may differ between the candidates of one stacked pass are
    ``loss_weights``, ``lr`` and ``optimizer__weight_decay``; the grid may list any other
    parameter (``module__hidden_sizes``, a transformer's parameter, ``random_state``...):
    candidates that agree on those share a pass. Candidates that cannot be stacked (an
    adaptive ``weighting``, a callback that runs inside a fit, a subclass overriding the
    training hooks, another optimizer, an estimator that is not a MultiTaskNet or a Pipeline
    ending in one, or a network ``vmap`` cannot run) are fitted one by one as
    ``GridSearchCV`` does, with a ``UserWarning`` giving the reason.

    Scores are close to, but not bit-identical with, ``GridSearchCV``'s for the same
    ``random_state``: the stacked layers run batched matrix products and the optimizer its
    fused step (other rounding than one network's), and dropout / modality dropout draw
    their masks for all candidates at once. The initialisations and the batch order are the
    same.

    Parameters
    ----------
    estimator : MultiTaskNet or Pipeline
        A ``MultiTaskNet``, or a ``Pipeline`` whose last step is one.
    param_grid : dict or list of dicts
        As in ``GridSearchCV``; one entry must be ``"loss_weights"`` (or
        ``"<step>__loss_weights"`` in a Pipeline), listing candidates: dicts
        ``{task: weight}`` (other tasks weigh 1), sequences of weights in task order, or
        ``None``.
    scoring : str, callable, list, tuple or dict, default=None
        As in ``GridSearchCV``; ``None`` uses the estimator's ``score`` (the mean per-task
        score of ``MultiTaskNet``).
    n_jobs : int, default=None
        Folds trained in parallel (joblib). Candidates of a fold are already trained
        together.
    refit : bool, str or callable, default=True
        Refit the best candidate on the whole data (a plain ``fit``), as in
        ``GridSearchCV``; with multi-metric scoring, the metric that chooses it.
    cv : int, cross-validation generator or iterable, default=None
        As in ``GridSearchCV`` (``None``: 5-fold).
    verbose : int, default=0
        ``1``: a line for the search; ``2``: a line per stacked pass.
    pre_dispatch : int or str, default="2*n_jobs"
        Passed to joblib's ``Parallel``.
    error_score : "raise" or float, default=np.nan
        Score of a candidate whose fit fails.
    return_train_score : bool, default=False
        Also score every candidate on its training rows.

    Attributes
    ----------
    cv_results_ : dict of numpy (masked) ndarrays
        As in ``GridSearchCV`` (``params``, ``param_<name>``, ``split<k>_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score``, ``mean_fit_time``,
        ...). ``*_fit_time`` of a stacked candidate is its share of the pass: the pass's
        time divided by the number of candidates it trained.
    best_estimator_ : estimator
        The best candidate refitted on the whole data (``refit=True``).
    best_score_ : float
        Mean cross-validated score of the best candidate.
    best_params_ : dict
        Parameters of the best candidate.
    best_index_ : int
        Index of the best candidate in ``cv_results_``.
    scorer_ : callable or dict
        The scorer(s) used.
    n_splits_ : int
        Number of folds.
    refit_time_ : float
        Seconds spent refitting the best candidate.
    multimetric_ : bool
        Whether several metrics were scored.
    n_stacked_passes_ : int
        Stacked passes run (one per fold and group of candidates that share everything
        but the batched parameters).
    n_separate_fits_ : int
        Candidate fits that ran one by one (fallback).

    See Also
    --------
    sklearn.model_selection.GridSearchCV : the same search, one fit per candidate and fold.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet
    >>> from sklearn_mtml.model_selection import LossWeightSearchCV
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(120, 4).astype("float32")
    >>> Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1] + 0.1 * rng.randn(120)])
    >>> net = MultiTaskNet(tasks=["binary", "regression"], max_epochs=3, random_state=0)
    >>> search = LossWeightSearchCV(net, {"loss_weights": [[1, 1], [1, 0.5], [0.5, 1]]},
    ...                             cv=2).fit(X, Y)
    >>> search.cv_results_["mean_test_score"].shape
    (3,)
    >>> sorted(search.best_params_)
    ['loss_weights']
    >>> search.predict(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **BaseSearchCV._parameter_constraints,
        "estimator": [HasMethods(["fit"])],
        "param_grid": [dict, list],
        "error_score": [StrOptions({"raise"}), numbers.Real],
    }

    def __init__(self, estimator: Any, param_grid: Mapping[str, Any] | Sequence[Mapping],
                 *, scoring: Any = None, n_jobs: int | None = None, refit: Any = True,
                 cv: Any = None, verbose: int = 0, pre_dispatch: int | str = "2*n_jobs",
                 error_score: Any = np.nan, return_train_score: bool = False):
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)
        self.param_grid = param_grid

    def _run_search(self, evaluate_candidates: Any) -> None:
        """Search every candidate of ``param_grid`` (``BaseSearchCV``'s hook)."""
        evaluate_candidates(ParameterGrid(self.param_grid))

    # ------------------------------------------------------------------------------------
    def _plan(self, candidates: list[dict], fit_params: Mapping[str, Any]
              ) -> tuple[str | None, list[tuple[list[int], dict, str | None]]]:
        """Group the candidates: ``(indices, shared params, reason not to stack)`` each."""
        lw_key = _loss_weights_key(self.param_grid)
        estimator = self.estimator
        if not hasattr(estimator, "get_params"):
            raise TypeError(f"estimator must be a scikit-learn estimator (a MultiTaskNet or a "
                            f"Pipeline ending in one), got {estimator!r}.")
        prefix = _net_prefix(estimator)
        valid = estimator.get_params(deep=True)
        if lw_key not in valid:
            expected = ("'loss_weights'" if prefix == "" else f"'{prefix}loss_weights'"
                        if prefix else "a MultiTaskNet's loss_weights")
            raise ValueError(
                f"param_grid lists {lw_key!r}, which is not a parameter of the "
                f"{type(estimator).__name__} estimator; expected {expected}. "
                "LossWeightSearchCV searches the loss weights of a MultiTaskNet: pass a "
                "MultiTaskNet or a Pipeline whose last step is one (GridSearchCV searches "
                "other estimators)."
            )
        batched = set() if prefix is None else {prefix + p for p in BATCHED_PARAMS}
        groups: dict[str, tuple[list[int], dict]] = {}
        for i, params in enumerate(candidates):
            shared = {k: v for k, v in params.items() if k not in batched}
            groups.setdefault(_freeze(shared), ([], shared))[0].append(i)
        plan = []
        for indices, shared in groups.values():
            configured = clone(estimator).set_params(**clone(shared, safe=False))
            plan.append((indices, shared, _stack_obstacle(configured, prefix, fit_params)))
        return prefix, plan

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None, **params: Any) -> LossWeightSearchCV:
        """Run the search: every candidate on every fold, a fold's candidates stacked.

        Parameters
        ----------
        X : array-like, sparse matrix, dict of arrays, ModalityBlocks or DataFrame
            Input of the estimator.
        y : array-like of shape (n_samples, n_tasks) or DataFrame
            Targets, one column per task; ``NaN`` marks a missing label.
        **params : dict
            ``groups`` for the splitter, and fit parameters of the estimator
            (``sample_weight`` for a MultiTaskNet), as in ``GridSearchCV``; other fit
            parameters are passed to separate fits.

        Returns
        -------
        self : LossWeightSearchCV
        """
        scorers, refit_metric = self._get_scorers()
        X, y = indexable(X, y)
        params = _check_method_params(X, params=params)
        routed = self._get_routed_params_for_fit(params)
        fit_params = dict(routed.estimator.fit)
        score_params = dict(routed.scorer.score)
        _loss_weights_key(self.param_grid)  # clear errors before ParameterGrid's
        candidates = list(ParameterGrid(self.param_grid))
        if not candidates:
            raise ValueError("param_grid has no candidate.")
        prefix, plan = self._plan(candidates, fit_params)
        for indices, _, reason in plan:
            if reason is not None:
                warnings.warn(
                    f"LossWeightSearchCV: {len(indices)} candidate(s) are fitted one by one, "
                    f"not stacked, because {reason}.", UserWarning, stacklevel=2)

        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        self.n_splits_ = cv.get_n_splits(X, y, **routed.splitter.split)
        splits = list(cv.split(X, y, **routed.splitter.split))
        if len(splits) != self.n_splits_:
            raise ValueError(f"cv.split and cv.get_n_splits return inconsistent results. "
                             f"Expected {self.n_splits_} splits, got {len(splits)}")
        base = clone(self.estimator)
        if self.verbose > 0:
            n_stacked = sum(reason is None for _, _, reason in plan)
            print(f"Fitting {self.n_splits_} folds for each of {len(candidates)} candidates, "
                  f"totalling {self.n_splits_ * len(candidates)} fits "
                  f"({n_stacked * self.n_splits_} stacked passes)")
        settings = {"scorer": scorers, "fit_params": fit_params, "score_params": score_params,
                    "return_train_score": self.return_train_score,
                    "error_score": self.error_score, "verbose": self.verbose,
                    "n_splits": self.n_splits_, "n_candidates": len(candidates)}
        parallel = Parallel(n_jobs=self.n_jobs, pre_dispatch=self.pre_dispatch)
        folds = parallel(
            delayed(_evaluate_fold)(base, prefix, plan, candidates, X, y, train, test,
                                    split_idx, settings)
            for split_idx, (train, test) in enumerate(splits))
        out: list[dict] = []
        for cand in range(len(candidates)):
            out.extend(fold[0][cand] for fold in folds)
        for fold in folds:
            for reason in fold[1]:
                warnings.warn(f"LossWeightSearchCV: {reason}", UserWarning, stacklevel=2)
        self.n_stacked_passes_ = sum(fold[2] for fold in folds)
        self.n_separate_fits_ = sum(fold[3] for fold in folds)

        _warn_or_raise_about_fit_failures(out, self.error_score)
        if callable(self.scoring):
            _insert_error_scores(out, self.error_score)
        results = self._format_results(candidates, self.n_splits_, out, defaultdict(list))
        first = out[0]["test_scores"]
        self.multimetric_ = isinstance(first, dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(first)
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(base).set_params(
                **clone(self.best_params_, safe=False))
            start = time.time()
            if y is not None:
                self.best_estimator_.fit(X, y, **fit_params)
            else:
                self.best_estimator_.fit(X, **fit_params)
            self.refit_time_ = time.time() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = getattr(scorers, "_scorers", scorers)
        self.cv_results_ = results
        return self


# ----------------------------------------------------------------------------------------
# one fold
# ----------------------------------------------------------------------------------------
def _evaluate_fold(base: Any, prefix: str | None, plan: list, candidates: list[dict],
                   X: Any, y: Any, train: np.ndarray, test: np.ndarray, split_idx: int,
                   settings: dict) -> tuple[dict[int, dict], list[str], int, int]:
    """Every candidate on one fold: ``(out per candidate, warnings, passes, separate fits)``."""
    outs: dict[int, dict] = {}
    notes: list[str] = []
    passes = separate = 0
    for indices, shared, reason in plan:
        if reason is None:
            try:
                outs.update(_stacked_fold(base, prefix or "", indices, shared, candidates, X,
                                          y, train, test, split_idx, settings))
                passes += 1
                continue
            except _CannotStack as exc:
                notes.append(f"{len(indices)} candidate(s) are fitted one by one on fold "
                             f"{split_idx}, not stacked, because {exc}.")
        for i in indices:
            outs[i] = _fit_and_score(
                clone(base), X, y, scorer=settings["scorer"], train=train, test=test,
                verbose=settings["verbose"], parameters=candidates[i],
                fit_params=settings["fit_params"], score_params=settings["score_params"],
                return_train_score=settings["return_train_score"],
                return_n_test_samples=True, return_times=True,
                split_progress=(split_idx, settings["n_splits"]),
                candidate_progress=(i, settings["n_candidates"]),
                error_score=settings["error_score"])
            separate += 1
    return outs, notes, passes, separate


def _stacked_fold(base: Any, prefix: str, indices: list[int], shared: dict,
                  candidates: list[dict], X: Any, y: Any, train: np.ndarray,
                  test: np.ndarray, split_idx: int, settings: dict) -> dict[int, dict]:
    """Train the candidates ``indices`` of one fold as one stacked model and score them."""
    start = time.time()
    scorer, error_score = settings["scorer"], settings["error_score"]
    return_train = settings["return_train_score"]
    estimator = clone(base).set_params(**clone(shared, safe=False))
    X_train, y_train = _safe_split(estimator, X, y, train)
    X_test, y_test = _safe_split(estimator, X, y, test, train)
    n_test = _num_samples(X_test)
    fit_params = _check_method_params(X, params=settings["fit_params"], indices=train)
    score_test = _check_method_params(X, params=settings["score_params"], indices=test)
    score_train = _check_method_params(X, params=settings["score_params"], indices=train)
    outs: dict[int, dict] = {}

    # -- the fold's data, prepared once -----------------------------------------------------
    is_pipe = isinstance(estimator, Pipeline)
    try:
        pre_steps: list = []
        Xt = X_train
        if is_pipe:
            net_template = estimator.steps[-1][1]
            if len(estimator.steps) > 1:
                pre = estimator[:-1]
                Xt = pre.fit_transform(X_train, y_train)
                pre_steps = pre.steps
        else:
            net_template = estimator
        template = clone(net_template).set_params(loss_weights=None)
        before = set(template.__dict__)
        data = template._prepare(Xt, y_train, fit_params.get("sample_weight"))
    except Exception:
        elapsed = (time.time() - start) / len(indices)
        return {i: _failed_out(error_score, scorer, n_test, elapsed, return_train)
                for i in indices}
    # what _prepare fitted (tasks, input layout and statistics, device), for every candidate
    fitted_state = {k: v for k, v in template.__dict__.items()
                    if k not in before or k in (*_LAYOUT_STATE, "device_")}

    # -- one network per candidate, built as fit builds it -----------------------------------
    nets: dict[int, MultiTaskNet] = {}
    weights: dict[int, list[float]] = {}
    rng_after_init = None
    for i in indices:
        net_params = {k[len(prefix):]: v for k, v in candidates[i].items()
                      if k.startswith(prefix) and k[len(prefix):] in BATCHED_PARAMS}
        net = clone(net_template).set_params(**clone(net_params, safe=False))
        try:
            net.__dict__.update(copy.deepcopy(fitted_state))
            net._check_params()
            weights[i] = net._base_weights()
            with net._seeded():
                with net._on_resolved_device():
                    net.initialize()
                if rng_after_init is None and net._fit_seed is not None:
                    rng_after_init = torch.get_rng_state()
        except Exception:
            outs[i] = _failed_out(error_score, scorer, n_test, time.time() - start,
                                  return_train)
            continue
        nets[i] = net
    if nets:
        first = next(iter(nets.values()))
        try:
            # the global RNG is left as it was; dropout draws continue from the state a
            # separate fit has after initialisation
            fork = contextlib.nullcontext() if rng_after_init is None else \
                torch.random.fork_rng(
                    devices=[first.device_] if first.device_.type == "cuda" else [])
            with fork:
                if rng_after_init is not None:
                    torch.set_rng_state(rng_after_init)
                errors = _train_stacked(list(nets.values()), [weights[i] for i in nets],
                                        data, rng_after_init)
        except _CannotStack:
            raise
        except Exception as exc:  # separate fits give the error, or succeed without vmap
            line = (str(exc).splitlines() or [""])[0][:200]
            raise _CannotStack(f"the stacked pass failed ({type(exc).__name__}: {line})"
                               ) from exc
        for i, err in zip(list(nets), errors):
            if err is not None:
                try:
                    raise err
                except Exception:
                    outs[i] = _failed_out(error_score, scorer, n_test, 0.0, return_train)
                del nets[i]
    fit_time = (time.time() - start) / len(indices)
    if settings["verbose"] > 1:
        epochs = [len(net.history) for net in nets.values()]
        print(f"[CV {split_idx + 1}/{settings['n_splits']}] stacked pass of {len(indices)} "
              f"candidates: {fit_time * len(indices):.1f} s, epochs {epochs}")

    # -- every candidate scored as an ordinary fitted estimator ------------------------------
    for i, net in nets.items():
        if is_pipe:
            fitted = clone(estimator)
            fitted.steps = [*pre_steps, (estimator.steps[-1][0], net)]
        else:
            fitted = net
        t0 = time.time()
        out = {"fit_error": None,
               "test_scores": _score(fitted, X_test, y_test, scorer, score_test,
                                     error_score)}
        out["score_time"] = time.time() - t0
        if return_train:
            out["train_scores"] = _score(fitted, X_train, y_train, scorer, score_train,
                                         error_score)
        out["n_test_samples"] = n_test
        out["fit_time"] = fit_time
        outs[i] = out
    for i in indices:
        if i in outs and outs[i].get("fit_error") is not None:
            outs[i]["fit_time"] = fit_time
    return outs


# ----------------------------------------------------------------------------------------
# the stacked training loop
# ----------------------------------------------------------------------------------------
class _Stack:
    """The active candidates' networks as stacked tensors, with their optimizer."""

    def __init__(self, modules: list[torch.nn.Module], keys: list[str], kwargs: list[dict],
                 optimizer: type[torch.optim.Optimizer]):
        # candidates with the same optimizer settings are contiguous: one leaf per group
        self.optimizer_cls = optimizer
        self.groups: list[tuple[dict, list[int]]] = []
        for pos, key in enumerate(keys):
            if self.groups and keys[self.groups[-1][1][0]] == key:
                self.groups[-1][1].append(pos)
            else:
                self.groups.append((kwargs[pos], [pos]))
        self.leaves: list[dict[str, torch.Tensor]] = []
        for _, members in self.groups:
            params, _ = stack_module_state([modules[p] for p in members])
            self.leaves.append(params)
        _, self.buffers = stack_module_state(modules)
        self.buffers = {k: v.detach().clone() for k, v in self.buffers.items()}
        self.optimizer = self._make_optimizer()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        groups = [{"params": list(leaves.values()), **kw}
                  for (kw, _), leaves in zip(self.groups, self.leaves)]
        defaults = dict(self.groups[0][0])
        if "foreach" in defaults or "fused" in defaults:
            return self.optimizer_cls(groups, **defaults)
        # The fused implementation (one kernel per stacked tensor; the same update up to the
        # last bits), else the multi-tensor one (the same numbers as a separate fit's).
        for option in ("fused", "foreach"):
            try:
                return self.optimizer_cls([{**g, option: True} for g in groups],
                                          **{**defaults, option: True})
            except (RuntimeError, TypeError, ValueError):
                continue
        return self.optimizer_cls(groups, **defaults)

    def params(self) -> dict[str, torch.Tensor]:
        """The stacked parameters of all active candidates, in their stacked order."""
        if len(self.leaves) == 1:
            return self.leaves[0]
        return {name: torch.cat([leaves[name] for leaves in self.leaves])
                for name in self.leaves[0]}

    def state_of(self, pos: int, optimizer: bool = True
                 ) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
        """Copies of one stacked position's parameters, buffers and optimizer state."""
        g, local = self._locate(pos)
        leaves = self.leaves[g]
        weights = {name: t[local].detach().clone() for name, t in leaves.items()}
        weights.update({name: b[pos].detach().clone() for name, b in self.buffers.items()})
        optim: dict[str, dict] = {}
        for name, leaf in leaves.items() if optimizer else ():
            state = self.optimizer.state.get(leaf, {})
            optim[name] = {k: (v[local].clone() if torch.is_tensor(v)
                               and v.shape == leaf.shape else
                               v.clone() if torch.is_tensor(v) else copy.copy(v))
                           for k, v in state.items()}
        return weights, optim

    def _locate(self, pos: int) -> tuple[int, int]:
        for g, (_, members) in enumerate(self.groups):
            if pos in members:
                return g, members.index(pos)
        raise IndexError(pos)

    def keep(self, positions: list[int]) -> None:
        """Keep only these stacked positions (in order), with their optimizer state."""
        old_state = self.optimizer.state
        new_groups, new_leaves = [], []
        remap: list[tuple[torch.Tensor, torch.Tensor, list[int]]] = []
        for (kw, members), leaves in zip(self.groups, self.leaves):
            local = [members.index(p) for p in positions if p in members]
            if not local:
                continue
            idx = torch.as_tensor(local, device=next(iter(leaves.values())).device)
            fresh = {}
            for name, leaf in leaves.items():
                fresh[name] = leaf.detach().index_select(0, idx).clone().requires_grad_(True)
                remap.append((leaf, fresh[name], local))
            new_groups.append((kw, local))
            new_leaves.append(fresh)
        # renumber: positions become 0..len(positions)-1 in order
        offset = 0
        self.groups = []
        for kw, local in new_groups:
            self.groups.append((kw, list(range(offset, offset + len(local)))))
            offset += len(local)
        self.leaves = new_leaves
        pos_idx = torch.as_tensor(positions, device=next(iter(self.buffers.values())).device
                                  ) if self.buffers else None
        self.buffers = {k: v.index_select(0, pos_idx).clone() for k, v in self.buffers.items()}
        self.optimizer = self._make_optimizer()
        for old, new, local in remap:
            if old not in old_state:
                continue
            idx = torch.as_tensor(local, device=old.device)
            self.optimizer.state[new] = {
                k: (v.index_select(0, idx).clone() if torch.is_tensor(v)
                    and v.shape == old.shape else v.clone() if torch.is_tensor(v)
                    else copy.copy(v))
                for k, v in old_state[old].items()}

    def set_lr_factor(self, factor: float) -> None:
        """Scale every group's learning rate from its base value."""
        for group, (kw, _) in zip(self.optimizer.param_groups, self.groups):
            group["lr"] = kw["lr"] * factor


def _fast_call(module: torch.nn.Module) -> Any:
    """A ``functional_call`` for ``module`` that swaps its tensors in place, or None.

    ``torch.func.functional_call`` looks every parameter up through the module tree on each
    call; this binds each name to its slot once. Modules that cache their parameters
    (recurrent layers' flat weights) or compute them (parametrizations) keep
    ``functional_call``.
    """
    from torch.nn.utils import parametrize

    for sub in module.modules():
        if isinstance(sub, torch.nn.RNNBase) or parametrize.is_parametrized(sub):
            return None
    slots: dict[str, tuple[dict[str, Any], str]] = {}
    for name, _ in [*module.named_parameters(), *module.named_buffers()]:
        owner, _, attr = name.rpartition(".")
        sub = module.get_submodule(owner)
        store: dict[str, Any] = (sub._parameters if attr in sub._parameters
                                 else sub._buffers)
        if attr not in store:
            return None
        slots[name] = (store, attr)

    def call(mod: torch.nn.Module, tensors: tuple[dict, dict], args: tuple,
             kwargs: dict) -> Any:
        saved = []
        try:
            for group in tensors:
                for name, value in group.items():
                    store, attr = slots[name]
                    saved.append((store, attr, store[attr]))
                    store[attr] = value
            return mod(*args, **kwargs)
        finally:
            for store, attr, value in reversed(saved):
                store[attr] = value

    return call


def _default_loss(net: MultiTaskNet) -> bool:
    """Whether the net computes its losses with MultiTaskNet's own get_loss and criterion."""
    return (type(net).get_loss is MultiTaskNet.get_loss
            and type(net.criterion_) is MultiTaskLoss)


def _stacked_task_losses(tasks: Sequence[Any], outputs: Sequence[torch.Tensor],
                         targets: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """:class:`MultiTaskLoss`'s mean loss per task, for every stacked network: ``(C, T)``.

    ``outputs`` are ``(C, n, k_t)``; ``label_mask`` is ``(n, T)`` or ``(C, n, T)``.
    """
    C, n = outputs[0].shape[:2]
    m = label_mask.to(targets.dtype)
    if m.dim() == 2:
        m = m.expand(C, *m.shape)
    total = torch.stack([
        (task.loss(out.reshape(C * n, -1), targets[:, t].repeat(C)).reshape(C, n)
         * m[:, :, t]).sum(1)
        for t, (task, out) in enumerate(zip(tasks, outputs))], 1)
    return total / m.sum(1).clamp_min(1e-12)


def _stacked_get_loss(net: MultiTaskNet, y_pred: Any, y_true: Any) -> torch.Tensor:
    """``MultiTaskNet.get_loss`` for every stacked network at once: ``(C, T)``."""
    targets, label_mask = y_true
    tasks = net.criterion_.tasks
    per_block = None
    if isinstance(y_pred, tuple):
        y_pred, per_block, used = y_pred
    losses = _stacked_task_losses(tasks, y_pred, targets, label_mask)
    if per_block is not None:
        block_losses = [_stacked_task_losses(tasks, out, targets,
                                             label_mask * used[:, :, m:m + 1])
                        for m, out in enumerate(per_block)]
        losses = losses + net.module_.block_loss_weight * torch.stack(block_losses).mean(0)
    return losses


def _early_stopping_settings(net: MultiTaskNet) -> dict | None:
    """The early-stopping callback's settings (``None`` without one)."""
    cb = dict(net.callbacks_).get("early_stopping")
    if not isinstance(cb, EarlyStopping):
        return None
    patience = net.n_iter_no_change if cb.patience == "auto" else cb.patience
    if not isinstance(patience, numbers.Integral) or isinstance(patience, bool) \
            or patience < 1:
        raise ValueError(f"EarlyStopping: patience must be a positive integer or 'auto', "
                         f"got {cb.patience!r}.")
    return {"patience": int(patience), "threshold": cb.threshold,
            "mode": cb.threshold_mode, "load_best": cb.load_best, "callback": cb}


def _train_stacked(nets: list[MultiTaskNet], weights: list[list[float]], data: tuple,
                   rng_after_init: torch.Tensor | None) -> list[Exception | None]:
    """Train initialised nets (same data, same budget) as one stacked model, in place.

    Each net ends as a separate fit would leave it: its best (or last) weights, its
    optimizer state, ``history_``, ``best_epoch_``, ``batch_size_``, ``max_epochs_``.
    Returns one entry per net: ``None``, or the exception that failed its fit.
    """
    net0 = nets[0]
    blocks, mask, targets, label_mask = data
    n = mask.shape[0]
    train_idx, valid_idx = net0._training_split(label_mask)
    if net0._streams(blocks):
        raise _CannotStack("the inputs are streamed from the host (memory-mapped blocks)")
    rows = DeviceRows(
        # scaled once per fold: every stacked network has the same input statistics
        net0.module_.scale_inputs({k: net0._to_device(v) for k, v in blocks.items()}),
        net0._to_device(mask), net0._to_device(targets), net0._to_device(label_mask))
    dataset_train = rows.subset(train_idx)
    dataset_valid = (rows.subset(valid_idx) if valid_idx is not None and len(valid_idx)
                     else None)
    stops_early = dataset_valid is not None and net0._uses_early_stopping(n)
    for net in nets:
        net.stops_early_ = stops_early
        net._resolve_budget(len(train_idx), stops_early)
        net.best_epoch_ = None
        net._set_task_epochs({})
    es = _early_stopping_settings(net0) if stops_early else None
    names = [name for name, _ in net0.callbacks_]
    record_scores = "valid_scores" in names and isinstance(
        dict(net0.callbacks_)["valid_scores"], TaskScores)
    record_weights = "task_weights" in names
    record_dur = "epoch_timer" in names
    tasks = list(net0.tasks_.values())
    n_tasks = len(tasks)
    device = net0.device_
    C = len(nets)

    threads = None
    if device.type == "cpu":
        threads = fit_threads(net0._step_flops(dataset_train) * C)
    it = net0.get_params_for("iterator_train")
    shuffle = it.get("shuffle", True)
    spans = batch_spans(len(dataset_train), net0.batch_size_, it.get("drop_last", False))
    generator = None
    if rng_after_init is not None:  # the batch order of a separate seeded fit
        generator = torch.Generator()
        generator.set_state(rng_after_init)
    cosine = net0.lr_schedule == "cosine"
    max_epochs = net0.max_epochs_

    # optimizer settings per candidate (lr, weight decay...): equal ones share a group
    kwargs = [net.get_params_for_optimizer("optimizer", [])[1] for net in nets]
    keys = [_freeze(kw) for kw in kwargs]
    order = sorted(range(C), key=lambda c: keys.index(keys[c]))
    stack = _Stack([nets[c].module_ for c in order], [keys[c] for c in order],
                   [kwargs[c] for c in order], net0.optimizer)
    active = list(order)  # candidate of each stacked position
    W = torch.tensor([weights[c] for c in active], dtype=torch.float32, device=device)

    module = net0.module_
    fwd = {"prescaled": True}
    if getattr(module, "block_loss_weight", 0.0):
        fwd["return_blocks"] = True

    call = _fast_call(module) or functional_call

    def forward_train(p, b, xb, mb):
        return call(module, (p, b), (xb, mb), fwd)

    def forward(p, b, xb, mb):
        return call(module, (p, b), (xb, mb), {"prescaled": True})

    train_v = vmap(forward_train, in_dims=(0, 0, None, None), randomness="different")
    forward_v = vmap(forward, in_dims=(0, 0, None, None), randomness="different")
    if _default_loss(net0):
        def stacked_loss(y_pred: Any, yb: Any, training: bool) -> torch.Tensor:
            return _stacked_get_loss(net0, y_pred, yb)
    else:  # a get_loss of the user's: run it per network
        def stacked_loss(y_pred: Any, yb: Any, training: bool) -> torch.Tensor:
            return vmap(lambda out: net0.get_loss(out, yb, training=training),
                        randomness="different")(y_pred)
    iterator_valid = (None if dataset_valid is None
                      else net0.get_iterator(dataset_valid, training=False))

    errors: list[Exception | None] = [None] * C
    final: dict[int, tuple[dict, dict]] = {}
    best: dict[int, dict[str, torch.Tensor]] = {}
    misses = [0] * C
    threshold = [np.inf] * C
    best_epoch = [0] * C
    last_epoch = [0] * C
    # each task's own best epoch, as EarlyStopping(task_epochs=True) keeps it
    trackers: list[TaskEpochs | None] = [None] * C
    if es is not None:
        for c, net in enumerate(nets):
            trackers[c] = es["callback"]._task_tracker(net)

    def retire(positions: list[int]) -> None:
        nonlocal W, active
        for pos in positions:
            final[active[pos]] = stack.state_of(pos)
        keep = [p for p in range(len(active)) if p not in positions]
        if keep:
            stack.keep(keep)
            W = W[keep]
        active = [active[p] for p in keep]

    was_training = module.training
    try:
        with torch_threads(threads), warnings.catch_warnings():
            # ops without a vmap batching rule (attention on the CPU) run one network at a
            # time: slower, not wrong
            warnings.filterwarnings("ignore", message=".*not yet implemented the batching rule")
            for epoch in range(max_epochs):
                if not active:
                    break
                tic = time.time()
                if cosine:
                    stack.set_lr_factor(cosine_factor(epoch, max_epochs))
                for c in active:
                    nets[c].history.new_epoch()
                    nets[c].history.record("epoch", len(nets[c].history))
                # -- training pass
                module.train()
                A = len(active)
                total = torch.zeros(A, n_tasks, device=device)
                count = torch.zeros(n_tasks, device=device)
                obj_sum = torch.zeros(A, device=device)
                perm = (torch.randperm(len(dataset_train), generator=generator).to(device)
                        if shuffle else None)
                sizes = []
                for s, e in spans:
                    batch = dataset_train.take(slice(s, e) if perm is None else perm[s:e])
                    (xb, mb), yb = batch[0], cast("tuple[torch.Tensor, torch.Tensor]", batch[1])
                    losses = stacked_loss(train_v(stack.params(), stack.buffers, xb, mb),
                                          yb, True)
                    obj = (W * losses).sum(1)
                    stack.optimizer.zero_grad(set_to_none=True)
                    obj.sum().backward()
                    stack.optimizer.step()
                    counts = yb[1].to(losses.dtype).sum(0)
                    total += losses.detach() * counts
                    count += counts
                    size = int(mb.shape[0])
                    obj_sum += obj.detach() * size
                    sizes.append(size)
                stats = torch.cat([total / count.clamp_min(1e-12), obj_sum[:, None]], 1
                                  ).cpu().numpy()
                for pos, c in enumerate(active):
                    h = nets[c].history
                    for size in sizes:
                        h.new_batch()
                        h.record_batch("train_batch_size", size)
                    h.record("train_batch_count", len(sizes))
                    nets[c]._record("train_loss", float(stats[pos, n_tasks]) / max(sum(sizes), 1))
                    for name, loss in zip(nets[c].task_names_, stats[pos, :n_tasks]):
                        h.record(f"train_loss_{name}", float(loss))
                diverged = []
                for pos, c in enumerate(active):
                    try:
                        nets[c]._check_finite_loss(epoch)
                    except FloatingPointError as exc:
                        errors[c] = exc
                        diverged.append(pos)
                # -- validation pass
                if iterator_valid is not None and len(diverged) < len(active):
                    module.eval()
                    A = len(active)
                    vtotal = torch.zeros(A, n_tasks, device=device)
                    vcount = torch.zeros(n_tasks, device=device)
                    sums: list[torch.Tensor | None] = [None] * A
                    vsizes = []
                    with torch.no_grad():
                        params = stack.params()
                        for (xb, mb), yb in iterator_valid:
                            outs = forward_v(params, stack.buffers, xb, mb)
                            losses = stacked_loss(outs, yb, False)
                            counts = yb[1].to(losses.dtype).sum(0)
                            vtotal += losses * counts
                            vcount += counts
                            vsizes.append(int(mb.shape[0]))
                            for pos, c in enumerate(active):
                                tracker = trackers[c]
                                if tracker is not None:
                                    tracker.add_batch(row_losses(
                                        tasks, [out[pos] for out in outs], yb[0]), yb[1])
                            if record_scores:
                                for pos in range(A):
                                    s_ = torch.stack([
                                        task.metric_sums(out[pos], yb[0][:, t], yb[1][:, t])
                                        for t, (task, out) in enumerate(zip(tasks, outs))])
                                    prev = sums[pos]
                                    sums[pos] = s_ if prev is None else prev + s_
                    vstats = (vtotal / vcount.clamp_min(1e-12)).cpu().numpy()
                    for pos, c in enumerate(active):
                        net, h = nets[c], nets[c].history
                        for size in vsizes:
                            h.new_batch()
                            h.record_batch("valid_batch_size", size)
                        h.record("valid_batch_count", len(vsizes))
                        net._record("valid_loss", float(
                            (np.asarray(weights[c]) * vstats[pos]).sum()))
                        for name, loss in zip(net.task_names_, vstats[pos]):
                            h.record(f"valid_loss_{name}", float(loss))
                        cur = sums[pos]
                        if record_scores and cur is not None:
                            sums_np = cur.cpu().numpy()
                            scores = []
                            for (name, task), s_ in zip(net.tasks_.items(), sums_np):
                                score = task.metric_from_sums(s_)
                                scores.append(score)
                                h.record(f"valid_{task.metric_name}_{name}", score)
                            h.record("valid_score", float("nan") if np.all(np.isnan(scores))
                                     else float(np.nanmean(scores)))
                # -- epoch end: weights, duration, early stopping
                stopped = list(diverged)
                dur = (time.time() - tic) / max(len(active), 1)
                for pos, c in enumerate(active):
                    h = nets[c].history
                    if record_dur:
                        h.record("dur", dur)
                    if record_weights:
                        for name, w in zip(nets[c].task_names_, weights[c]):
                            h.record(f"weight_{name}", float(np.float32(w)))
                    last_epoch[c] = len(h)
                    if es is None or pos in diverged:
                        continue
                    score = h[-1, "valid_loss"]
                    improved = score < threshold[c]
                    if improved:
                        misses[c] = 0
                        change = es["threshold"] * score if es["mode"] == "rel" \
                            else es["threshold"]
                        threshold[c] = score - change
                        best_epoch[c] = len(h)
                        if es["load_best"]:
                            best[c] = stack.state_of(pos, optimizer=False)[0]
                    else:
                        misses[c] += 1
                    tracker = trackers[c]
                    if tracker is not None:
                        def snapshot(c: int = c, pos: int = pos, improved: bool = improved
                                     ) -> dict[str, torch.Tensor]:
                            if improved and c in best:
                                return best[c]
                            return stack.state_of(pos, optimizer=False)[0]

                        tracker.end_epoch(
                            len(h), [h[-1, f"valid_loss_{t}"] for t in nets[c].task_names_],
                            improved, snapshot)
                    if misses[c] >= es["patience"]:
                        stopped.append(pos)
                if stopped:
                    retire(sorted(set(stopped)))
            if active:
                retire(list(range(len(active))))
    finally:
        module.train(was_training)

    # -- every candidate back into its own fitted MultiTaskNet ----------------------------------
    for c, net in enumerate(nets):
        if errors[c] is not None:
            continue
        state, optim = final[c]
        if es is not None and best_epoch[c]:
            net.__dict__["best_epoch_"] = best_epoch[c]
            if c in best and best_epoch[c] != last_epoch[c]:
                state = best[c]
        with torch.no_grad():
            for name, p in net.module_.named_parameters():
                p.copy_(state[name])
            for name, b in net.module_.named_buffers():
                if name in state:
                    b.copy_(state[name])
        for name, p in net.module_.named_parameters():
            if optim.get(name):
                net.optimizer_.state[p] = optim[name]
        tracker = trackers[c]
        if tracker is not None and best_epoch[c]:
            chosen = tracker.decide(tracker.paired_sums())
            net._set_task_epochs({name: (epoch, st) for name, (epoch, _, st) in chosen.items()})
    return errors
