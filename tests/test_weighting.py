"""Loss-weighting strategies: closed forms, masks, and training through MultiTaskNet."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.weighting import (
    WEIGHTINGS,
    DynamicWeightAverage,
    GradNorm,
    PCGrad,
    RandomLossWeighting,
    UncertaintyWeighting,
    make_weighting,
    project_conflicting,
)

ARCHS = {
    "shared_bottom": {"hidden_sizes": (16,), "tower_sizes": (8,)},
    "mmoe": {"n_experts": 2, "expert_sizes": (16,), "tower_sizes": (8,)},
    "ple": {"n_levels": 2, "expert_sizes": (12,), "tower_sizes": (8,)},
    "cross_stitch": {"hidden_sizes": (12, 8), "tower_sizes": (8,)},
    "task_attention": {"d_model": 8, "n_heads": 2, "n_groups": 4, "tower_sizes": (8,)},
}
ADAPTIVE = ["uncertainty", "dwa", "gradnorm", "pcgrad", "rlw"]
KINDS = ["binary", "multiclass", "regression"]


def test_registry():
    assert set(WEIGHTINGS) >= {"fixed", *ADAPTIVE}
    with pytest.raises(ValueError, match="weighting__bogus"):
        make_weighting("dwa", [1, 1], KINDS[:2], bogus=3)
    with pytest.raises(ValueError, match="temperature"):
        make_weighting("dwa", [1, 1], KINDS[:2], temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        make_weighting("gradnorm", [1, 1], KINDS[:2], alpha=-1)


# ----------------------------------------------------------------------------------------
# PCGrad
# ----------------------------------------------------------------------------------------
def test_projection_closed_form():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    out = project_conflicting(g)
    # g1' = g1 - (g1·g2)/|g2|² g2 = (1,0) + ½(-1,1); g2' = g2 - (g2·g1)/|g1|² g1 = (0,1)
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.5], [0.0, 1.0]]))
    assert out[0] @ g[1] == pytest.approx(0.0) and out[1] @ g[0] == pytest.approx(0.0)
    # no conflict: unchanged
    g = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(project_conflicting(g), g)


def test_projection_order_is_random_and_seeded():
    g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
    # task 0 conflicts with g1 only; once projected, g0' = (½,½,0) conflicts with g2:
    # order (1, 2) gives g0' - (-½/2) g2 = (½, ¼, ¼); order (2, 1) stops at (½, ½, 0)
    seen = set()
    for seed in range(20):
        out = project_conflicting(g, torch.Generator().manual_seed(seed))
        seen.add(tuple(round(v, 6) for v in out[0].tolist()))
        again = project_conflicting(g, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(out, again)
    assert seen == {(0.5, 0.25, 0.25), (0.5, 0.5, 0.0)}


class _TinyModel(nn.Module):
    """Shared w ∈ R²; task t: L_t = w·a_t + c_t², with c_t task-specific."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.c = nn.Parameter(torch.tensor([1.0, 3.0]))
        self.a = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])

    def losses(self):
        return self.a @ self.w + self.c ** 2

    def shared_parameters(self):
        return iter([self.w])

    def last_shared_layer(self):
        return None


def test_pcgrad_end_to_end_on_tiny_linear_model():
    model = _TinyModel()
    pc = PCGrad([1.0, 2.0], ["regression"] * 2)
    out = pc.backward(model.losses(), torch.tensor([True, True]), model)
    # g1 = (1,0), g2 = 2(-1,1): g1' = (½,½), g2' = g2 + 2 g1 = (0,2)
    torch.testing.assert_close(model.w.grad, torch.tensor([0.5, 2.5]))
    # task-specific parameters get the gradient of Σ b_t L_t
    torch.testing.assert_close(model.c.grad, torch.tensor([2.0 * 1.0, 2.0 * 2.0 * 3.0]))
    assert out.item() == pytest.approx(1.0 + 2.0 * 9.0)
    # an absent task is skipped: plain gradient of the present task's loss
    model.zero_grad()
    losses = model.losses() * torch.tensor([1.0, 0.0])
    pc.backward(losses, torch.tensor([True, False]), model)
    torch.testing.assert_close(model.w.grad, torch.tensor([1.0, 0.0]))


