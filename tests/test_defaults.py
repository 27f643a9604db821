"""The defaults chosen from the data: input scaling, training budget, early stopping, wide path,
regression bounds and losses, CPU threads."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklearn_mtml import MultiTaskNet
from sklearn_mtml._training import (
    COSINE_FLOOR,
    SINGLE_THREAD_FLOPS,
    TRAINING_STEPS,
    auto_batch_size,
    auto_max_epochs,
    cosine_factor,
    fit_threads,
    torch_threads,
)
from sklearn_mtml.nn.heads import WideHeads
from sklearn_mtml.nn.scaling import BlockScaler, block_statistics
from sklearn_mtml.tasks import RegressionTask


# ------------------------------------------------------------------------------------------
# scaling statistics and the scaler module
# ------------------------------------------------------------------------------------------
def test_robust_statistics_are_median_and_normalised_iqr():
    rng = np.random.RandomState(0)
    x = np.column_stack([rng.randn(20000) * 3 + 5, rng.standard_cauchy(20000)])
    center, scale = block_statistics(x, "robust")
    np.testing.assert_allclose(center, np.median(x, 0), rtol=1e-5)
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    np.testing.assert_allclose(scale, (q75 - q25) / 1.3489795, rtol=1e-5)
    assert abs(scale[0] - 3) < 0.1  # the IQR of a normal column gives its std
    center, scale = block_statistics(x, "standard")
    np.testing.assert_allclose(center, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(scale, x.std(0), rtol=1e-5)


def test_mostly_zero_columns_keep_their_zeros_and_a_typical_value_of_one():
    x = np.zeros((100, 3))
    x[:10, 0] = [0.2, 0.4, 0.3, 0.1, 0.5, 0.2, 0.3, 0.4, 0.3, 0.6]  # TF-IDF-like
    x[:, 1] = np.arange(100)  # dense
    # column 2 constant zero
    center, scale = block_statistics(x, "robust")
    assert center[0] == 0 and scale[0] == pytest.approx(0.3)
    assert center[1] == pytest.approx(49.5) and scale[1] > 10
    assert center[2] == 0 and scale[2] == 1  # a constant column is left alone


def test_statistics_per_frame_feature_skip_padding_and_per_image_channel():
    seq = np.zeros((4, 6, 2), np.float32)
    seq[:, :3] = np.array([1.0, 10.0])  # 3 real frames, 3 padding frames
    seq[:, :3, 0] += np.arange(3)
    center, _ = block_statistics(seq, "standard")
    np.testing.assert_allclose(center, [2.0, 10.0])  # padding does not pull the mean to 0
    img = np.stack([np.full((5, 4, 4), 1.0), np.full((5, 4, 4), 7.0)], axis=1)
    center, scale = block_statistics(img, "standard")
    np.testing.assert_allclose(center, [1.0, 7.0])
    np.testing.assert_allclose(scale, [1.0, 1.0])  # constant channels: scale 1


def test_unknown_scaling_is_refused():
    with pytest.raises(ValueError, match="Unknown input scaling 'minmax'"):
        block_statistics(np.ones((3, 2)), "minmax")
    with pytest.raises(ValueError, match="input_scaling must be one of"):
        MultiTaskNet(input_scaling="minmax").fit(np.ones((10, 2)), np.arange(10) % 2)


def test_block_scaler_soft_clip_is_monotone_and_logarithmic():
    scaler = BlockScaler([0.0], [1.0], ndim=1, clip=3.0)
    z = torch.linspace(-50, 50, 1001).reshape(-1, 1)
    out = scaler(z)[:, 0]
    assert torch.all(out[1:] > out[:-1])  # order kept
    inside = z.abs()[:, 0] <= 3
    torch.testing.assert_close(out[inside], z[inside, 0])  # identity within the clip
    assert out[-1].item() == pytest.approx(3 + math.log1p(47), rel=1e-5)
    assert BlockScaler([0.0], [1.0], ndim=1, clip=None)(z)[-1, 0].item() == 50


def test_block_scaler_keeps_padding_frames_at_zero():
    scaler = BlockScaler([5.0, 5.0], [2.0, 2.0], ndim=2)
    x = torch.zeros(1, 3, 2)
    x[0, 0] = torch.tensor([7.0, 3.0])
    out = scaler(x)
    torch.testing.assert_close(out[0, 0], torch.tensor([1.0, -1.0]))
    assert torch.all(out[0, 1:] == 0)


@pytest.mark.slow
def test_predictions_do_not_depend_on_the_input_units():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 4).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    units = np.array([1e-3, 1.0, 1e3, 1e5], dtype=np.float32)
    a = MultiTaskNet(random_state=0, max_epochs=15, early_stopping=False).fit(X, y)
    b = MultiTaskNet(random_state=0, max_epochs=15, early_stopping=False).fit(X * units, y)
    pa, pb = a.predict_proba(X), b.predict_proba(X * units)
    np.testing.assert_allclose(pa, pb, atol=2e-3)
    raw = MultiTaskNet(random_state=0, max_epochs=15, input_scaling=None).fit(X * units, y)
    assert raw.input_stats_ is None and not raw.module_.scalers


def test_scaling_statistics_come_from_present_rows_and_travel_with_the_module():
    rng = np.random.RandomState(0)
    a = rng.randn(200, 3).astype(np.float32) * 4 + 10
    b = rng.randn(200, 2).astype(np.float32)
    a[:50] = np.nan  # absent rows: filled with zeros, must not enter the statistics
    y = rng.randint(0, 2, 200)
    net = MultiTaskNet(random_state=0, max_epochs=2).fit({"a": a, "b": b}, y)
    center, _ = net.input_stats_["a"]
    np.testing.assert_allclose(center, np.median(a[50:], 0), rtol=1e-4)
    state = net.module_.state_dict()
    np.testing.assert_allclose(state["scalers.a.center"].reshape(-1).numpy(), center)


# ------------------------------------------------------------------------------------------
# training budget
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "expected"), [(10, 16), (300, 16), (1000, 32), (5000, 128),
                                             (20000, 256), (10**6, 256)])
def test_auto_batch_size(n, expected):
    assert auto_batch_size(n) == expected


def test_auto_max_epochs_plans_the_step_budget_within_bounds():
    assert auto_max_epochs(20) == math.ceil(TRAINING_STEPS / 20)
    assert auto_max_epochs(1) == 300
    assert auto_max_epochs(10_000) == 10
    # without early stopping: 2 steps a training row
    assert auto_max_epochs(1, n_train=16, early_stopping=False) == 32
    assert auto_max_epochs(9, n_train=133, early_stopping=False) == 30
    assert auto_max_epochs(1, n_train=3, early_stopping=False) == 10
    assert auto_max_epochs(20, n_train=10**6, early_stopping=False) == 100


def test_cosine_factor_decays_from_one_to_the_floor():
    factors = [cosine_factor(e, 11) for e in range(11)]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(COSINE_FLOOR)
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert cosine_factor(0, 1) == 1.0


def test_resolved_budget_is_recorded():
    X = np.random.RandomState(0).randn(100, 3).astype(np.float32)
    net = MultiTaskNet(random_state=0, early_stopping=False).fit(X, X[:, 0])
    # 100 rows in batches of 16: 7 steps an epoch (the last batch holds 4 rows); without
    # early stopping the budget is 2 steps a row
    assert net.batch_size_ == 16 and net.max_epochs_ == math.ceil(200 / 7)
    assert len(net.history) == net.max_epochs_
    net = MultiTaskNet(random_state=0, batch_size=50, max_epochs=3).fit(X, X[:, 0])
    assert (net.batch_size_, net.max_epochs_, len(net.history)) == (50, 3, 3)


@pytest.mark.parametrize("bad", [{"batch_size": "big"}, {"max_epochs": 0},
                                 {"n_iter_no_change": "auto"}, {"early_stopping": "yes"},
                                 {"validation_fraction": 1.0}, {"lr_schedule": "step"}])
def test_bad_budget_parameters_are_named(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        MultiTaskNet(**bad).fit(np.ones((30, 2), np.float32), np.arange(30) % 2)


def test_cosine_schedule_decays_within_a_fit_and_restores_lr():
    X = np.random.RandomState(0).randn(64, 3).astype(np.float32)
    seen = []

    class Spy(MultiTaskNet):
        def run_single_epoch(self, iterator, training, prefix, step_fn, **kwargs):
            if training:
                seen.append(self.optimizer_.param_groups[0]["lr"])
            super().run_single_epoch(iterator, training, prefix, step_fn, **kwargs)

    net = Spy(lr=1e-2, max_epochs=5, early_stopping=False, random_state=0).fit(X, X[:, 0])
    np.testing.assert_allclose(seen, [1e-2 * cosine_factor(e, 5) for e in range(5)])
    assert net.optimizer_.param_groups[0]["lr"] == 1e-2
    seen.clear()
    Spy(lr=1e-2, max_epochs=3, lr_schedule=None, early_stopping=False).fit(X, X[:, 0])
    assert seen == [1e-2] * 3


# ------------------------------------------------------------------------------------------
# early stopping
# ------------------------------------------------------------------------------------------
class _EpochStates(Callback):
    """Copies of the network's and the weighting's state after every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = []

    def on_epoch_end(self, net, **kwargs):
        self.states.append({name: copy.deepcopy(m.state_dict())
                            for name, m in net._trained_modules().items()})


