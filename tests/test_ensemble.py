"""KFoldEnsemble: members stop on their own fold, predictions average them."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtml import (
    KFoldEnsemble,
    LateFusionClassifier,
    ModalityBlocks,
    ModalityFusion,
    MultiTaskNet,
    TaskInferenceWarning,
)
from sklearn_mtml.ensemble import FoldSplit
from sklearn_mtml.features import TextFeatures


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


@pytest.mark.parametrize("blend", [None, "forest"])
def test_same_random_state_same_ensemble(blend):
    X, y = load_diabetes(return_X_y=True)
    a = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=3, blend=blend).fit(X, y)
    b = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=3, blend=blend).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if blend is not None:  # the forest is seeded by random_state too
        np.testing.assert_array_equal(a.blend_estimators_["task_0"].predict(X),
                                      b.blend_estimators_["task_0"].predict(X))


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


# ----------------------------------------------------------------------------------------
# blend: a scikit-learn model mixed in per task, with a share chosen out of fold
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blended(mixed):
    X, Y, _ = mixed
    model = KFoldEnsemble(_net(tasks={"sign": "binary", "level": "multiclass",
                                      "value": "regression"}),
                          cv=3, random_state=0, blend="linear").fit(X, Y)
    return X, Y, model


def _calibrated(proba, temperature):
    """Temperature scaling, written out: ``p ** (1 / T)``, renormalised."""
    scaled = np.clip(proba, 1e-12, 1.0) ** (1.0 / temperature)
    return scaled / scaled.sum(axis=1, keepdims=True)


def test_blend_predicts_the_chosen_mix_of_networks_and_model(blended):
    X, Y, model = blended
    assert set(model.blend_weights_) == set(model.blend_estimators_) == {"sign", "level",
                                                                         "value"}
    assert model.blend_temperatures_["value"] == {"networks": 1.0, "model": 1.0}
    members = [m.predict_proba(X) for m in model.estimators_]
    for i, name in enumerate(["sign", "level"]):
        share, temperature = model.blend_weights_[name], model.blend_temperatures_[name]
        assert share in np.round(np.linspace(0, 1, 21), 2)
        lr = model.blend_estimators_[name]
        # the model learned class indices into classes_: its columns are the classes' order
        np.testing.assert_array_equal(lr.classes_, np.arange(len(model.classes_[i])))
        networks = _calibrated(np.mean([p[i] for p in members], axis=0),
                               temperature["networks"])
        expected = (share * networks
                    + (1 - share) * _calibrated(lr.predict_proba(X), temperature["model"]))
        np.testing.assert_allclose(model.predict_proba(X)[i], expected, rtol=1e-5, atol=1e-7)
    share = model.blend_weights_["value"]
    values = np.mean([m.predict(X)[:, 2].astype(float) for m in model.estimators_], axis=0)
    expected = share * values + (1 - share) * model.blend_estimators_["value"].predict(X)
    np.testing.assert_allclose(model.predict(X)[:, 2].astype(float), expected, rtol=1e-6)
    # the value task's model was fitted on its labelled rows only
    assert model.blend_estimators_["value"][-1].n_features_in_ == X.shape[1]
    labelled = Y["value"].notna().to_numpy()
    refit = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    refit.fit(X[labelled], Y["value"][labelled])
    np.testing.assert_allclose(model.blend_estimators_["value"].predict(X), refit.predict(X),
                               rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_blend_out_of_fold_score_is_at_least_either_part_on_real_data(seed):
    """The shares 0 and 1 are candidates, so the chosen mix's out-of-fold squared error is
    at most either part's: its R² on the same rows is at least theirs, for any seed."""
    X, y = load_diabetes(return_X_y=True)
    model = KFoldEnsemble(_net(tasks=["regression"]), cv=4, random_state=seed,
                          blend="forest").fit(X, y)
    scores = model.oof_scores_["task_0"]
    assert scores["blend"] >= max(scores["networks"], scores["model"]) - 1e-12
    assert 0.2 < scores["networks"] < 0.7 and 0.2 < scores["model"] < 0.7  # both learned