# ----------------------------------------------------------------------------------------
# DWA
# ----------------------------------------------------------------------------------------
def test_dwa_weights_by_hand():
    dwa = DynamicWeightAverage([1.0, 2.0, 1.0], KINDS, temperature=2.0)
    torch.testing.assert_close(dwa.task_weights(), torch.tensor([1.0, 2.0, 1.0]))
    dwa.epoch_end(torch.tensor([1.0, 2.0, 4.0]))
    torch.testing.assert_close(dwa.task_weights(), torch.tensor([1.0, 2.0, 1.0]))
    dwa.epoch_end(torch.tensor([0.5, 1.5, 4.0]))
    r = [0.5, 0.75, 1.0]
    e = [math.exp(x / 2.0) for x in r]
    lam = [3 * x / sum(e) for x in e]
    torch.testing.assert_close(dwa.task_weights(), torch.tensor([lam[0], 2 * lam[1], lam[2]]))
    assert lam[2] > lam[1] > lam[0]  # the slowest task gets the largest weight
    dwa.epoch_end(torch.tensor([0.5, 0.75, 1.0]))  # now r = (1, 0.5, 0.25)
    e = [math.exp(x / 2.0) for x in (1.0, 0.5, 0.25)]
    lam = [3 * x / sum(e) for x in e]
    torch.testing.assert_close(dwa.task_weights(), torch.tensor([lam[0], 2 * lam[1], lam[2]]))
    losses = torch.tensor([1.0, 1.0, 1.0])
    assert dwa.combine(losses, torch.ones(3, dtype=bool)).item() == pytest.approx(
        lam[0] + 2 * lam[1] + lam[2])


# ----------------------------------------------------------------------------------------
# uncertainty
# ----------------------------------------------------------------------------------------
def test_uncertainty_objective_and_gradient_closed_form():
    unc = UncertaintyWeighting([1.0, 2.0, 0.5], ["regression", "binary", "multiclass"])
    s = torch.tensor([0.3, -0.2, 0.7])
    unc.log_vars.data.copy_(s)
    losses = torch.tensor([1.5, 0.4, 2.0])
    present = torch.tensor([True, True, False])
    c = torch.tensor([0.5, 1.0, 1.0])
    b = torch.tensor([1.0, 2.0, 0.5])
    obj = unc.combine(losses, present)
    expected = (b * (c * torch.exp(-s) * losses + s / 2))[:2].sum()
    assert obj.item() == pytest.approx(expected.item(), rel=1e-6)
    obj.backward()
    grad = b * (-c * torch.exp(-s) * losses + 0.5)
    torch.testing.assert_close(unc.log_vars.grad[:2], grad[:2])
    assert unc.log_vars.grad[2] == 0  # no label for task 2 in the batch: s_2 does not move
    torch.testing.assert_close(unc.task_weights(), b * c * torch.exp(-s))
    # the optimum of c e^{-s} L + s/2 is s = log(2 c L)
    unc = UncertaintyWeighting([1.0], ["regression"])
    opt = torch.optim.SGD(unc.parameters(), lr=0.5)
    for _ in range(300):
        opt.zero_grad()
        unc.combine(torch.tensor([3.0]), torch.tensor([True])).backward()
        opt.step()
    assert unc.log_vars.item() == pytest.approx(math.log(2 * 0.5 * 3.0), abs=1e-4)


# ----------------------------------------------------------------------------------------
# GradNorm
# ----------------------------------------------------------------------------------------
class _SharedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1, bias=False)
        self.x = torch.tensor([[1.0, -2.0, 0.5]])

    def losses(self, scales):
        q = self.layer(self.x).pow(2).sum() + 1.0
        return torch.stack([s * q for s in scales])

    def last_shared_layer(self):
        return self.layer


def test_gradnorm_favours_the_slower_task():
    torch.manual_seed(0)
    model = _SharedLinear()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.5, lr_weights=0.05)
    both = torch.tensor([True, True])
    gn.backward(model.losses([1.0, 1.0]), both, model)  # sets L(0); all rates equal
    torch.testing.assert_close(gn.weights, torch.ones(2))
    torch.testing.assert_close(gn.initial_losses, model.losses([1.0, 1.0]).detach())
    for _ in range(20):  # task 1 trains 5x faster than task 0
        model.zero_grad()
        gn.backward(model.losses([1.0, 0.2]), both, model)
    w = gn.weights
    assert w[0] > 1.2 and w[1] < 0.8
    assert w.sum().item() == pytest.approx(2.0)
    torch.testing.assert_close(gn.task_weights(), w)
    # the network's gradient is that of Σ w_t L_t with the weights before the last update
    assert model.layer.weight.grad is not None
    # absent task: its weight and initial loss do not move
    gn2 = GradNorm([1.0, 1.0, 1.0], KINDS, alpha=1.5)
    losses = model.losses([1.0, 1.0, 0.0])
    gn2.backward(losses, torch.tensor([True, True, False]), model)
    assert torch.isnan(gn2.initial_losses[2])