def _two_task_data(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 20).astype(np.float32)
    Y = np.column_stack([(X[:, 0] + 0.5 * rng.randn(n) > 0).astype(float),
                         X[:, 1] + rng.randn(n)])  # noisy: the net overfits
    return X, Y


def test_early_stopping_callback_restores_network_and_weighting_of_the_best_epoch():
    X, Y = _two_task_data()
    spy = _EpochStates()
    net = MultiTaskNet(weighting="uncertainty", random_state=0, max_epochs=200,
                       n_iter_no_change=4, callbacks=[("spy", spy)]).fit(X, Y)
    assert net.best_epoch_ is not None and len(net.history) == net.best_epoch_ + 4
    best = spy.states[net.best_epoch_ - 1]
    for name, module in net._trained_modules().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(value, best[name][key])
    # the weighting's learned log-variances moved during training: restoring them matters
    last = spy.states[-1]["weighting_"]
    assert any(not torch.equal(v, best["weighting_"][k]) for k, v in last.items())


def test_early_stopping_is_a_default_callback_users_can_tune_or_remove():
    X, Y = _two_task_data()
    net = MultiTaskNet(random_state=0, max_epochs=200, n_iter_no_change=30,
                       callbacks__early_stopping__patience=2).fit(X, Y)
    assert len(net.history) == net.best_epoch_ + 2
    off = MultiTaskNet(random_state=0, max_epochs=15, callbacks__early_stopping=None).fit(X, Y)
    assert len(off.history) == 15 and off.best_epoch_ is None
    assert "valid_loss" in off.history[-1]  # the rows are still held out and scored
    with pytest.raises(ValueError, match="patience must be a positive integer"):
        MultiTaskNet(max_epochs=2, callbacks__early_stopping__patience=0).fit(X, Y)


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 20).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.randn(400) > 0).astype(int)  # noisy: the net overfits
    net = MultiTaskNet(random_state=0, max_epochs=200, n_iter_no_change=5).fit(X, y)
    valid = net.history[:, "valid_loss"]
    assert len(net.history) < 200  # stopped
    # the best epoch (improvements count beyond a relative 1e-4) and patience epochs after it
    assert valid[net.best_epoch_ - 1] <= np.min(valid) * (1 + 1e-4)
    assert len(net.history) == net.best_epoch_ + 5
    # the restored weights are the best epoch's: re-scoring the validation rows gives its loss
    off = MultiTaskNet(random_state=0, max_epochs=20, early_stopping=False).fit(X, y)
    assert off.best_epoch_ is None and "valid_loss" not in off.history[-1]
    assert len(off.history) == 20


