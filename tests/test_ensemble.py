"""KFoldEnsemble: members stop on their own fold, predictions average them."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtml import KFoldEnsemble, ModalityBlocks, MultiTaskNet
from sklearn_mtml.ensemble import FoldSplit


def _net(**params):
    return MultiTaskNet(**{"max_epochs": 15, **params})


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 6)).astype(np.float32)
    Y = pd.DataFrame({
        "sign": np.where(X[:, 0] + 0.3 * rng.normal(size=240) > 0, "pos", "neg"),
        "level": np.digitize(X[:, 1], [-0.5, 0.5]),
        "value": X[:, 2] - X[:, 3] + 0.2 * rng.normal(size=240),
    })
    Y.loc[::7, "value"] = np.nan  # missing labels
    model = KFoldEnsemble(_net(tasks={"sign": "binary", "level": "multiclass",
                                      "value": "regression"}),
                          cv=3, random_state=0).fit(X, Y)
    return X, Y, model


def test_members_stop_on_their_own_fold(mixed):
    X, _, model = mixed
    folds = model.validation_indices_
    assert len(model.estimators_) == len(folds) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(len(X)))
    for member, valid in zip(model.estimators_, folds):
        assert isinstance(member.train_split, FoldSplit)
        np.testing.assert_array_equal(member.train_split.valid, valid)
        # early stopping ran on those rows: every epoch has a validation loss
        assert all("valid_loss" in epoch for epoch in member.history_)
        assert 1 <= member.best_epoch_ <= len(member.history_)
    seeds = {member.random_state for member in model.estimators_}
    assert len(seeds) == 3  # each member its own seed


def test_predictions_average_the_members(mixed):
    X, _, model = mixed
    sign, level = model.predict_proba(X)
    members = [m.predict_proba(X) for m in model.estimators_]
    np.testing.assert_allclose(sign, np.mean([p[0] for p in members], axis=0), rtol=1e-6)
    np.testing.assert_allclose(level, np.mean([p[1] for p in members], axis=0), rtol=1e-6)
    pred = model.predict(X)
    assert pred.shape == (len(X), 3)
    np.testing.assert_array_equal(pred[:, 0], model.classes_[0][sign.argmax(1)])
    np.testing.assert_array_equal(pred[:, 1], model.classes_[1][level.argmax(1)])
    values = np.mean([m.predict(X)[:, 2].astype(float) for m in model.estimators_], axis=0)
    np.testing.assert_allclose(pred[:, 2].astype(float), values, rtol=1e-6)
    assert model.task_names_ == ["sign", "level", "value"]
    scores = model.score_tasks(X, mixed[1])
    assert set(scores) == {"sign", "level", "value"}
    assert model.score(X, mixed[1]) == pytest.approx(np.mean(list(scores.values())))


@pytest.mark.parametrize("seed", [0, 1])
def test_average_is_never_worse_than_the_mean_member_on_real_data(seed):
    """Squared error and log-loss are convex: the averaged prediction is at least as good.

    This holds exactly, whatever the seed; it checks that the ensemble averages values and
    probabilities (not labels or logits).
    """
    Xr, yr = load_diabetes(return_X_y=True)
    Xc, yc = load_breast_cancer(return_X_y=True)
    for X, y, kind in ((Xr, yr, "regression"), (Xc, yc, "binary")):
        train, test = np.arange(len(y)) % 4 != 0, np.arange(len(y)) % 4 == 0
        model = KFoldEnsemble(_net(tasks=[kind]), cv=4, random_state=seed)
        model.fit(X[train], y[train])
        if kind == "regression":
            ens = np.mean((model.predict(X[test]) - y[test]) ** 2)
            each = [np.mean((m.predict(X[test]) - y[test]) ** 2) for m in model.estimators_]
        else:
            def logloss(p, y=y[test]):
                return -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)))
            ens = logloss(model.predict_proba(X[test]))
            each = [logloss(m.predict_proba(X[test])) for m in model.estimators_]
        assert ens <= np.mean(each) + 1e-9
        assert ens < max(each)


def test_same_random_state_same_ensemble():
    X, y = load_diabetes(return_X_y=True)
    a = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=3).fit(X, y)
    b = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_group_splitter_stops_members_on_unseen_groups():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    groups = np.repeat(np.arange(6), 20)
    model = KFoldEnsemble(_net(), cv=GroupKFold(3)).fit(X, y, groups=groups)
    for valid in model.validation_indices_:
        train = np.setdiff1d(np.arange(len(X)), valid)
        assert not set(groups[valid]) & set(groups[train])
    strat = KFoldEnsemble(_net(), cv=StratifiedKFold(3)).fit(X, y)
    for valid in strat.validation_indices_:  # the splitter saw y
        assert abs(y[valid].mean() - y.mean()) < 0.05


def test_pipeline_members_dict_blocks_and_sample_weight():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 3)) * 100
    y = X[:, 0] / 100 + 0.1 * rng.normal(size=90)
    pipe = KFoldEnsemble(make_pipeline(StandardScaler(), _net()), cv=3, random_state=0)
    pipe.fit(X, y, sample_weight=np.ones(90))
    assert pipe.predict(X).shape == (90,)
    assert pipe.n_features_in_ == 3
    assert isinstance(pipe.estimators_[0][-1].train_split, FoldSplit)
    alone = KFoldEnsemble(make_pipeline(_net()), cv=3, random_state=0).fit(X, y)
    assert alone.predict(X).shape == (90,)  # a pipeline of the network alone
    with pytest.raises(ValueError, match="sample_weight"):
        pipe.fit(X, y, sample_weight=np.ones(5))  # routed to the network, which rejects it
    blocks = {"a": X[:, :2].astype(np.float32), "b": X[:, 2:].astype(np.float32)}
    model = KFoldEnsemble(_net(), cv=3, random_state=0).fit(blocks, y)
    assert model.predict(blocks).shape == (90,)
    as_blocks = ModalityBlocks(blocks)
    np.testing.assert_allclose(model.predict(as_blocks), model.predict(blocks))


def test_pickles_clones_and_grid_searches():
    X, y = load_diabetes(return_X_y=True)
    model = KFoldEnsemble(_net(tasks=["regression"]), cv=2, random_state=0).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    np.testing.assert_allclose(joblib.load(buffer).predict(X), model.predict(X))
    fresh = clone(model)
    assert not hasattr(fresh, "estimators_")
    assert fresh.get_params()["estimator__max_epochs"] == 15
    search = GridSearchCV(KFoldEnsemble(_net(tasks=["regression"]), cv=2, random_state=0),
                          {"estimator__lr": [1e-3, 3e-3]}, cv=2).fit(X, y)
    assert search.best_params_["estimator__lr"] in (1e-3, 3e-3)


def test_bad_inputs_fail_clearly():
    X, y = load_diabetes(return_X_y=True)
    with pytest.raises(TypeError, match="MultiTaskNet.*LogisticRegression"):
        KFoldEnsemble(LogisticRegression()).fit(X, y > 150)
    with pytest.raises(InvalidParameterError, match="cv"):
        KFoldEnsemble(_net(tasks=["regression"]), cv=1).fit(X, y)
    with pytest.raises(ValueError, match="empty dict"):
        KFoldEnsemble(_net()).fit({}, y)
    with pytest.raises(NotFittedError):
        KFoldEnsemble(_net()).predict(X)
    y_one = np.full(len(y), np.nan)
    y_one[0] = 1.0
    with pytest.raises(ValueError, match="no labelled row"):  # the member without it says so
        KFoldEnsemble(_net(tasks=["regression"]), cv=5, random_state=0).fit(X, y_one)


def test_a_class_in_one_fold_only_is_known_to_every_member():
    """Members learn the classes from all rows given to fit, so their probabilities align."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.array(["a", "b"] * 30, dtype=object)
    y[5] = "rare"  # in one member's validation fold only
    model = KFoldEnsemble(_net(max_epochs=3), cv=3, random_state=0).fit(X, y)
    for member in model.estimators_:
        np.testing.assert_array_equal(member.classes_, ["a", "b", "rare"])
    assert model.predict_proba(X[:4]).shape == (4, 3)
    np.testing.assert_allclose(model.predict_proba(X[:4]).sum(1), 1.0, rtol=1e-6)


def test_parallel_members_give_the_same_ensemble():
    """``n_jobs`` only changes where members train: the docs' claim of the same ensemble."""
    X, y = load_diabetes(return_X_y=True)
    one = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=0).fit(X, y)
    two = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=0, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