def test_gradnorm_without_shared_layer_warns_once_and_keeps_weights():
    model = _TinyModel()  # last_shared_layer() is None
    gn = GradNorm([1.0, 2.0], ["regression"] * 2)
    with pytest.warns(UserWarning, match="no shared layer"):
        gn.backward(model.losses(), torch.tensor([True, True]), model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gn.backward(model.losses(), torch.tensor([True, True]), model)
    torch.testing.assert_close(gn.task_weights(), torch.tensor([1.0, 2.0]))


def test_gradnorm_weights_are_not_parameters():
    gn = GradNorm([1.0, 1.0], ["regression"] * 2)
    assert list(gn.parameters()) == []
    assert "weights" in gn.state_dict()


def test_rlw_weights_sum_to_n_tasks():
    torch.manual_seed(0)
    rlw = RandomLossWeighting([1.0, 1.0, 1.0], KINDS)
    rlw.combine(torch.ones(3), torch.ones(3, dtype=bool))
    w1 = rlw.task_weights().clone()
    rlw.combine(torch.ones(3), torch.ones(3, dtype=bool))
    assert w1.sum().item() == pytest.approx(3.0)
    assert not torch.allclose(w1, rlw.task_weights())


# ----------------------------------------------------------------------------------------
# through MultiTaskNet
# ----------------------------------------------------------------------------------------
def _mixed_data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 8).astype(np.float32)
    Y = np.column_stack([
        (X[:, 0] + 0.3 * rng.randn(n) > 0).astype(float),
        np.digitize(X[:, 1] + X[:, 3], [-0.5, 0.5]).astype(float),
        3 * (X[:, 2] - X[:, 0]) + 0.1 * rng.randn(n),
    ])
    Y[rng.rand(n) < 0.2, 0] = np.nan
    Y[rng.rand(n) < 0.2, 2] = np.nan
    return X, Y


def _net(arch="shared_bottom", weighting="fixed", epochs=2, **kw):
    return MultiTaskNet(tasks=KINDS, architecture=arch, weighting=weighting,
                        max_epochs=epochs, batch_size=50, lr=1e-2, random_state=0,
                        **{f"module__{k}": v for k, v in ARCHS[arch].items()}, **kw)


@pytest.mark.parametrize("weighting", ["fixed", *ADAPTIVE])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_architecture_with_every_weighting(arch, weighting):
    X, Y = _mixed_data()
    net = _net(arch, weighting, loss_weights=[1.0, 0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every architecture has a shared layer for GradNorm
        net.fit(X, Y)
    pred = net.predict(X)
    assert pred.shape == (200, 3) and np.isfinite(pred.astype(float)).all()
    for name in net.task_names_:
        assert np.isfinite(net.history[:, f"weight_{name}"]).all()


@pytest.fixture(scope="module")
def fixed_run():
    X, Y = _mixed_data()
    net = _net(epochs=3, loss_weights=[1.0, 0.5, 2.0]).fit(X, Y)
    return X, Y, net


@pytest.mark.parametrize("weighting", ADAPTIVE)
def test_adaptive_weighting_changes_training(weighting, fixed_run):
    X, Y, fixed = fixed_run
    net = _net(weighting=weighting, epochs=3, loss_weights=[1.0, 0.5, 2.0]).fit(X, Y)
    out_fixed = fixed.forward_outputs(X)
    out = net.forward_outputs(X)
    assert any(not np.allclose(a, b, atol=1e-5) for a, b in zip(out, out_fixed))
    weights = np.array([net.history[:, f"weight_{n}"] for n in net.task_names_])  # (T, E)
    base = np.array([[1.0], [0.5], [2.0]])
    if weighting == "pcgrad":
        np.testing.assert_allclose(weights, np.repeat(base, 3, axis=1))
    elif weighting == "dwa":
        np.testing.assert_allclose(weights[:, :2], np.repeat(base, 2, axis=1))
        assert not np.allclose(weights[:, 2], base[:, 0])
    else:
        assert not np.allclose(weights[:, -1], weights[:, 0])


def test_uncertainty_log_vars_are_trained_by_the_net_optimizer():
    X, Y = _mixed_data()
    net = _net(weighting="uncertainty", epochs=2).fit(X, Y)
    names = [n for n, _ in net.get_all_learnable_params()]
    assert "log_vars" in names
    assert net.weighting_.log_vars.detach().abs().min() > 0


def test_gradnorm_weights_not_in_net_optimizer():
    X, Y = _mixed_data()
    net = _net(weighting="gradnorm", epochs=2).fit(X, Y)
    params = {id(p) for _, p in net.get_all_learnable_params()}
    assert id(net.weighting_.weights) not in params
    assert net.weighting_.weights.sum().item() == pytest.approx(3.0, rel=1e-5)


@pytest.mark.parametrize("weighting", ["uncertainty", "dwa", "gradnorm"])
def test_weighting_params_routed_and_pickled(weighting):
    X, Y = _mixed_data()
    params = {"uncertainty": {"weighting__init_log_var": 0.5},
              "dwa": {"weighting__temperature": 1.0},
              "gradnorm": {"weighting__alpha": 0.5, "weighting__lr_weights": 0.1}}[weighting]
    net = _net(weighting=weighting, epochs=3, **params).fit(X, Y)
    for key, value in params.items():
        assert net.get_params()[key] == value
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(clone.predict(X).astype(float), net.predict(X).astype(float))
    torch.testing.assert_close(clone.weighting_.task_weights(), net.weighting_.task_weights())