def test_early_stopping_auto_needs_twenty_validation_rows():
    X = np.random.RandomState(0).randn(199, 2).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    assert MultiTaskNet(max_epochs=2).fit(X, y).best_epoch_ is None
    X2 = np.vstack([X, X[:1]])
    assert MultiTaskNet(max_epochs=2).fit(X2, np.r_[y, y[:1]]).best_epoch_ is not None
    with pytest.raises(ValueError, match="early_stopping=False"):
        MultiTaskNet(early_stopping=True, validation_fraction=0.5).fit(X[:3], [0, 1, 0])


# ------------------------------------------------------------------------------------------
# the wide path: the linear model as a special case
# ------------------------------------------------------------------------------------------
def test_wide_heads_shapes_gain_and_masking():
    wide = WideHeads([(3,), (4, 2), (1, 5, 5)], [1, 3])
    assert [lin.in_features for lin in wide.linears] == [3, 2, 1]
    assert wide.gain == 10.0  # 10·sqrt(10/6) capped at 10
    assert WideHeads([(40,)], [1]).gain == pytest.approx(5.0)
    assert WideHeads([(2000,)], [1]).gain == 1.0 and WideHeads([(2,)], [1]).gain == 10.0
    for lin in wide.linears:
        torch.nn.init.ones_(lin.weight)
    xs = [torch.ones(2, 3), torch.ones(2, 4, 2), torch.ones(2, 1, 5, 5)]
    xs[1][:, 2:] = 0  # padding frames do not dilute the mean frame
    out = wide(xs, torch.tensor([[True, True, True], [True, False, True]]))
    assert [o.shape for o in out] == [(2, 1), (2, 3)]
    torch.testing.assert_close(out[0][:, 0], wide.gain * torch.tensor([6.0, 4.0]))