def test_blend_share_goes_to_the_better_part():
    """A step the forest captures and a network that cannot train: the forest's share; a
    model that predicts the mean and a network that learned: the networks' share."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.where(X[:, 0] > 0.3, 5.0, 0.0) + 0.1 * rng.normal(size=300)
    frozen = KFoldEnsemble(_net(tasks=["regression"], lr=1e-7, max_epochs=2), cv=3,
                           random_state=0, blend="forest").fit(X, y)
    assert frozen.blend_weights_["task_0"] <= 0.2
    assert frozen.score(X, y) > 0.9
    learned = KFoldEnsemble(_net(tasks=["regression"]), cv=3, random_state=0,
                            blend=DummyRegressor()).fit(X, y)
    assert learned.blend_weights_["task_0"] >= 0.8
    assert learned.oof_scores_["task_0"]["model"] <= 0.0


def test_blend_per_task_dict_sample_weight_and_refit():
    X, Y, _ = _three_tasks()
    weight = np.linspace(0.5, 2.0, len(X))
    model = KFoldEnsemble(_net(tasks={"sign": "binary", "level": "multiclass",
                                      "value": "regression"}),
                          cv=3, random_state=0,
                          blend={"value": make_pipeline(StandardScaler(), Ridge()),
                                 "sign": None})
    model.fit(X, Y, sample_weight=weight)
    assert set(model.blend_weights_) == {"value"}  # None and absent tasks are not blended
    direct = make_pipeline(StandardScaler(), Ridge()).fit(X, Y["value"],
                                                          ridge__sample_weight=weight)
    np.testing.assert_allclose(model.blend_estimators_["value"][-1].coef_,
                               direct[-1].coef_, rtol=1e-6)
    model.set_params(blend=None).fit(X, Y)  # a refit without blend forgets the former one
    for name in ("blend_weights_", "blend_estimators_", "blend_temperatures_", "oof_scores_"):
        assert not hasattr(model, name)


def test_blend_with_a_class_missing_from_a_fold_keeps_probabilities_aligned():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.array(["a", "b"] * 30, dtype=object)
    y[5] = "rare"  # absent from the training rows of one split
    model = KFoldEnsemble(_net(max_epochs=3), cv=3, random_state=0, blend="forest").fit(X, y)
    proba = model.predict_proba(X[:4])
    assert proba.shape == (4, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)


def _networks_proba(model, X):
    """The members' mean class probabilities (a single classification task)."""
    return np.mean([m.predict_proba(X) for m in model.estimators_], axis=0)


def test_blend_shortcut_on_blocks_fits_one_model_per_block_of_features():
    """On a block input a shortcut fits one model per block of features (token ids are left
    to the networks) on the rows that have it, averages them over the blocks each row has,
    and a row with none of them keeps the networks alone."""
    rng = np.random.default_rng(0)
    n = 180
    a = rng.normal(size=(n, 3)).astype(np.float32)
    b = rng.normal(size=(n, 2)).astype(np.float32)
    y = (a[:, 0] + b[:, 0] > 0).astype(int)
    has_b = rng.random(n) > 0.2
    Xb = ModalityBlocks({"a": a, "b": b, "ids": rng.integers(1, 5, size=(n, 2))},
                        masks={"b": has_b}, vocab_sizes={"ids": 5})
    frozen = _net(max_epochs=2, lr=1e-7)  # networks near the prior: the model's share
    model = KFoldEnsemble(frozen, cv=3, random_state=0, blend="linear").fit(Xb, y)
    late = model.blend_estimators_["task_0"]
    assert isinstance(late, LateFusionClassifier) and late.block_names_ == ["a", "b"]
    assert late.estimators_["b"][0].n_samples_seen_ == has_b.sum()  # its rows only
    share, temperature = model.blend_weights_["task_0"], model.blend_temperatures_["task_0"]
    assert share <= 0.5
    masks = {"a": np.arange(20) >= 5, "b": np.arange(20) >= 10}  # rows 0-4: no feature block
    Xt = ModalityBlocks(Xb[:20], masks=masks)
    networks = _calibrated(_networks_proba(model, Xt), temperature["networks"])
    expected = networks.copy()
    feature_blocks = ModalityBlocks({"a": a[5:20], "b": b[5:20]},
                                    masks={k: m[5:] for k, m in masks.items()})
    late_proba = _calibrated(late.predict_proba(feature_blocks), temperature["model"])
    expected[5:] = share * networks[5:] + (1 - share) * late_proba
    np.testing.assert_allclose(model.predict_proba(Xt), expected, rtol=1e-6)
    assert model.score(Xb, y) > 0.75  # the prior: 0.5; each block holds half the signal
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(Xt), model.predict_proba(Xt))


