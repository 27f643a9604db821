"""Each task's own best epoch (``EarlyStopping(task_epochs=True)``): rule, predictions, state."""

from __future__ import annotations

import io
import math

import joblib
import numpy as np
import pytest
import torch

from sklearn_mtml import MultiTaskNet
from sklearn_mtml._task_epochs import TaskEpochs
from sklearn_mtml.callbacks import EarlyStopping
from sklearn_mtml.model_selection import LossWeightSearchCV

TASKS = ["multiclass", "regression"]


def make_data(n, seed):
    """A 5-class task that needs many epochs, and a regression target of pure noise."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 40).astype(np.float32)
    signal = np.digitize(np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3],
                         [-1.2, -0.4, 0.4, 1.2])
    return X, np.column_stack([signal, rng.randn(n)])


def noise_net(seed, **params):
    # 900 validation rows: enough for the paired test to see the noise task overfit
    return MultiTaskNet(tasks=TASKS, random_state=seed, validation_fraction=0.3,
                        loss_weights=[1, 0.3], **params)


@pytest.fixture(scope="module")
def fitted():
    X, Y = make_data(3000, 0)
    return noise_net(0).fit(X, Y), make_data(2000, 100)


def test_tracker_keeps_a_clear_gain_and_not_noise():
    tracker = TaskEpochs(["a", "b"], threshold=1e-4, threshold_mode="rel", min_z=3.0)
    rng = np.random.RandomState(0)
    base = torch.tensor(rng.rand(400, 2) + 1.0, dtype=torch.float32)
    w = torch.ones(400, 2)
    states = {}

    def epoch(e, losses, shared_best):
        tracker.add_batch(losses, w)
        tracker.end_epoch(e, losses.mean(0).tolist(), shared_best,
                          lambda: states.setdefault(e, {"w": torch.tensor(float(e))}))

    # epoch 1: task "b" at its best; epoch 2: shared best, "b" clearly worse on every row,
    # "a" better by a hair on half of the rows (noise)
    epoch(1, base, True)
    later = base.clone()
    later[:, 1] += 0.3
    later[::2, 0] -= 1e-3
    later[1::2, 0] += 1e-3 * 0.999
    epoch(2, later, True)
    chosen = tracker.decide(tracker.paired_sums())
    assert set(chosen) == {"b"}
    epoch_b, z, state = chosen["b"]
    assert epoch_b == 1 and z > 1e3 and float(state["w"]) == 1.0
    # weights are kept for the tasks' best epochs only; per-row losses for those and the
    # shared best
    assert set(tracker.states) == {1} and set(tracker.rows) == {1, 2}


def test_tracker_with_unlabelled_rows_and_a_modest_gain():
    tracker = TaskEpochs(["a", "b"], threshold=1e-4, threshold_mode="rel", min_z=3.0)
    rng = np.random.RandomState(1)
    own = torch.tensor(rng.rand(200, 2), dtype=torch.float32)
    w = torch.ones(200, 2)
    w[100:, 1] = 0  # half of task b's rows unlabelled: they must not count
    tracker.add_batch(own, w)
    tracker.end_epoch(1, [0.5, 0.5], True, lambda: {})
    shared = own.clone()
    shared[:100, 1] += torch.tensor(rng.randn(100) * 0.5 + 0.05, dtype=torch.float32)
    shared[100:, 1] += 100.0  # unlabelled: ignored
    shared[:, 0] -= 0.1
    tracker.add_batch(shared, w)
    tracker.end_epoch(2, [0.4, 0.9], True, lambda: {})
    sums = tracker.paired_sums()
    assert float(sums[1, 2]) == 100  # Σw over task b's labelled rows only
    d = (shared[:100, 1] - own[:100, 1]).double()
    z = float(d.mean() / (d.std(unbiased=False) / math.sqrt(100)))
    assert z < 3
    assert tracker.decide(sums) == {}  # a gain within noise keeps the shared epoch


def test_noise_task_keeps_its_early_epoch_and_predicts_better(fitted):
    net, (X_test, Y_test) = fitted
    assert net.task_epochs_["task_1"] < net.best_epoch_
    assert set(net.task_states_) == set(net.task_epochs_)
    assert all(v.device.type == "cpu" for v in net.task_states_["task_1"].values())
    own = net.predict(X_test)
    states, epochs = net.task_states_, net.task_epochs_
    try:
        net.task_states_ = {}
        shared = net.predict(X_test)
    finally:
        net.task_states_ = states
    # a task that kept the shared epoch is untouched; the noise task is closer to the best
    # constant (0): by 0.08-0.17 in MSE at seeds 0-2, at 1 and 2 threads
    if "task_0" not in net.task_epochs_:
        np.testing.assert_array_equal(own[:, 0], shared[:, 0])
    mse_own = np.mean((own[:, 1].astype(float) - Y_test[:, 1]) ** 2)
    mse_shared = np.mean((shared[:, 1].astype(float) - Y_test[:, 1]) ** 2)
    assert mse_own < mse_shared - 0.02
    assert net.task_epochs_ is epochs


def test_kept_epochs_survive_pickle_and_save_load(fitted, tmp_path):
    net, (X_test, _) = fitted
    expected = net.predict_proba(X_test[:50])
    reg = net.forward_outputs(X_test[:50])[1]
    buf = io.BytesIO()
    joblib.dump(net, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert loaded.task_epochs_ == net.task_epochs_
    np.testing.assert_allclose(loaded.forward_outputs(X_test[:50])[1], reg, rtol=1e-6)
    path = tmp_path / "params.pt"
    net.save_params(f_params=path)
    fresh = MultiTaskNet(tasks=TASKS)
    fresh.initialize()
    fresh.load_params(f_params=path)
    assert fresh.task_epochs_ == net.task_epochs_
    np.testing.assert_allclose(fresh.forward_outputs(X_test[:50])[1], reg, rtol=1e-6)
    np.testing.assert_allclose(fresh.predict_proba(X_test[:50])[0], expected[0], rtol=1e-5)


def test_a_new_fit_forgets_the_kept_epochs(fitted):
    net, _ = fitted
    X, Y = make_data(3000, 0)
    again = noise_net(0, callbacks__early_stopping__task_epochs=False).fit(X, Y)
    assert again.task_epochs_ == {} and again.task_states_ == {}
    np.testing.assert_allclose(again.history[:, "valid_loss"], net.history[:, "valid_loss"],
                               rtol=1e-5)
    # partial_fit trains the weights on: the kept epochs of the last fit no longer apply
    clone_net = joblib.load(_dumped(net))
    clone_net.set_params(max_epochs=1, early_stopping=False)
    clone_net.partial_fit(X[:200], Y[:200])
    assert clone_net.task_epochs_ == {}


def _dumped(net):
    buf = io.BytesIO()
    joblib.dump(net, buf)
    buf.seek(0)
    return buf


def test_tracker_needs_enough_rows_for_the_test():
    # a clear gain on 60 rows: below min_rows, the shared epoch stays
    for rows, kept in ((60, set()), (100, {"b"})):
        tracker = TaskEpochs(["a", "b"], threshold=1e-4, threshold_mode="rel", min_z=2.0,
                             min_rows=100)
        losses = torch.ones(rows, 2)
        w = torch.ones(rows, 2)
        tracker.add_batch(losses, w)
        tracker.end_epoch(1, [1.0, 1.0], True, lambda: {})
        worse = losses.clone()
        worse[:, 1] += torch.linspace(0.2, 0.4, rows)
        worse[:, 0] -= 0.5
        tracker.add_batch(worse, w)
        tracker.end_epoch(2, [0.5, 1.3], True, lambda: {})
        assert set(tracker.decide(tracker.paired_sums())) == kept


@pytest.mark.parametrize("param, value, message", [
    ("task_epochs_z", -1, "task_epochs_z must be a non-negative number"),
    ("task_epochs_z", "3", "task_epochs_z must be a non-negative number"),
    ("task_epochs_z", True, "task_epochs_z must be a non-negative number"),
    ("task_epochs_min_rows", 1, "task_epochs_min_rows must be an integer of at least 2"),
    ("task_epochs_min_rows", 50.5, "task_epochs_min_rows must be an integer of at least 2"),
])
def test_bad_task_epochs_settings_are_refused(param, value, message):
    X, Y = make_data(200, 0)
    net = MultiTaskNet(tasks=TASKS, max_epochs=2, random_state=0,
                       **{f"callbacks__early_stopping__{param}": value})
    with pytest.raises(ValueError, match=message):
        net.fit(X, Y)


def test_a_single_task_keeps_nothing():
    X, Y = make_data(400, 0)
    single = MultiTaskNet(random_state=0, max_epochs=5).fit(X, Y[:, 1])
    assert single.task_epochs_ == {}
    es = dict(single.callbacks_)["early_stopping"]
    assert isinstance(es, EarlyStopping) and es.task_epochs


def test_stacked_search_keeps_the_same_epochs_as_separate_fits():
    X, Y = make_data(4000, 0)
    train, test = np.arange(3000), np.arange(3000, 4000)
    net = noise_net(0)
    search = LossWeightSearchCV(net, {"loss_weights": [[1, 0.3], [1, 0.2]]},
                                cv=[(train, test)], refit=False).fit(X, Y)
    assert search.n_stacked_passes_ == 1 and search.n_separate_fits_ == 0
    # each candidate as a separate fit: the same kept epoch, the same score
    for i, weights in enumerate([[1, 0.3], [1, 0.2]]):
        sep = noise_net(0).set_params(loss_weights=weights).fit(X[train], Y[train])
        assert sep.task_epochs_, "the noise task keeps its own epoch"
        stacked = search.cv_results_["split0_test_score"][i]
        np.testing.assert_allclose(stacked, sep.score(X[test], Y[test]), atol=2e-3)
        sep.task_states_ = {}  # (the shared epoch's score is clearly another one)
        assert abs(stacked - sep.score(X[test], Y[test])) > 1e-2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_task_still_learning_keeps_a_later_epoch(seed):
    # the docs' example (docs/index.md, "Negative transfer"): the noise target makes the
    # summed validation loss best early, while the 5-class task still learns
    rng = np.random.RandomState(seed)
    X = rng.randn(3000, 40).astype("float32")
    kind = np.digitize(np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * X[:, 3],
                       [-1.2, -0.4, 0.4, 1.2])
    net = MultiTaskNet(tasks={"kind": "multiclass", "noise": "regression"},
                       validation_fraction=0.3, random_state=seed)
    net.fit(X, np.column_stack([kind, rng.randn(3000)]))
    assert net.task_epochs_["kind"] >= net.best_epoch_ + 5


def test_tasks_that_keep_one_epoch_share_its_weights_and_forward_pass(fitted):
    net, (X_test, _) = fitted
    X, Y = make_data(3000, 0)
    both = noise_net(0).fit(X, Y)  # the same fit as the fixture's
    epoch = both.task_epochs_["task_1"]
    state = both.task_states_["task_1"]
    expected = both.forward_outputs(X_test[:64])[1]
    both._set_task_epochs({"task_0": (epoch, state), "task_1": (epoch, state)})
    assert both.task_states_["task_0"] is both.task_states_["task_1"]
    calls = []
    original = both.module_.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    both.module_.forward = counting
    try:
        outputs = both.forward_outputs(X_test[:64])
    finally:
        del both.module_.forward
    assert len(calls) == 2  # the shared epoch's pass and one for the kept epoch
    np.testing.assert_allclose(outputs[1], expected, rtol=1e-6)
    reloaded = joblib.load(_dumped(both))
    assert reloaded.task_states_["task_0"] is reloaded.task_states_["task_1"]