@pytest.mark.slow
def test_the_net_matches_ridge_on_a_small_linear_problem():
    rng = np.random.RandomState(0)
    X = rng.randn(240, 10).astype(np.float32) * rng.uniform(0.1, 100, 10).astype(np.float32)
    w = rng.randn(10) / X.std(0)
    y = X @ w + 0.5 * rng.randn(240)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, random_state=0)
    ridge = RidgeCV().fit(StandardScaler().fit(Xtr).transform(Xtr), ytr)
    r2_ridge = ridge.score(StandardScaler().fit(Xtr).transform(Xte), yte)
    for seed in (0, 1, 2):
        r2 = MultiTaskNet(random_state=seed).fit(Xtr, ytr).score(Xte, yte)
        assert r2 > r2_ridge - 0.03, (seed, r2, r2_ridge)
    no_wide = MultiTaskNet(random_state=0, module__wide=False).fit(Xtr, ytr)
    assert no_wide.module_.wide is None


@pytest.mark.slow
def test_breast_cancer_default_is_close_to_logistic_regression():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    lr = LogisticRegression(max_iter=5000).fit(sc.transform(Xtr), ytr).score(
        sc.transform(Xte), yte)
    scores = [MultiTaskNet(random_state=s).fit(Xtr, ytr).score(Xte, yte) for s in (0, 1, 2)]
    assert np.mean(scores) > lr - 0.03, (scores, lr)  # no scaler in front of the net


# ------------------------------------------------------------------------------------------
# regression bounds and losses
# ------------------------------------------------------------------------------------------
def test_regression_predictions_are_bounded_by_the_training_range():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 3).astype(np.float32)
    y = 3 * X[:, 0] + 0.1 * rng.randn(300)
    far = np.array([[1e4, 0, 0], [-1e4, 0, 0]], np.float32)
    net = MultiTaskNet(random_state=0, max_epochs=20).fit(X, y)
    lo, hi = y.min() - 0.25 * np.ptp(y), y.max() + 0.25 * np.ptp(y)
    np.testing.assert_allclose(net.predict(far), [hi, lo])
    assert net.tasks_["task_0"].range_ == pytest.approx((lo, hi))
    free = MultiTaskNet(random_state=0, max_epochs=20, regression_bounds=None).fit(X, y)
    assert free.predict(far)[0] > hi and free.predict(far)[1] < lo
    with pytest.raises(ValueError, match="regression bounds must be None or a finite"):
        MultiTaskNet(regression_bounds=-1).fit(X, y)