def test_blend_shortcut_reads_the_features_of_the_pipeline():
    """With a pipeline, a shortcut reads what its feature steps give the network: here one
    model per modality, so that a row whose text is missing is predicted from the number."""
    rng = np.random.default_rng(1)
    n = 150
    word = rng.choice(["good", "bad"], size=n)
    x = rng.normal(size=n)
    df = pd.DataFrame({"text": [f"{w} item {i % 7}" for i, w in enumerate(word)], "x": x})
    y = ((word == "good").astype(float) + x > 0.5).astype(int)
    fusion = ModalityFusion([("text", TextFeatures(), "text"), ("num", "passthrough", ["x"])])
    pipe = make_pipeline(fusion, _net(max_epochs=2, lr=1e-7))
    model = KFoldEnsemble(pipe, cv=3, random_state=0, blend="linear").fit(df, y)
    late = model.blend_estimators_["task_0"]
    assert isinstance(late, LateFusionClassifier) and late.block_names_ == ["text", "num"]
    test = df.iloc[:10].copy()
    test.loc[:4, "text"] = None  # absent text: the number alone
    features = model.estimators_[0][:-1].transform(test)
    assert features.masks["text"].sum() == 5
    share, temperature = model.blend_weights_["task_0"], model.blend_temperatures_["task_0"]
    expected = (share * _calibrated(_networks_proba(model, test), temperature["networks"])
                + (1 - share) * _calibrated(late.predict_proba(features), temperature["model"]))
    np.testing.assert_allclose(model.predict_proba(test), expected, rtol=1e-6)
    assert share <= 0.5 and model.score(df, y) > 0.85


def test_blend_bad_inputs_fail_clearly():
    X, Y, tasks = _three_tasks()
    net = _net(tasks=tasks, max_epochs=2)
    with pytest.raises(ValueError, match=r"blend names tasks \['price'\].*'sign'"):
        KFoldEnsemble(net, cv=2, blend={"price": "forest"}).fit(X, Y)
    with pytest.raises(ValueError, match="'trees'.*'forest'"):
        KFoldEnsemble(net, cv=2, blend={"value": "trees"}).fit(X, Y)
    with pytest.raises(InvalidParameterError, match="blend"):
        KFoldEnsemble(net, cv=2, blend="trees").fit(X, Y)
    with pytest.raises(TypeError, match="'sign' is a binary task.*LinearSVC has none"):
        KFoldEnsemble(net, cv=2, blend={"sign": LinearSVC()}).fit(X, Y)
    with pytest.raises(TypeError, match="'value' is a regression task.*classifier"):
        KFoldEnsemble(net, cv=2, blend={"value": LogisticRegression()}).fit(X, Y)
    with pytest.raises(ValueError, match="blend='forest' needs a 2-D X.*got 3"):
        KFoldEnsemble(net, cv=2, blend="forest").fit(X.reshape(120, 2, 2), Y)
    tokens = ModalityBlocks({"ids": np.arange(240).reshape(120, 2) % 7},
                            vocab_sizes={"ids": 7})
    with pytest.raises(ValueError, match="blend='boosting'.*\\['ids'\\].*token ids"):
        KFoldEnsemble(net, cv=2, blend="boosting").fit(tokens, Y)
    text = pd.DataFrame({"words": ["a b", "c"] * 60, "n": np.arange(120.0)})
    with pytest.raises(TypeError, match="blend='linear'.*DataFrame.*pipeline.*make_pipeline"):
        KFoldEnsemble(net, cv=2, blend="linear").fit(text, Y)


