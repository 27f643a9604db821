"""``LossWeightSearchCV``: the GridSearchCV interface, a fold's candidates trained stacked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtml import ModalityBlocks, ModalityFusion, MultiTaskNet
from sklearn_mtml.model_selection import LossWeightSearchCV

TASKS = ["binary", "regression", "multiclass"]


def make_data(n=240, seed=0, missing=0.0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 6).astype(np.float32)
    Y = np.column_stack([
        (X[:, 0] + 0.3 * rng.randn(n) > 0).astype(float),
        X[:, 1] - X[:, 2] + 0.2 * rng.randn(n),
        np.digitize(X[:, 3] + 0.2 * rng.randn(n), [-0.5, 0.5]).astype(float),
    ])
    if missing:
        Y[rng.rand(n) < missing, 1] = np.nan
        Y[rng.rand(n) < missing, 2] = np.nan
    return X, Y


def split_scores(search, n_splits):
    return np.array([search.cv_results_[f"split{k}_test_score"] for k in range(n_splits)])


def both(net, grid, X, Y, cv=None, **kwargs):
    cv = cv or KFold(2, shuffle=True, random_state=0)
    grid_search = GridSearchCV(net, grid, cv=cv, **kwargs).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback to separate fits
        ours = LossWeightSearchCV(net, grid, cv=cv, **kwargs).fit(X, Y)
    return grid_search, ours


def test_same_best_candidate_as_grid_search():
    # zeroing the loss of a learnable task leaves its head untrained: a clear-cut loser
    X, Y = make_data(240)
    net = MultiTaskNet(tasks=TASKS, max_epochs=10, random_state=0)
    grid = {"loss_weights": [[1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]]}
    grid_search, ours = both(net, grid, X, Y)
    assert ours.best_index_ == grid_search.best_index_ == 1
    assert ours.best_params_ == {"loss_weights": [1, 1, 1]}
    # every candidate that zeroes a task is clearly below the full objective
    scores = ours.cv_results_["mean_test_score"]
    assert scores[1] > max(scores[[0, 2, 3]]) + 0.05
    assert ours.n_stacked_passes_ == 2 and ours.n_separate_fits_ == 0


def test_scores_match_grid_search():
    # Without dropout the stacked networks follow the separate fits' path: the same
    # initialisation and batch order; only the rounding of batched matrix products differs.
    X, Y = make_data(240, missing=0.15)
    net = MultiTaskNet(tasks=TASKS, max_epochs=8, random_state=0)
    grid = {"loss_weights": [[1, 0.3, 2], {"task_0": 0.5}], "lr": [1e-3, 3e-3]}
    grid_search, ours = both(net, grid, X, Y)
    np.testing.assert_allclose(split_scores(ours, 2), split_scores(grid_search, 2), atol=1e-4)
    assert ours.n_stacked_passes_ == 2  # the lr candidates train in the same pass


def test_scores_close_to_grid_search_with_dropout_and_early_stopping():
    # Dropout masks are drawn for all stacked networks at once under vmap
    # (randomness="different"), not from each separate fit's RNG stream, so the scores
    # differ a little from GridSearchCV's, within a margin.
    X, Y = make_data(400)  # 20 validation rows of 200: early stopping is on
    net = MultiTaskNet(tasks=TASKS, max_epochs=15, n_iter_no_change=3, random_state=0,
                       module__dropout=0.1, module__batch_norm=True)
    grid = {"loss_weights": [[1, 1, 1], [1, 0.25, 1], [1, 1, 4]]}
    grid_search, ours = both(net, grid, X, Y)
    diff = ours.cv_results_["mean_test_score"] - grid_search.cv_results_["mean_test_score"]
    assert np.abs(diff).max() < 0.02
    assert np.abs(split_scores(ours, 2) - split_scores(grid_search, 2)).max() < 0.04


def test_cv_results_keys_match_grid_search():
    X, Y = make_data(120)
    net = MultiTaskNet(tasks=TASKS, max_epochs=2, random_state=0)
    grid = [{"loss_weights": [[1, 1, 1], {"task_1": 0.5}], "lr": [1e-3]},
            {"loss_weights": [None], "module__hidden_sizes": [(8,)]}]
    grid_search, ours = both(net, grid, X, Y, return_train_score=True)
    assert sorted(ours.cv_results_) == sorted(grid_search.cv_results_)
    assert ours.cv_results_["params"] == grid_search.cv_results_["params"]
    for key in ("param_lr", "param_loss_weights", "param_module__hidden_sizes"):
        assert isinstance(ours.cv_results_[key], np.ma.MaskedArray)
        np.testing.assert_array_equal(ours.cv_results_[key].mask,
                                      grid_search.cv_results_[key].mask)
    assert ours.n_splits_ == 2 and ours.refit_time_ > 0
    assert np.all(ours.cv_results_["mean_fit_time"] > 0)
    # the hidden_sizes candidate has another architecture: its own pass per fold
    assert ours.n_stacked_passes_ == 4


def test_multimetric_scoring_and_delegation():
    X, Y = make_data(160)
    net = MultiTaskNet(tasks=TASKS, max_epochs=3, random_state=0)
    grid = {"loss_weights": [[1, 1, 1], [1, 0.5, 1]]}

    def score(est, X, y):
        return est.score(X, y)

    def first_task(est, X, y):
        return est.score_tasks(X, y)["task_0"]

    scoring = {"mean": score, "first": first_task}
    grid_search, ours = both(net, grid, X, Y, scoring=scoring, refit="first")
    assert sorted(ours.cv_results_) == sorted(grid_search.cv_results_)
    assert ours.multimetric_ and set(ours.scorer_) == {"mean", "first"}
    assert ours.best_index_ == int(np.argmax(ours.cv_results_["mean_test_first"]))
    assert isinstance(ours.best_estimator_, MultiTaskNet)
    assert ours.predict(X[:5]).shape == (5, 3)
    assert len(ours.predict_proba(X[:5])) == 2
    assert np.isfinite(ours.score(X, Y))


def test_candidates_become_fitted_nets_with_history():
    X, Y = make_data(440)  # 22 validation rows of 220: early stopping is on
    net = MultiTaskNet(tasks=TASKS, max_epochs=25, n_iter_no_change=2, random_state=0)
    seen = []

    def scorer(est, X, y):
        seen.append(est)
        return est.score(X, y)

    LossWeightSearchCV(net, {"loss_weights": [[1, 1, 1], [1, 2, 0.5]]}, cv=2,
                       scoring=scorer, refit=False).fit(X, Y)
    separate = clone(net).set_params(loss_weights=[1, 1, 1]).fit(X[220:], Y[220:])
    assert len(seen) == 4
    for est in seen:
        assert isinstance(est, MultiTaskNet) and est.initialized_
        assert set(est.history_[-1]) == set(separate.history_[-1])
        assert est.best_epoch_ is not None and 1 <= est.best_epoch_ <= len(est.history_)
        assert est.max_epochs_ == 25 and len(est.history_) <= 25
    # the first fold's first candidate is exactly the separate fit on the same rows
    # (KFold(2) without shuffling: train on the second half)
    assert len(seen[0].history_) == len(separate.history_)
    np.testing.assert_allclose(seen[0].history_[:, "valid_loss"],
                               separate.history_[:, "valid_loss"], rtol=1e-4)
    np.testing.assert_allclose(seen[0].predict_proba(X[:20])[0],
                               separate.predict_proba(X[:20])[0], atol=1e-4)


class _CountingScaler(StandardScaler):
    fits = 0

    def fit(self, X, y=None, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


def test_pipeline_modality_blocks_and_missing_labels():
    rng = np.random.RandomState(0)
    X, Y = make_data(240, missing=0.2)
    X = np.column_stack([X, rng.randn(240, 3).astype(np.float32)])
    pipe = Pipeline([
        ("scale", _CountingScaler()),
        ("fusion", ModalityFusion([("a", "passthrough", [0, 1, 2]),
                                   ("b", "passthrough", [3, 4, 5, 6, 7, 8])])),
        # late fusion of the two blocks (the default), without modality dropout: nothing
        # random in training, so the stacked path matches the separate fits
        ("net", MultiTaskNet(tasks=TASKS, max_epochs=8, random_state=0,
                             module__modality_dropout=0.0)),
    ])
    grid = {"net__loss_weights": [[1, 1, 1], [1, 0.2, 1], [1, 1, 3]]}
    cv = KFold(2, shuffle=True, random_state=0)
    grid_search = GridSearchCV(pipe, grid, cv=cv).fit(X, Y)
    _CountingScaler.fits = 0
    ours = LossWeightSearchCV(pipe, grid, cv=cv).fit(X, Y)
    # the transformers are fitted once per fold (and once for the refit), not per candidate
    assert _CountingScaler.fits == 2 + 1
    np.testing.assert_allclose(split_scores(ours, 2), split_scores(grid_search, 2), atol=1e-3)
    assert ours.n_stacked_passes_ == 2
    assert isinstance(ours.best_estimator_, Pipeline)
    assert ours.predict(X[:4]).shape == (4, 3)

    # the net alone on ModalityBlocks, with the default modality dropout: its masks are
    # drawn for all stacked networks at once under vmap, not from each fit's RNG stream, so
    # the scores are close to GridSearchCV's, not equal
    X, Y = make_data(400, missing=0.2)
    X = np.column_stack([X, rng.randn(400, 3).astype(np.float32)])
    blocks = ModalityBlocks({"a": X[:, :3], "b": X[:, 3:]})
    net = MultiTaskNet(tasks=TASKS, max_epochs=8, random_state=0)
    grid_search, ours = both(net, {"loss_weights": [[1, 1, 1], [1, 0.2, 1]]}, blocks, Y)
    diff = ours.cv_results_["mean_test_score"] - grid_search.cv_results_["mean_test_score"]
    assert np.abs(diff).max() < 0.02


def test_sample_weight_and_n_jobs():
    X, Y = make_data(160)
    w = np.random.RandomState(1).uniform(0.5, 2, len(X))
    net = MultiTaskNet(tasks=TASKS, max_epochs=4, random_state=0)
    grid = {"loss_weights": [[1, 1, 1], [2, 1, 1]]}
    cv = KFold(2, shuffle=True, random_state=0)
    grid_search = GridSearchCV(net, grid, cv=cv, refit=False).fit(X, Y, sample_weight=w)
    ours = LossWeightSearchCV(net, grid, cv=cv, refit=False).fit(X, Y, sample_weight=w)
    np.testing.assert_allclose(split_scores(ours, 2), split_scores(grid_search, 2), atol=1e-4)
    parallel = LossWeightSearchCV(net, grid, cv=cv, refit=False, n_jobs=2).fit(
        X, Y, sample_weight=w)
    np.testing.assert_allclose(split_scores(parallel, 2), split_scores(ours, 2), atol=1e-6)


class _CustomStep(MultiTaskNet):
    def train_step_single(self, batch, **fit_params):
        return super().train_step_single(batch, **fit_params)


@pytest.mark.parametrize("net, reason", [
    (MultiTaskNet(tasks=TASKS, weighting="uncertainty"), "weighting='uncertainty'"),
    (MultiTaskNet(tasks=TASKS, optimizer=__import__("torch").optim.RMSprop), "RMSprop"),
    (_CustomStep(tasks=TASKS), "overrides MultiTaskNet.train_step_single"),
])
def test_fallback_to_separate_fits_warns(net, reason):
    X, Y = make_data(100)
    net.set_params(max_epochs=2, random_state=0)
    grid = {"loss_weights": [[1, 1, 1], [1, 0.5, 1]]}
    with pytest.warns(UserWarning, match=reason):
        ours = LossWeightSearchCV(net, grid, cv=2).fit(X, Y)
    grid_search = GridSearchCV(net, grid, cv=2).fit(X, Y)
    np.testing.assert_allclose(split_scores(ours, 2), split_scores(grid_search, 2))
    assert ours.n_stacked_passes_ == 0 and ours.n_separate_fits_ == 4


def test_network_vmap_cannot_run_falls_back():
    # a packed GRU has no vmap batching rule: the first stacked step fails, and the fold's
    # candidates are fitted one by one instead
    rng = np.random.RandomState(0)
    X, Y = make_data(80)
    blocks = ModalityBlocks({"seq": rng.randn(80, 5, 2).astype(np.float32), "tab": X})
    net = MultiTaskNet(tasks=TASKS, max_epochs=2, random_state=0,
                       module__encoders={"seq": "gru"})
    grid = {"loss_weights": [[1, 1, 1], [1, 0.5, 1]]}
    with pytest.warns(UserWarning, match="the stacked pass failed"):
        ours = LossWeightSearchCV(net, grid, cv=2, refit=False).fit(blocks, Y)
    grid_search = GridSearchCV(net, grid, cv=2, refit=False).fit(blocks, Y)
    np.testing.assert_allclose(split_scores(ours, 2), split_scores(grid_search, 2))
    assert ours.n_stacked_passes_ == 0 and ours.n_separate_fits_ == 4


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_failed_candidates_get_error_score():
    X, Y = make_data(100)
    net = MultiTaskNet(tasks=TASKS, max_epochs=2, random_state=0)
    grid = {"loss_weights": [[1, 1, 1], [1, -1, 1]]}
    with pytest.warns(FitFailedWarning, match="loss weight of task 'task_1'"):
        ours = LossWeightSearchCV(net, grid, cv=2).fit(X, Y)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    assert ours.best_index_ == 0
    with pytest.raises(ValueError, match="loss weight of task 'task_1'"):
        LossWeightSearchCV(net, grid, cv=2, error_score="raise").fit(X, Y)


def test_clone_and_params():
    net = MultiTaskNet(tasks=TASKS, max_epochs=2)
    search = LossWeightSearchCV(net, {"loss_weights": [None]}, cv=3, n_jobs=2)
    params = search.get_params()
    assert params["cv"] == 3 and params["n_jobs"] == 2 and params["estimator__max_epochs"] == 2
    copy = clone(search)
    assert copy.get_params()["param_grid"] == {"loss_weights": [None]}
    copy.set_params(estimator__max_epochs=5, refit=False)
    assert copy.estimator.max_epochs == 5 and search.estimator.max_epochs == 2


@pytest.mark.parametrize("estimator, grid, error, match", [
    (MultiTaskNet(), {"lr": [1e-3, 1e-2]}, ValueError, "no loss_weights entry"),
    (MultiTaskNet(), {"loss_weights": {"a": 1.0}}, TypeError, "wrap it in a list"),
    (MultiTaskNet(), {"loss_weights": [0.5, 1.0]}, TypeError,
     r"param_grid\['loss_weights'\]\[0\] is 0.5"),
    (Ridge(), {"loss_weights": [[1.0]]}, ValueError,
     "'loss_weights', which is not a parameter of the Ridge"),
    (make_pipeline(StandardScaler(), MultiTaskNet()), {"net__loss_weights": [None]},
     ValueError, "expected 'multitasknet__loss_weights'"),
    (MultiTaskNet(), {"loss_weights": [None], "net__loss_weights": [None]}, ValueError,
     "several names"),
])
def test_bad_input_errors(estimator, grid, error, match):
    X, Y = make_data(40)
    with pytest.raises(error, match=match):
        LossWeightSearchCV(estimator, grid, cv=2).fit(X, Y)
