"""MultiTaskNet: targets, masks, weights, the scikit-learn contract, pickling, bad input."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Checkpoint, EarlyStopping, LRScheduler, ProgressBar

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.tasks import infer_task_kind, is_missing, make_task

SMALL = {"max_epochs": 3, "batch_size": 32, "module__hidden_sizes": (32,),
         "module__tower_sizes": (16,)}


def make_data(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 6).astype(np.float32)
    Y = pd.DataFrame({
        "flag": np.where(X[:, 0] + 0.3 * rng.randn(n) > 0, "yes", "no"),
        "level": np.digitize(X[:, 1], [-0.7, 0.0, 0.7]),
        "value": 3.0 * X[:, 2] - X[:, 3] + 0.1 * rng.randn(n) + 10.0,
    })
    return X, Y


# scikit-learn's common checks of MultiTaskNet run in test_common.py with the other estimators.


@pytest.fixture(scope="module")
def small_fit():
    """``make_data()`` and a small MultiTaskNet fitted on it, shared by read-only tests."""
    X, Y = make_data()
    return X, Y, MultiTaskNet(**SMALL, random_state=0).fit(X, Y)


# -- task inference and encoding ---------------------------------------------------------------
@pytest.mark.parametrize(("values", "kind"), [
    (np.array([0.5, 1.2, 3.3]), "regression"),
    (np.array([1.0, 2.0, 1.0]), "binary"),
    (np.array([0, 1, 2, 1]), "multiclass"),
    (np.array(["a", "b", None], dtype=object), "binary"),
    (np.array(["a", "b", "c"], dtype=object), "multiclass"),
    (np.array([True, False]), "binary"),
    (np.array([1.0, np.nan, 2.5]), "regression"),
])
def test_infer_task_kind(values, kind):
    assert infer_task_kind(values) == kind


def test_is_missing_handles_none_nan_and_pandas_na():
    # .to_numpy(dtype=object) keeps pd.NA (a plain .to_numpy() gives float NaN in pandas 3)
    values = pd.array([1, None, 3], dtype="Int64").to_numpy(dtype=object)
    assert values[1] is pd.NA
    assert is_missing(values).tolist() == [False, True, False]
    assert is_missing(np.array(["a", pd.NA, pd.NaT], dtype=object)).tolist() == [False, True,
                                                                                True]
    assert is_missing(np.array(["a", None, np.nan], dtype=object)).tolist() == [False, True, True]


def test_classification_encoding_keeps_original_labels_and_masks():
    task = make_task("t", None, np.array(["b", "a", None, "c"], dtype=object))
    assert task.kind == "multiclass"
    assert task.classes_.tolist() == ["a", "b", "c"]
    target, mask = task.encode(np.array(["c", None, "a"], dtype=object))
    assert target.tolist() == [2.0, 0.0, 0.0]
    assert mask.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="labels \\['z'\\] were not seen at fit"):
        task.encode(np.array(["z"], dtype=object))


def test_regression_encoding_standardises_and_decodes():
    task = make_task("r", "regression", np.array([1.0, 3.0, np.nan]))
    target, mask = task.encode(np.array([1.0, 3.0, np.nan]))
    np.testing.assert_allclose(target[:2], [-1.0, 1.0])
    assert mask.tolist() == [True, True, False]
    np.testing.assert_allclose(task.decode(np.array([[-1.0], [1.0]])), [1.0, 3.0])


# -- fitting, predicting, scoring --------------------------------------------------------------
def test_fit_predict_mixed_tasks_dataframe():
    X, Y = make_data()
    net = MultiTaskNet(max_epochs=15, random_state=0, tasks={"value": "regression"}).fit(X, Y)
    assert net.task_names_ == ["flag", "level", "value"]
    assert [t.kind for t in net.tasks_.values()] == ["binary", "multiclass", "regression"]
    pred = net.predict(X)
    assert pred.shape == (300, 3) and pred.dtype == object
    assert set(pred[:, 0]) <= {"yes", "no"}
    proba = net.predict_proba(X)
    assert [p.shape for p in proba] == [(300, 2), (300, 4)]
    np.testing.assert_allclose(proba[1].sum(1), 1.0, rtol=1e-6)
    assert net.classes_[0].tolist() == ["no", "yes"] and net.classes_[2] is None
    scores = net.score_tasks(X, Y)
    assert scores["flag"] > 0.8 and scores["level"] > 0.6 and scores["value"] > 0.8
    assert net.score(X, Y) == pytest.approx(np.mean(list(scores.values())))


def test_array_targets_get_task_names_and_1d_target_stays_1d():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL, random_state=0).fit(X, Y[["level", "value"]].to_numpy())
    assert net.task_names_ == ["task_0", "task_1"]
    y = Y["level"].to_numpy()
    single = MultiTaskNet(**SMALL, random_state=0).fit(X, y)
    assert single.predict(X).shape == (300,)
    assert single.predict_proba(X).shape == (300, 4)
    assert single.classes_.tolist() == [0, 1, 2, 3]


def test_regression_only_net_has_no_predict_proba():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL).fit(X, Y["value"].to_numpy())
    assert not hasattr(net, "predict_proba")


def test_missing_labels_are_masked_not_dropped():
    X, Y = make_data()
    Y = Y.astype({"value": float})
    Y.loc[::2, "value"] = np.nan  # half the rows lack a value label
    Y["flag"] = Y["flag"].astype(object)
    Y.loc[1::4, "flag"] = None
    net = MultiTaskNet(max_epochs=15, random_state=0).fit(X, Y)
    scores = net.score_tasks(X, Y)  # scored on labelled rows only
    assert scores["value"] > 0.8 and scores["flag"] > 0.8
    # a row with no label at all for one task still trains the others
    target, mask = net.tasks_["value"].encode(Y["value"].to_numpy())
    assert mask.sum() == 150


def test_task_without_any_label_is_an_error():
    X, Y = make_data()
    Y["empty"] = np.nan
    with pytest.raises(ValueError, match="Task 'empty' has no labelled row"):
        MultiTaskNet(**SMALL).fit(X, Y)


def test_loss_weights_change_training_and_are_validated(small_fit):
    X, Y, a = small_fit
    b = MultiTaskNet(**SMALL, random_state=0, loss_weights={"value": 0.0}).fit(X, Y)
    c = MultiTaskNet(**SMALL, random_state=0, loss_weights=[1.0, 1.0, 0.0]).fit(X, Y)
    assert not np.allclose(a.forward_outputs(X)[2], b.forward_outputs(X)[2])
    np.testing.assert_allclose(b.forward_outputs(X)[2], c.forward_outputs(X)[2])
    assert b.history[-1, "weight_value"] == 0.0
    with pytest.raises(ValueError, match="loss_weights names \\['nope'\\]"):
        MultiTaskNet(**SMALL, loss_weights={"nope": 1.0}).fit(X, Y)
    with pytest.raises(ValueError, match="loss weight of task 'flag' must be finite"):
        MultiTaskNet(**SMALL, loss_weights={"flag": -1.0}).fit(X, Y)
    with pytest.raises(ValueError, match="must be finite"):
        MultiTaskNet(**SMALL, loss_weights={"flag": np.inf}).fit(X, Y)
    with pytest.raises(ValueError, match="has 2 entries but there are 3 tasks"):
        MultiTaskNet(**SMALL, loss_weights=[1.0, 2.0]).fit(X, Y)


def test_history_records_per_task_losses_and_metrics():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL, train_split=0.25, random_state=0).fit(X, Y)
    last = net.history[-1]
    for key in ("train_loss", "valid_loss", "valid_score", "train_loss_flag", "valid_loss_value",
                "valid_acc_flag", "valid_acc_level", "valid_r2_value", "weight_level"):
        assert np.isfinite(last[key]), key
    assert len(net.history) == 3
    # 225 rows in batches of 32 leave one row over: it joins the last batch (never a batch of 1)
    assert net.history[-1, "train_batch_count"] == 7


def test_random_state_makes_runs_reproducible_and_restores_global_rng():
    X, Y = make_data()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = MultiTaskNet(**SMALL, random_state=7).fit(X, Y)
    after = torch.rand(1)
    b = MultiTaskNet(**SMALL, random_state=7).fit(X, Y)
    np.testing.assert_array_equal(a.forward_outputs(X)[2], b.forward_outputs(X)[2])
    assert torch.equal(before, after)


def test_module_params_are_routed():
    X, Y = make_data()
    net = MultiTaskNet(**{**SMALL, "module__hidden_sizes": (8, 4)}, module__dropout=0.1).fit(X, Y)
    linears = [m for m in net.module_.architecture.trunk if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [8, 4]
    with pytest.raises(ValueError, match="does not take \\['module__nope'\\]"):
        MultiTaskNet(**SMALL, module__nope=1).fit(X, Y)


def test_warm_start_and_partial_fit_continue_training():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL, random_state=0).fit(X, Y)
    first = net.module_
    net.partial_fit(X, Y)
    assert net.module_ is first and len(net.history) == 6
    net.set_params(warm_start=True).fit(X, Y)
    assert len(net.history) == 9


# -- scikit-learn composition ------------------------------------------------------------------
def test_pipeline_and_gridsearch_over_loss_weights():
    X, Y = make_data()
    pipe = make_pipeline(StandardScaler(), MultiTaskNet(**SMALL, random_state=0))
    grid = GridSearchCV(pipe, {
        "multitasknet__loss_weights": [{"value": w} for w in (0.1, 1.0)],
        "multitasknet__lr": [1e-3, 1e-2],
        "multitasknet__module__hidden_sizes": [(16,), (32,)],
    }, cv=2)
    grid.fit(X, Y)
    assert len(grid.cv_results_["params"]) == 8
    assert grid.best_estimator_.predict(X).shape == (300, 3)
    assert np.isfinite(grid.best_score_)


def test_clone_and_get_set_params_round_trip():
    net = MultiTaskNet(loss_weights={"a": 2.0}, module__hidden_sizes=(8,),
                       optimizer__weight_decay=0.1)
    params = net.get_params()
    assert params["module__hidden_sizes"] == (8,)
    cloned = clone(net)
    assert cloned.get_params()["loss_weights"] == {"a": 2.0}
    assert cloned.optimizer__weight_decay == 0.1
    cloned.set_params(loss_weights=None, module__hidden_sizes=(4,))
    assert cloned.module__hidden_sizes == (4,)


def test_joblib_round_trip_gives_identical_predictions(tmp_path, small_fit):
    X, Y, net = small_fit
    path = tmp_path / "net.joblib"
    joblib.dump(net, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.device == "auto" and loaded.device_.type in {"cpu", "cuda"}
    pipe = make_pipeline(StandardScaler(), MultiTaskNet(**SMALL, random_state=0)).fit(X, Y)
    buffer = io.BytesIO()
    joblib.dump(pipe, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict(X), pipe.predict(X))


def test_skorch_callbacks_work(tmp_path):
    X, Y = make_data()
    checkpoint = Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best")
    net = MultiTaskNet(
        max_epochs=50, batch_size=32, train_split=0.25, random_state=0,
        callbacks=[
            EarlyStopping(patience=2, threshold=10.0),
            checkpoint,
            LRScheduler("StepLR", step_size=1, gamma=0.5),
            ProgressBar(),
        ],
    ).fit(X, Y)
    assert len(net.history) < 50  # early stopping fired
    assert (tmp_path / "params.pt").exists()
    assert net.optimizer_.param_groups[0]["lr"] < 1e-3
    before = net.forward_outputs(X)[2]
    fresh = MultiTaskNet(max_epochs=1, batch_size=32, train_split=0.25, random_state=1).fit(X, Y)
    fresh.load_params(checkpoint=checkpoint)  # the best epoch's weights
    assert not np.allclose(fresh.forward_outputs(X)[2], MultiTaskNet(
        max_epochs=1, batch_size=32, random_state=1).fit(X, Y).forward_outputs(X)[2])
    net.save_params(f_params=str(tmp_path / "last.pt"))
    fresh.load_params(f_params=str(tmp_path / "last.pt"))
    np.testing.assert_allclose(fresh.forward_outputs(X)[2], before, rtol=1e-6)
    never_fitted = MultiTaskNet()
    never_fitted.load_params(f_params=str(tmp_path / "last.pt"))  # reads last.pt.layout
    np.testing.assert_allclose(never_fitted.forward_outputs(X)[2], before, rtol=1e-6)
    (tmp_path / "last.pt.layout").unlink()
    with pytest.raises(RuntimeError, match="needs the tasks and input layout"):
        MultiTaskNet().load_params(f_params=str(tmp_path / "last.pt"))


def test_verbose_prints_per_task_columns(capsys):
    X, Y = make_data()
    MultiTaskNet(**SMALL, verbose=2, train_split=0.2).fit(X, Y)
    out = capsys.readouterr().out
    assert "valid_acc_flag" in out and "train_loss_value" in out


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "match"), [
    ({"tasks": {"flag": "ordinal"}}, "Unknown kind 'ordinal' for task 'flag'"),
    ({"tasks": {"nope": "binary"}}, "tasks names \\['nope'\\]"),
    ({"tasks": {"level": "binary"}}, "declared 'binary' but has 4 classes"),
    ({"tasks": {"flag": "regression"}}, "regression task but its targets are not numeric"),
    ({"device": "tpu9"}, "Unknown device 'tpu9'"),
    ({"max_epochs": 0}, "max_epochs must be a positive integer"),
    ({"batch_size": -3}, "batch_size must be a positive integer"),
    ({"architecture": "nope"}, "Unknown architecture 'nope'"),
    ({"weighting": "nope"}, "Unknown weighting 'nope'"),
])
def test_bad_parameters_fail_clearly(params, match):
    X, Y = make_data()
    with pytest.raises(ValueError, match=match):
        MultiTaskNet(**{**SMALL, **params}).fit(X, Y)


def test_bad_inputs_fail_clearly():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL)
    with pytest.raises(ValueError, match="X has 300 samples but the target of task 'flag' has 299"):
        net.fit(X, Y.iloc[:299])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.fit(bad, Y)
    with pytest.raises(ValueError, match="X holds strings .*TextFeatures"):
        net.fit(np.array([["a", "b"]] * 300, dtype=object), Y)
    with pytest.raises(ValueError, match="0 sample"):
        net.fit(np.empty((0, 6)), Y.iloc[:0])
    with pytest.raises(NotFittedError):
        MultiTaskNet().predict(X)
    net.fit(X, Y)
    with pytest.raises(ValueError, match="X has 5 features, but MultiTaskNet is expecting 6"):
        net.predict(X[:, :5])
    with pytest.raises(ValueError, match="requires y to be passed"):
        MultiTaskNet(**SMALL).fit(X)


def test_failed_fit_leaves_previous_model_intact():
    X, Y = make_data()
    net = MultiTaskNet(**SMALL, random_state=0).fit(X, Y)
    before = net.predict(X)
    with pytest.raises(ValueError):
        net.fit(X, Y.iloc[:10])
    with pytest.raises(ValueError):
        net.set_params(loss_weights={"nope": 1.0}).fit(X, Y.iloc[:, :2])
    assert net.task_names_ == ["flag", "level", "value"]
    np.testing.assert_array_equal(net.predict(X), before)


# -- several blocks without a fusion step -----------------------------------------------------
def test_dict_of_blocks_with_missing_modality_rows():
    rng = np.random.RandomState(0)
    n = 200
    a = rng.randn(n, 4).astype(np.float32)
    b = rng.randn(n, 5, 3).astype(np.float32)
    b[::5] = np.nan  # absent modality in every fifth row
    y = (a[:, 0] > 0).astype(int)
    for fusion in ("concat", "attention", "gated", "late"):
        net = MultiTaskNet(**SMALL, fusion=fusion, random_state=0).fit({"a": a, "b": b}, y)
        assert net.predict({"a": a, "b": b}).shape == (n,)
        w = net.modality_weights({"a": a, "b": b})
        assert w.shape == (n, 2)
        np.testing.assert_allclose(w[::5, 1], 0.0)
    with pytest.raises(ValueError, match="Blocks \\['b'\\] were present at fit"):
        net.predict({"a": a})
    with pytest.raises(ValueError, match="Block 'b' has per-row shape"):
        net.predict({"a": a, "b": b[:, :4]})


def test_prefixed_feature_names_become_blocks():
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(120, 5).astype(np.float32),
                     columns=["img__a", "img__b", "txt__a", "txt__b", "txt__c"])
    y = (X["img__a"] > 0).astype(int)
    net = MultiTaskNet(**SMALL, fusion="attention", random_state=0).fit(X, y)
    assert net.layout_.names == ["img", "txt"]
    assert net.modality_weights(X).shape == (120, 2)
    assert net.n_features_in_ == 5
    plain = MultiTaskNet(**SMALL).fit(X.to_numpy(), y)
    assert plain.layout_.names == ["X"]


def test_attention_weights_of_task_attention():
    rng = np.random.RandomState(0)
    blocks = {"a": rng.randn(80, 4).astype(np.float32), "b": rng.randn(80, 3).astype(np.float32)}
    blocks["b"][:10] = np.nan
    Y = np.column_stack([(blocks["a"][:, 0] > 0), rng.randint(0, 3, 80)]).astype(int)
    net = MultiTaskNet(max_epochs=2, architecture="task_attention", random_state=0)
    net.fit(blocks, Y)
    w = net.attention_weights(blocks)
    assert w.shape[:2] == (80, 2) and w.shape[2] == 2
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w[:10, :, 1], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="attention_weights needs architecture='task_attention'"):
        MultiTaskNet(max_epochs=1).fit(blocks, Y).attention_weights(blocks)


@pytest.mark.slow
def test_block_loss_weight_teaches_each_block_to_stand_alone():
    rng = np.random.RandomState(0)
    n = 400
    y = rng.randint(0, 2, n)
    strong = (y[:, None] * 2.0 - 1.0 + 0.3 * rng.randn(n, 3)).astype(np.float32)
    weak = (y[:, None] * 2.0 - 1.0 + 1.0 * rng.randn(n, 3)).astype(np.float32)
    blocks = {"strong": strong, "weak": weak}
    no_strong = {"strong": np.full_like(strong, np.nan), "weak": weak}

    def fit(**params):
        # the wide path and modality dropout also teach each block alone: switch them off
        # to isolate the block loss
        return MultiTaskNet(max_epochs=20, fusion="late", random_state=0, module__wide=False,
                            module__modality_dropout=0.0, **params).fit(blocks, y)

    plain, supervised = fit(module__block_loss_weight=0.0), fit(module__block_loss_weight=1.0)
    assert supervised.score(blocks, y) > 0.9
    # the weak block's own head learns to predict; without the block loss it barely trains
    assert supervised.score(no_strong, y) > plain.score(no_strong, y)
    assert supervised.score(no_strong, y) > 0.75
