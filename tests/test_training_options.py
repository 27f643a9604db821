"""Training options: precision (autocast, gradient scaling), torch.compile, fused AdamW."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest
import torch

from sklearn_mtml import MultiTaskNet


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(1200, 10).astype(np.float32)
    Y = np.column_stack([(X[:, 0] + X[:, 1] > 0), X[:, 2] * 2 - X[:, 3]]).astype(float)
    return X[:900], Y[:900], X[900:], Y[900:]


def _fit(data, **kw):
    X, Y, Xt, Yt = data
    kw = {"random_state": 0, "max_epochs": 15, "early_stopping": False, **kw}
    net = MultiTaskNet(**kw).fit(X, Y)
    return net, net.score_tasks(Xt, Yt)


@pytest.fixture(scope="module")
def float32_scores(data):
    return _fit(data)[1]


@pytest.mark.parametrize("precision", ["bf16", "16-mixed"])
def test_lower_precision_trains_as_well_as_float32(data, float32_scores, precision):
    net, scores = _fit(data, precision=precision)
    for task, score in float32_scores.items():
        assert scores[task] > score - 0.03, (task, scores[task], score)
    # weights stay float32 (autocast), predictions come back as float32/float64 arrays
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    assert np.isfinite(net.predict(data[2]).astype(float)).all()
    assert "_grad_scaler" not in net.__dict__  # only during training


def test_precision_16_mixed_refuses_weightings_with_their_own_gradients(data):
    with pytest.raises(ValueError, match="weighting='gradnorm' computes per-task gradients"):
        _fit(data, precision="16-mixed", weighting="gradnorm", max_epochs=1)
    _fit(data, precision="bf16", weighting="pcgrad", max_epochs=1)  # bf16 needs no scaling


def test_precision_is_validated(data):
    with pytest.raises(ValueError, match=r"precision must be one of \['32', 'bf16', '16-mixed'\]"):
        MultiTaskNet(precision="fp16").fit(data[0], data[1])


def test_compile_runs_the_compiled_module_and_keeps_the_plain_one(data):
    from torch._dynamo.utils import counters

    X, Y, Xt, _ = data
    counters.clear()
    net = MultiTaskNet(compile=True, compile__backend="eager", max_epochs=2,
                       random_state=0).fit(X, Y)
    assert counters["frames"]["ok"] > 0  # dynamo traced the training step's forward
    assert net.__dict__["_compiled_module"][0] is net.module_
    assert not any(k.startswith("_orig_mod") for k in net.module_.state_dict())
    plain = MultiTaskNet(max_epochs=2, random_state=0).fit(X, Y)
    np.testing.assert_allclose(net.predict(Xt).astype(float), plain.predict(Xt).astype(float),
                               rtol=1e-4, atol=1e-4)
    buffer = io.BytesIO()
    joblib.dump(net, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert "_compiled_module" not in loaded.__dict__
    np.testing.assert_allclose(loaded.predict(Xt).astype(float), net.predict(Xt).astype(float))


def test_adam_is_fused_by_default_on_cuda_only(data):
    net = MultiTaskNet(max_epochs=1).fit(data[0], data[1])
    params = list(net.module_.named_parameters())
    _, kwargs = net.get_params_for_optimizer("optimizer", params)
    assert "fused" not in kwargs  # CPU: torch's default implementation
    net.device_ = torch.device("cuda")  # what a CUDA fit would see (no GPU needed)
    _, kwargs = net.get_params_for_optimizer("optimizer", params)
    assert kwargs["fused"] is True
    net = MultiTaskNet(max_epochs=1, optimizer__foreach=True).fit(data[0], data[1])
    net.device_ = torch.device("cuda")
    _, kwargs = net.get_params_for_optimizer("optimizer", params)
    assert "fused" not in kwargs and kwargs["foreach"] is True  # the user's choice wins