@pytest.mark.slow
def test_huber_loss_resists_outlying_labels():
    rng = np.random.RandomState(0)
    X = rng.randn(600, 3).astype(np.float32)
    y = X[:, 0] + 0.1 * rng.randn(600)
    noisy = y.copy()
    noisy[::10] += 30  # 10 % of the labels far off
    Xte = rng.randn(300, 3).astype(np.float32)
    yte = Xte[:, 0]
    scores = {loss: MultiTaskNet(random_state=0, regression_loss=loss, early_stopping=False,
                                 max_epochs=30).fit(X, noisy).score(Xte, yte)
              for loss in ("squared", "huber")}
    # squared error learns the contaminated mean (offset by 3); Huber on the robustly
    # standardised target ignores the outliers (0.97-0.98 for data seeds 0-2, net seeds 0-1)
    assert scores["huber"] > 0.9 and scores["squared"] < scores["huber"] - 0.05, scores
    with pytest.raises(ValueError, match="unknown regression loss 'l1'"):
        RegressionTask("t", loss="l1")
    huber = RegressionTask("t", loss="huber")
    out = torch.tensor([[0.5], [3.0]])
    torch.testing.assert_close(huber.loss(out, torch.zeros(2)), torch.tensor([0.25, 5.0]))


# ------------------------------------------------------------------------------------------
# threads
# ------------------------------------------------------------------------------------------
def test_small_steps_run_on_one_thread():
    assert fit_threads(SINGLE_THREAD_FLOPS / 2) == 1
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with torch_threads(2):  # large steps: torch's thread count, capped by the usable cores
        assert fit_threads(SINGLE_THREAD_FLOPS * 10) == min(2, cores)
    previous = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == previous


def test_same_model_at_one_and_two_threads():
    rng = np.random.RandomState(0)
    X = rng.randn(500, 30).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1] + X[:, 2] ** 2])
    outs = []
    for threads in (1, 2):
        with torch_threads(threads):
            net = MultiTaskNet(random_state=0, max_epochs=5).fit(X, Y)
        outs.append(net.forward_outputs(X))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------
# images and other array inputs
# ------------------------------------------------------------------------------------------
def test_image_encoder_averages_large_images_down_and_normalises_per_image():
    from sklearn_mtml.nn.encoders import ImageEncoder

    enc = ImageEncoder((3, 200, 100), 8)
    assert isinstance(enc.features[0], torch.nn.AdaptiveAvgPool2d)
    assert enc.features[0].output_size == (64, 32)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())
    assert enc(torch.randn(2, 3, 200, 100)).shape == (2, 8)
    small = ImageEncoder((1, 8, 8), 8)
    assert not isinstance(small.features[0], torch.nn.AdaptiveAvgPool2d)
    # group normalisation: a row's embedding does not depend on the other rows of its batch
    small.eval()
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(small(x)[:1], small(x[:1]))


def test_a_4d_image_array_is_one_block():
    rng = np.random.RandomState(0)
    X = rng.rand(60, 1, 8, 8).astype(np.float32)
    y = (X[:, 0, :4].mean((1, 2)) > X[:, 0, 4:].mean((1, 2))).astype(int)
    net = MultiTaskNet(random_state=0, max_epochs=3).fit(X, y)
    assert net.layout_.shapes == {"X": (1, 8, 8)}
    assert net.predict(X).shape == (60,)
    with pytest.raises(ValueError):
        net.predict(X[:, :, :4])


@pytest.mark.parametrize(("column", "expected"), [
    (["red", "blue"] * 10, "'col' holds strings .*CategoricalFeatures.*TextFeatures"),
    (["a.wav", "b.wav"] * 10, "'col' holds audio file paths: encode it with AudioFeatures"),
    (["a.png", "b.jpg"] * 10, "'col' holds image file paths: encode it with ImageFeatures"),
    ([np.zeros((2, 2))] * 20, "'col' holds an array per row, e.g. an image"),
    ([np.zeros(50)] * 20, "'col' holds an array per row, e.g. a waveform"),
])
def test_non_numeric_columns_get_an_error_that_teaches(column, expected):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"num": np.arange(20.0), "col": pd.Series(column, dtype=object)})
    with pytest.raises(ValueError, match=expected) as info:
        MultiTaskNet(max_epochs=1).fit(X, np.arange(20) % 2)
    assert "ModalityFusion" in str(info.value) and "'num'" not in str(info.value)
    cat = pd.DataFrame({"c": pd.Categorical(["x", "y"] * 10)})
    with pytest.raises(ValueError, match="'c' is categorical: encode it with CategoricalFeat"):
        MultiTaskNet(max_epochs=1).fit(cat, np.arange(20) % 2)


