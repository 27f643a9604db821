"""Multi-task architectures: shapes, gradients, sharing introspection, token path, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.nn.architectures import (
    ARCHITECTURES,
    PLE,
    CrossStitch,
    CrossStitchUnit,
    MMoE,
    SharedBottom,
    TaskAttention,
    make_architecture,
)
from sklearn_mtml.nn.model import MultiTaskModule

SMALL = {
    "shared_bottom": {"hidden_sizes": (16,), "tower_sizes": (8,)},
    "mmoe": {"n_experts": 3, "expert_sizes": (16,), "tower_sizes": (8,)},
    "ple": {"n_levels": 2, "n_task_experts": 1, "n_shared_experts": 2, "expert_sizes": (16,),
            "tower_sizes": (8,)},
    "cross_stitch": {"hidden_sizes": (16, 12), "tower_sizes": (8,)},
    "task_attention": {"d_model": 8, "n_heads": 2, "n_queries": 2, "n_groups": 4,
                       "tower_sizes": (8,)},
}
NEW = ["mmoe", "ple", "cross_stitch", "task_attention"]


def test_registry_holds_every_architecture():
    assert set(SMALL) <= set(ARCHITECTURES)
    assert ARCHITECTURES["mmoe"] is MMoE
    assert ARCHITECTURES["ple"] is PLE
    assert ARCHITECTURES["cross_stitch"] is CrossStitch
    assert ARCHITECTURES["task_attention"] is TaskAttention
    assert TaskAttention.uses_tokens and not getattr(MMoE, "uses_tokens", False)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("n_tasks", [1, 5])
def test_output_shapes_and_gradients(name, n_tasks):
    torch.manual_seed(0)
    arch = make_architecture(name, 10, n_tasks, **SMALL[name])
    h = torch.randn(7, 10, requires_grad=True)
    reps = arch(h)
    assert len(reps) == n_tasks == len(arch.out_features)
    for r, d in zip(reps, arch.out_features):
        assert r.shape == (7, d)
        assert torch.isfinite(r).all()
    sum(r.sum() for r in reps).backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    for pname, p in arch.named_parameters():
        assert p.grad is not None, pname
    # every task's loss reaches every shared parameter
    shared = list(arch.shared_parameters())
    assert shared or name == "shared_bottom"
    for t in range(n_tasks):
        arch.zero_grad()
        arch(h)[t].sum().backward()
        for p in shared:
            assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NEW)
def test_last_shared_layer_is_made_of_shared_parameters(name):
    arch = make_architecture(name, 10, 3, **SMALL[name])
    layer = arch.last_shared_layer()
    assert isinstance(layer, nn.Module)
    shared = {id(p) for p in arch.shared_parameters()}
    params = list(layer.parameters())
    assert params and all(id(p) in shared for p in params)
    # containers returned by last_shared_layer are not registered twice
    assert len(list(arch.parameters())) == len(set(map(id, arch.parameters())))
    assert not any("last" in k for k in arch.state_dict())


def test_mmoe_gates_and_last_shared_layer():
    arch = MMoE(6, 2, n_experts=3, expert_sizes=(8, 4), tower_sizes=())
    g = arch.gate_weights(torch.randn(5, 6))
    assert g.shape == (5, 2, 3)
    torch.testing.assert_close(g.sum(-1), torch.ones(5, 2))
    # the group holds the last linear of each of the 3 experts
    linears = [m for m in arch.last_shared_layer().modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and all(m.out_features == 4 for m in linears)
    assert arch.out_features == [4, 4]


def test_mmoe_one_expert_equals_shared_bottom_mixture():
    torch.manual_seed(0)
    arch = MMoE(6, 2, n_experts=1, expert_sizes=(8,), tower_sizes=())
    h = torch.randn(4, 6)
    expert = arch.experts.experts[0](h)
    for r in arch(h):  # a softmax over one expert is 1
        torch.testing.assert_close(r, expert)


def test_ple_structure():
    arch = PLE(6, 3, n_levels=3, n_task_experts=2, n_shared_experts=1, expert_sizes=(8,))
    assert len(arch.task_experts) == 3 and len(arch.shared_gates) == 2
    assert arch.task_gates[0][0].out_features == 2 + 1
    assert arch.shared_gates[0].out_features == 3 * 2 + 1
    # the last level's task experts are not shared, the first level's are
    shared = {id(p) for p in arch.shared_parameters()}
    assert all(id(p) in shared for p in arch.task_experts[0].parameters())
    assert not any(id(p) in shared for p in arch.task_experts[-1].parameters())
    one = PLE(6, 2, n_levels=1, expert_sizes=(8,))
    shared = {id(p) for p in one.shared_parameters()}
    assert not any(id(p) in shared for p in one.task_experts.parameters())
    assert len(one.shared_gates) == 0


def test_cross_stitch_units():
    unit = CrossStitchUnit(3, 0.9)
    expected = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    torch.testing.assert_close(unit.alpha.data, expected)
    assert CrossStitchUnit(1).alpha.item() == 1.0
    x = torch.randn(3, 4, 2)
    torch.testing.assert_close(unit(x)[0], 0.9 * x[0] + 0.05 * x[1] + 0.05 * x[2])
    arch = CrossStitch(5, 3, hidden_sizes=(8, 6))
    assert arch.last_shared_layer() is arch.stitches[-1]
    assert len(list(arch.shared_parameters())) == 2
    # identity stitches make the columns independent: task 0 does not see column 1
    for s in arch.stitches:
        s.alpha.data = torch.eye(3)
    h = torch.randn(4, 5)
    out0 = arch(h)[0]
    arch.layers[0].weight.data[1] += 1.0
    torch.testing.assert_close(arch(h)[0], out0)


def test_cross_stitch_grouped_linear_matches_per_task_linear():
    arch = CrossStitch(5, 2, hidden_sizes=(4,), tower_sizes=())
    layer = arch.layers[0]
    h = torch.randn(3, 5)
    out = layer(h)
    for t in range(2):
        torch.testing.assert_close(out[t], h @ layer.weight[t] + layer.bias[t])


def test_task_attention_feature_groups():
    torch.manual_seed(0)
    arch = TaskAttention(10, 3, **SMALL["task_attention"])
    h = torch.randn(6, 10)
    w = arch.attention_weights(h)
    assert w.shape == (6, 3, 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(6, 3))
    assert not arch.store_attention  # the context manager restores the flag
    assert arch.last_shared_layer() is arch.attention.out_proj
    assert arch.token_proj is None


def test_task_attention_tokens_with_mask():
    torch.manual_seed(0)
    arch = TaskAttention(12, 2, token_dim=6, d_model=8, n_heads=2, tower_sizes=(4,))
    assert arch.group_proj is None
    tokens = torch.randn(5, 3, 6, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [1, 1, 0]], dtype=bool)
    h = torch.randn(5, 12)
    reps = arch(h, tokens, mask)
    assert [r.shape for r in reps] == [(5, 4), (5, 4)]
    assert all(torch.isfinite(r).all() for r in reps)
    sum(r.sum() for r in reps).backward()
    assert torch.isfinite(tokens.grad).all()
    # an absent token gets no gradient: it is never attended to
    assert tokens.grad[1, 1].abs().sum() == 0 and tokens.grad[2, :2].abs().sum() == 0
    w = arch.attention_weights(h, tokens, mask)
    assert w.shape == (5, 2, 3)
    assert (w[~mask.unsqueeze(1).expand_as(w)] == 0).all()
    torch.testing.assert_close(w[:3].sum(-1), torch.ones(3, 2))
    assert (w[3] == 0).all()  # no present token at all
    torch.testing.assert_close(w[4].sum(-1), torch.ones(2))
    # values of absent tokens do not change the outputs
    tokens2 = tokens.detach().clone()
    tokens2[1, 1] = 100.0
    tokens2[3] = -5.0
    for a, b in zip(arch(h, tokens.detach(), mask), arch(h, tokens2, mask)):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="token"):
        arch(h)


def test_multitask_module_passes_tokens_to_task_attention():
    module = MultiTaskModule({"a": (4,), "b": (3,)}, [1, 3], architecture="task_attention",
                             embed_dim=8, d_model=8, n_heads=2)
    assert module.architecture.token_dim == 8
    blocks = {"a": torch.randn(4, 4), "b": torch.randn(4, 3)}
    mask = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1]], dtype=bool)
    out = module(blocks, mask)
    assert [o.shape for o in out] == [(4, 1), (4, 3)]
    w = module.architecture.last_attention_ if hasattr(
        module.architecture, "last_attention_") else None
    assert w is None
    with module.architecture.recording_attention():
        module(blocks, mask)
    w = module.architecture.last_attention_
    assert w.shape == (4, 2, 2)
    assert w[1, :, 1].abs().sum() == 0 and w[2, :, 0].abs().sum() == 0


@pytest.mark.parametrize("name", NEW)
def test_bad_hyperparameters_raise(name):
    with pytest.raises(ValueError, match="module__bogus"):
        make_architecture(name, 4, 2, bogus=1)
    if name in ("mmoe", "ple"):
        with pytest.raises(ValueError, match="expert_sizes"):
            make_architecture(name, 4, 2, expert_sizes=())
    if name == "task_attention":
        with pytest.raises(ValueError, match="multiple of n_heads"):
            make_architecture(name, 4, 2, d_model=10, n_heads=4)
    if name == "cross_stitch":
        with pytest.raises(ValueError, match="hidden_sizes"):
            make_architecture(name, 4, 2, hidden_sizes=(0,))


def test_shared_bottom_unchanged():
    arch = SharedBottom(4, 2, hidden_sizes=(8,), tower_sizes=(3,))
    assert arch.out_features == [3, 3]
    assert arch.last_shared_layer() is arch.trunk[0]


def _mixed_data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 8).astype(np.float32)
    Y = np.column_stack([
        (X[:, 0] + 0.3 * rng.randn(n) > 0).astype(float),
        np.digitize(X[:, 1], [-0.5, 0.5]).astype(float),
        X[:, 2] - X[:, 0] + 0.1 * rng.randn(n),
    ])
    Y[rng.rand(n) < 0.2, 0] = np.nan
    Y[rng.rand(n) < 0.2, 2] = np.nan
    return X, Y


@pytest.mark.parametrize("name", list(SMALL))
def test_trains_in_multitasknet_with_blocks(name):
    """Multi-block input with a missing modality and missing labels."""
    X, Y = _mixed_data()
    Xb = {"a": X[:, :5].copy(), "b": X[:, 5:].copy()}
    Xb["b"][::5] = np.nan  # modality b absent for every fifth row
    net = MultiTaskNet(tasks=["binary", "multiclass", "regression"], architecture=name,
                       max_epochs=2, batch_size=64, random_state=0, module__embed_dim=8,
                       **{f"module__{k}": v for k, v in SMALL[name].items()})
    net.fit(Xb, Y)
    pred = net.predict(Xb)
    assert pred.shape == (200, 3)
    assert np.isfinite(pred.astype(float)).all()
