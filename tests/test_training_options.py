"""Training options: precision (autocast, gradient scaling), torch.compile, fused AdamW."""

from __future__ import annotations

import contextlib
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


# ----------------------------------------------------------------------------------------
# cuda_graphs=True (the capture itself needs a GPU: test_cuda_graphs_match_eager_on_cuda)
# ----------------------------------------------------------------------------------------
def test_cuda_graphs_is_a_parameter_validated_at_fit(data):
    from sklearn.base import clone

    net = MultiTaskNet(cuda_graphs=True)  # stored as given, nothing checked yet
    assert net.get_params()["cuda_graphs"] is True
    assert clone(net).cuda_graphs is True
    assert net.set_params(cuda_graphs=False).cuda_graphs is False
    with pytest.raises(ValueError, match="cuda_graphs must be True or False, got 'yes'"):
        MultiTaskNet(cuda_graphs="yes").fit(data[0], data[1])


@pytest.mark.parametrize("params, match", [
    ({"precision": "16-mixed"}, "cuda_graphs=True cannot be combined with precision='16-mixed'"),
    ({"compile": True}, "cuda_graphs=True cannot be combined with compile=True"),
    ({"weighting": "gradnorm"}, "cuda_graphs=True cannot be combined with weighting='gradnorm'"),
    ({"weighting": "pcgrad"}, "cuda_graphs=True cannot be combined with weighting='pcgrad'"),
    ({"weighting": "rlw"}, "cuda_graphs=True cannot be combined with weighting='rlw'"),
    ({"optimizer": torch.optim.SGD}, "needs an optimizer that takes capturable=True.*SGD"),
])
def test_cuda_graphs_refuses_conflicting_options(data, params, match):
    with pytest.raises(ValueError, match=match):
        MultiTaskNet(cuda_graphs=True, max_epochs=1, **params).fit(data[0], data[1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only error")
def test_cuda_graphs_needs_a_cuda_device(data):
    with pytest.raises(ValueError, match="cuda_graphs=True .* needs a CUDA device, but this "
                                         "fit runs on 'cpu'"):
        MultiTaskNet(cuda_graphs=True, max_epochs=1).fit(data[0], data[1])
    assert "_cuda_graph" not in MultiTaskNet(max_epochs=1).fit(data[0], data[1]).__dict__


class _FakeGraph:
    """Stand-in for torch.cuda's graph API on the CPU: the capture runs its body once."""

    captures = 0

    def __init__(self):
        self.replays = 0

    def replay(self):
        self.replays += 1


@contextlib.contextmanager
def _fake_capture(graph, stream=None, capture_error_mode="global"):
    _FakeGraph.captures += 1
    yield


class _FakeStream:
    def __init__(self, device=None):
        pass

    def wait_stream(self, other):
        pass


def test_cuda_graph_step_warms_up_captures_once_and_runs_short_batches_eagerly(
        data, monkeypatch):
    """The dispatch around the capture, on the CPU with torch.cuda's graph API faked."""
    from sklearn_mtml._cuda_graphs import WARMUP_STEPS, GraphedTrainStep

    for name, fake in [("CUDAGraph", _FakeGraph), ("graph", _fake_capture),
                       ("Stream", _FakeStream), ("stream", lambda s: contextlib.nullcontext()),
                       ("current_stream", lambda device=None: _FakeStream())]:
        monkeypatch.setattr(torch.cuda, name, fake)
    steps = []

    def start(self, world):
        steps.append(GraphedTrainStep(self))
        self.__dict__["_cuda_graph"] = steps[-1]

    monkeypatch.setattr(MultiTaskNet, "_start_cuda_graph", start)
    eager = []
    original = MultiTaskNet._eager_train_step
    monkeypatch.setattr(MultiTaskNet, "_eager_train_step", lambda self, batch, **kw: (
        eager.append(int(batch[0][1].shape[0])), original(self, batch, **kw))[1])
    _FakeGraph.captures = 0
    # 900 rows in batches of 128: 7 full batches and a short one of 4 per epoch
    net = MultiTaskNet(batch_size=128, max_epochs=2, early_stopping=False,
                       random_state=0).fit(data[0], data[1])
    graphed = steps[0]
    assert _FakeGraph.captures == 1 and graphed.warmed == WARMUP_STEPS
    assert eager == [128] * WARMUP_STEPS + [4, 4]  # warm-up, then the short batches
    assert graphed.replays == 2 * 7 - WARMUP_STEPS  # the captured batch is replayed too
    assert [t.shape[0] for t in graphed.static][-1] == 128
    assert "_cuda_graph" not in net.__dict__  # one graph per fit
    assert np.isfinite(net.history[:, "train_loss"]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("precision", ["32", "bf16"])
def test_cuda_graphs_match_eager_on_cuda(data, precision):
    X, Y, Xt, _ = data
    kw = {"device": "cuda", "batch_size": 128, "max_epochs": 3, "early_stopping": False,
          "random_state": 0, "precision": precision, "module__dropout": 0.0}
    eager = MultiTaskNet(**kw).fit(X, Y)
    graphed = MultiTaskNet(cuda_graphs=True, **kw).fit(X, Y)
    tol = 1e-4 if precision == "32" else 2e-2
    np.testing.assert_allclose(graphed.history[:, "train_loss"],
                               eager.history[:, "train_loss"], rtol=tol, atol=tol)
    np.testing.assert_allclose(graphed.predict(Xt).astype(float),
                               eager.predict(Xt).astype(float), rtol=10 * tol, atol=10 * tol)
    assert isinstance(graphed.optimizer_.param_groups[0]["lr"], torch.Tensor)


# ----------------------------------------------------------------------------------------
# channels_last for the image encoder
# ----------------------------------------------------------------------------------------
def test_image_encoder_channels_last_same_outputs_and_format():
    from sklearn_mtml.nn.encoders import ImageEncoder

    torch.manual_seed(0)
    plain = ImageEncoder((3, 12, 12), 8, channels_last=False)
    nhwc = ImageEncoder((3, 12, 12), 8, channels_last=True)
    nhwc.load_state_dict(plain.state_dict())
    convs = [m for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    x = torch.randn(6, 3, 12, 12)
    torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-5, atol=1e-5)
    auto = ImageEncoder((3, 12, 12), 8)  # "auto": NHWC on CUDA only
    assert auto.uses_channels_last(torch.device("cuda"))
    assert not auto.uses_channels_last(torch.device("cpu"))
    assert auto.features[0].weight.is_contiguous()
    auto.double()  # a conversion keeps the format of the device
    assert auto.features[0].weight.is_contiguous()
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        ImageEncoder((3, 12, 12), 8, channels_last="yes")


def test_net_with_channels_last_images_fits_the_same():
    rng = np.random.RandomState(0)
    images = rng.rand(120, 2, 8, 8).astype(np.float32)
    y = images[:, 0, :4].mean((1, 2)) - images[:, 1, 4:].mean((1, 2))
    kw = {"max_epochs": 2, "early_stopping": False, "random_state": 0, "batch_size": 32}
    plain = MultiTaskNet(module__encoder_params={"channels_last": False}, **kw).fit(
        {"img": images}, y)
    nhwc = MultiTaskNet(module__encoder_params={"channels_last": True}, **kw).fit(
        {"img": images}, y)
    encoder = nhwc.module_.encoders["img"]
    assert encoder.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(nhwc.predict({"img": images}), plain.predict({"img": images}),
                               rtol=1e-4, atol=1e-4)