def test_divergence_is_never_silent():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 3).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1]])
    with pytest.raises(FloatingPointError, match=r"Training diverged.*lr=1000000\.0"):
        MultiTaskNet(lr=1e6, random_state=0, max_epochs=20, early_stopping=False,
                     lr_schedule=None).fit(X * 1e30, Y)


def test_a_failed_fit_leaves_the_fitted_model_as_it_was():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 5).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(float), X[:, 1]])
    net = MultiTaskNet(random_state=0, max_epochs=3).fit(X, Y)
    before, history = net.predict(X), len(net.history)
    bad = Y.copy()
    bad[:, 0] = np.nan  # a task without any label
    with pytest.raises(ValueError, match="no labelled row"):
        net.fit(X[:, :3], bad)
    assert net.n_features_in_ == 5 and len(net.history) == history
    np.testing.assert_array_equal(net.predict(X), before)
    # a failure during training in place (partial_fit) restores weights and history too
    with pytest.raises(FloatingPointError):
        net.set_params(lr=1e9)
        net.partial_fit(X * 1e3, Y)
    net.set_params(lr=1e-3)
    assert len(net.history) == history
    np.testing.assert_array_equal(net.predict(X), before)


def test_repr_shows_the_parameters_that_differ_from_their_defaults():
    net = MultiTaskNet(max_epochs=3, loss_weights={"a": 2.0}, module__hidden_sizes=(64,))
    assert repr(net) == ("MultiTaskNet(loss_weights={'a': 2.0}, max_epochs=3, "
                         "module__hidden_sizes=(64,))")
    assert repr(MultiTaskNet()) == "MultiTaskNet()"


# ------------------------------------------------------------------------------------------
# sample weights
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sample_weight_zero_removes_rows_from_the_loss():
    rng = np.random.RandomState(0)
    X = rng.randn(600, 4).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    noisy = y.copy()
    flip = np.arange(600) % 2 == 0
    noisy[flip] = rng.randint(0, 2, flip.sum())  # half the rows get random labels
    Xte = rng.randn(400, 4).astype(np.float32)
    yte = (Xte[:, 0] > 0).astype(int)
    plain = MultiTaskNet(random_state=0).fit(X, noisy).score(Xte, yte)
    weighted = MultiTaskNet(random_state=0).fit(X, noisy, sample_weight=(~flip) * 1.0)
    assert weighted.score(Xte, yte) > plain + 0.02


def test_weighted_losses_and_scores():
    from sklearn.metrics import accuracy_score, r2_score

    from sklearn_mtml.estimators import MultiTaskLoss
    from sklearn_mtml.tasks import make_task

    task = make_task("r", "regression", np.array([0.0, 1.0, 2.0]))
    loss = MultiTaskLoss([task])
    out = [torch.tensor([[1.0], [0.0], [3.0]])]
    target = torch.zeros(3, 1)
    w = torch.tensor([[2.0], [0.0], [1.0]])
    mean, total, count = loss(out, target, w)
    assert mean.item() == pytest.approx((2 * 1 + 9) / 3) and count.item() == 3
    rng = np.random.RandomState(0)
    X = rng.randn(100, 3).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1]])
    net = MultiTaskNet(random_state=0, max_epochs=3).fit(X, Y)
    sw = rng.rand(100)
    pred = net.predict(X)
    scores = net.score_tasks(X, Y, sample_weight=sw)
    assert scores["task_0"] == pytest.approx(accuracy_score(Y[:, 0], pred[:, 0],
                                                            sample_weight=sw))
    assert scores["task_1"] == pytest.approx(r2_score(Y[:, 1], pred[:, 1], sample_weight=sw))
    assert net.score(X, Y, sample_weight=sw) == pytest.approx(np.mean(list(scores.values())))