def _three_tasks():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 4))
    Y = pd.DataFrame({"sign": (X[:, 0] > 0).astype(int),
                      "level": np.digitize(X[:, 1], [-0.5, 0.5]),
                      "value": X[:, 2] + 0.1 * rng.normal(size=120)})
    return X, Y, {"sign": "binary", "level": "multiclass", "value": "regression"}


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_a_warning_of_every_member_is_given_once(n_jobs):
    X, y = load_diabetes(return_X_y=True)  # whole numbers in a float column: inferred
    with pytest.warns(TaskInferenceWarning) as record:
        KFoldEnsemble(_net(max_epochs=2), cv=3, random_state=0, n_jobs=n_jobs).fit(X, y)
    inferred = [w for w in record if issubclass(w.category, TaskInferenceWarning)]
    assert len(inferred) == 1
    assert "'task_0'" in str(inferred[0].message)


def test_blend_share_tie_keeps_the_networks_and_reads_as_a_round_number():
    from sklearn_mtml.ensemble import _SHARES, _choose_share

    task = MultiTaskNet(tasks=["regression"], max_epochs=1).fit(
        np.zeros((8, 1), np.float32), np.arange(8.0)).tasks_["task_0"]
    target = np.arange(8.0)
    same = target + 1.0
    assert _choose_share(task, target, same, same, None) == 1.0  # equal losses: networks
    assert _choose_share(task, target, target + 3.0, target, None) == 0.0
    assert _choose_share(task, target, target + 1.0, target - 1.0, None) == 0.5
    assert 0.15 in _SHARES and 0.35 in _SHARES  # exact, as blend_weights_ shows them


def test_temperature_sharpens_soft_probabilities_and_softens_overconfident_ones():
    from sklearn_mtml.ensemble import _calibrate, _fit_temperature

    task = MultiTaskNet(tasks=["multiclass"], max_epochs=1).fit(
        np.zeros((6, 1), np.float32), np.arange(6) % 3).tasks_["task_0"]
    target = np.arange(30) % 3
    soft = np.full((30, 3), 0.3)
    soft[np.arange(30), target] = 0.4  # always right, never sure: sharper is better
    assert _fit_temperature(task, target, soft, None) < 1.0
    sure = np.full((30, 3), 0.005)
    sure[np.arange(30), (target + (np.arange(30) % 5 == 0)) % 3] = 0.99  # wrong in 1 of 5
    assert _fit_temperature(task, target, sure, None) > 1.0
    assert _fit_temperature(task, target, np.full((30, 3), 1 / 3), None) == 1.0  # a tie
    calibrated = _calibrate(soft, 0.1)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), target)  # labels unchanged
    values = np.arange(5.0)
    assert _calibrate(values, 0.5) is values  # a regression task's values: as they are


class _SoftClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression whose probabilities are flattened (``p ** 0.1``): accurate but
    never sure, as a forest's averaged votes are."""

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit(X, y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        proba = self.lr_.predict_proba(X) ** 0.1
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_blend_calibration_gives_an_accurate_but_soft_model_its_share(monkeypatch):
    """Uncalibrated, the log-loss of soft probabilities hides a better accuracy and the
    networks keep the whole share; calibrated, the model gets the share it earns."""
    import sklearn_mtml.ensemble as ensemble

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.6, 0.6])  # three classes, linear borders
    net = _net(tasks=["multiclass"])
    model = KFoldEnsemble(net, cv=3, random_state=0, blend=_SoftClassifier()).fit(X, y)
    scores = model.oof_scores_["task_0"]
    assert scores["model"] > scores["networks"] + 0.01  # 0.02-0.05 under seeds 0-3
    assert model.blend_temperatures_["task_0"]["model"] <= 0.1
    assert model.blend_weights_["task_0"] <= 0.3
    assert scores["blend"] > scores["networks"] + 0.01
    monkeypatch.setattr(ensemble, "_fit_temperature", lambda *args: 1.0)
    uncalibrated = clone(model).fit(X, y)
    assert uncalibrated.blend_weights_["task_0"] >= 0.8