@pytest.mark.parametrize(("bad", "message"), [
    (np.ones(5), r"sample_weight has shape \(5,\); expected \(100,\)"),
    (-np.ones(100), "finite and non-negative"),
    (np.zeros(100), "zero for every row"),
    (["a"] * 100, "must be numbers"),
])
def test_bad_sample_weights_are_named(bad, message):
    X = np.random.RandomState(0).randn(100, 3).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        MultiTaskNet(max_epochs=1).fit(X, X[:, 0], sample_weight=bad)


def test_sample_weight_is_routed_through_pipeline_and_cross_validate():
    import sklearn
    from sklearn.model_selection import cross_validate
    from sklearn.pipeline import make_pipeline

    rng = np.random.RandomState(0)
    X = rng.randn(120, 3).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    w = rng.rand(120) + 0.5
    with sklearn.config_context(enable_metadata_routing=True):
        net = MultiTaskNet(max_epochs=2, random_state=0)
        net.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), net)
        res = cross_validate(pipe, X, y, cv=3, params={"sample_weight": w})
    assert np.all(np.isfinite(res["test_score"]))


def test_verbose_one_prints_a_compact_line_and_two_every_task(capsys):
    rng = np.random.RandomState(0)
    X = rng.randn(300, 4).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1]])
    MultiTaskNet(verbose=1, random_state=0, max_epochs=2).fit(X, Y)
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["epoch", "train_loss", "valid_loss", "valid_score", "dur"]
    MultiTaskNet(verbose=2, random_state=0, max_epochs=1).fit(X, Y)
    header = capsys.readouterr().out.splitlines()[0].split()
    assert {"train_loss_task_0", "valid_r2_task_1", "weight_task_1"} <= set(header)
    MultiTaskNet(verbose=0, random_state=0, max_epochs=1).fit(X, Y)
    assert capsys.readouterr().out == ""


def test_block_scaler_gives_the_same_values_with_and_without_autograd():
    scaler = BlockScaler([1.0, -2.0], [0.5, 3.0], ndim=1, clip=3.0)
    x = torch.randn(50, 2) * 20
    plain = scaler(x)
    x_grad = x.clone().requires_grad_(True)
    tracked = scaler(x_grad)
    torch.testing.assert_close(plain, tracked.detach())
    tracked.sum().backward()
    assert torch.all(x_grad.grad > 0)  # monotone: every input raises its output


@pytest.mark.parametrize("X, message", [
    ([["a", "b"]] * 20, "X holds strings \\(e.g. 'a'\\).*TextFeatures"),
    (np.array(["x.png"] * 20), "X holds image file paths: encode it with ImageFeatures"),
    (np.zeros((20, 1, 2, 3, 4)), "X has 5 axes .*4-D \\(n, C, H, W\\) images"),
    (np.arange(20.0), "X is 1-D .*Reshape your data with X.reshape"),
    ([np.zeros(3), np.zeros(2)] * 10, "X holds an array per row, e.g. a waveform"),
])
def test_first_mistakes_with_arrays_get_errors_that_teach(X, message):
    y = np.array([0, 1] * 10)
    with pytest.raises(ValueError, match=message):
        MultiTaskNet(max_epochs=1).fit(X, y)


def test_a_task_labelled_only_in_the_validation_rows_is_an_error_before_training():
    from torch.utils.data import Subset

    rng = np.random.RandomState(0)
    X = rng.randn(100, 4).astype(np.float32)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1]]).astype(float)
    Y[20:, 1] = np.nan  # task 1 is labelled in the first 20 rows only

    def first_rows_validate(dataset, y=None):
        return Subset(dataset, range(20, 100)), Subset(dataset, range(20))

    net = MultiTaskNet(train_split=first_rows_validate, max_epochs=2)
    with pytest.raises(ValueError, match=r"Tasks \['task_1'\] have no labelled row in the "
                                         r"training split"):
        net.fit(X, Y)
    assert not hasattr(net, "history_") or not net.history_
