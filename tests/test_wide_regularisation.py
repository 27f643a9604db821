"""The wide path's warm start: the cross-validated ridge solution of every task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from sklearn_mtml.nn import MultiTaskModule
from sklearn_mtml.nn.heads import RIDGE_ALPHAS, WideHeads, ridge_path_fit


@pytest.mark.parametrize(("n", "d"), [(60, 8), (25, 70)])  # primal and dual forms
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ridge_path_fit_is_ridgecv(n, d, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + rng.randn(n)
    coef, intercept, loo, rel = ridge_path_fit(torch.tensor(X), torch.tensor(y[:, None]),
                                               torch.ones(n, dtype=torch.float64))
    scale = ((X - X.mean(0)) ** 2).sum() / n

    def loo_error(alpha):  # brute force: refit without each row
        errors = [Ridge(alpha=alpha).fit(np.delete(X, i, 0), np.delete(y, i))
                  .predict(X[i:i + 1])[0] - y[i] for i in range(n)]
        return np.square(errors).sum()

    errors = [loo_error(a * scale) for a in RIDGE_ALPHAS]
    assert rel == pytest.approx(RIDGE_ALPHAS[int(np.argmin(errors))])
    ref = Ridge(alpha=rel * scale).fit(X, y)
    np.testing.assert_allclose(coef.numpy()[0], ref.coef_, atol=1e-8)
    assert intercept.item() == pytest.approx(ref.intercept_, abs=1e-8)
    for i in (0, n // 2):
        single = Ridge(alpha=rel * scale).fit(np.delete(X, i, 0), np.delete(y, i))
        assert loo[i, 0].item() == pytest.approx(single.predict(X[i:i + 1])[0], abs=1e-8)


def test_ridge_path_fit_row_weights_are_repeated_rows():
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 4), rng.randn(30)
    w = rng.randint(1, 4, 30).astype(float)
    coef, intercept, _, rel = ridge_path_fit(torch.tensor(X), torch.tensor(y[:, None]),
                                             torch.tensor(w))
    Xc = X - np.average(X, axis=0, weights=w)
    scale = (w[:, None] * Xc ** 2).sum() / w.sum()
    ref = Ridge(alpha=rel * scale).fit(np.repeat(X, w.astype(int), 0),
                                       np.repeat(y, w.astype(int)))
    np.testing.assert_allclose(coef.numpy()[0], ref.coef_, atol=1e-8)


def _linear_data(seed: int, n: int = 200):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, 6, generator=g), torch.randn(n, 3, generator=g)
    reg = a[:, 0] - 2 * b[:, 1] + 0.3 * torch.randn(n, generator=g)
    cls = (a[:, 1] + b[:, 0] + 0.3 * torch.randn(n, generator=g) > 0).float()
    return {"a": a, "b": b}, torch.stack([reg, cls], 1)


@pytest.mark.parametrize("fusion", ["concat", "late"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warm_started_network_starts_at_the_joint_ridge_model(fusion, seed):
    torch.manual_seed(seed)
    blocks, targets = _linear_data(seed)
    n = targets.shape[0]
    module = MultiTaskModule({"a": (6,), "b": (3,)}, [1, 1], fusion=fusion).eval()
    mask = torch.ones(n, 2, dtype=torch.bool)
    weights = torch.ones(n, 2)
    alphas = module.warm_start_wide(blocks, mask, targets, weights, ["regression", "binary"],
                                    prescaled=True)
    assert all(a is not None for a in alphas)
    out = module(blocks, mask, prescaled=True)
    Z = torch.cat([blocks["a"], blocks["b"]], 1).double()
    coef, intercept, _, _ = ridge_path_fit(Z, targets[:, :1].double(), weights[:, 0].double())
    expected = Z @ coef[0] + intercept[0]
    torch.testing.assert_close(out[0][:, 0].double(), expected, rtol=1e-4, atol=1e-4)
    # the binary task: calibrated logits, far better than the zero start (log-loss log 2)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out[1][:, 0], targets[:, 1])
    assert loss.item() < 0.5 * np.log(2.0)
    assert ((out[1][:, 0] > 0).float() == targets[:, 1]).float().mean() > 0.85


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warm_start_multiclass_and_missing_labels(seed):
    g = torch.Generator().manual_seed(seed)
    n = 300
    x = torch.randn(n, 5, generator=g)
    y = (x[:, :3] + 0.3 * torch.randn(n, 3, generator=g)).argmax(1).float()
    weights = torch.ones(n, 1)
    weights[::4] = 0.0
    garbage = y.clone()
    garbage[::4] = (garbage[::4] + 1) % 3  # wrong labels on the unlabelled rows
    wide = WideHeads([(5,)], [3])
    wide.warm_start([x], torch.ones(n, 1, dtype=torch.bool), garbage[:, None], weights,
                    ["multiclass"])
    clean = WideHeads([(5,)], [3])
    clean.warm_start([x[weights[:, 0] > 0]], torch.ones(int(weights.sum()), 1, dtype=torch.bool),
                     y[weights[:, 0] > 0][:, None], torch.ones(int(weights.sum()), 1),
                     ["multiclass"])
    torch.testing.assert_close(wide.linears[0].weight, clean.linears[0].weight)
    logits = wide([x], torch.ones(n, 1, dtype=torch.bool))[0]
    assert (logits.argmax(1).float() == y).float().mean() > 0.8
    assert torch.nn.functional.cross_entropy(logits, y.long()).item() < 0.7 * np.log(3.0)


def test_warm_start_leaves_token_blocks_and_no_wide_path_alone():
    wide = WideHeads([(4,)], [1], vocab_sizes=[10])
    ids = torch.randint(1, 10, (20, 4))
    assert wide.warm_start([ids], torch.ones(20, 1, dtype=torch.bool), torch.randn(20, 1),
                           torch.ones(20, 1), ["regression"]) == [None]
    assert torch.count_nonzero(wide.linears[0].bag.weight) == 0
    module = MultiTaskModule({"x": (3,)}, [1], wide=False)
    x = {"x": torch.randn(10, 3)}
    assert module.warm_start_wide(x, torch.ones(10, 1, dtype=torch.bool), torch.randn(10, 1),
                                  torch.ones(10, 1), ["regression"]) == [None]


def test_ridge_path_fit_cache_gives_the_same_fit():
    rng = np.random.RandomState(0)
    X, Y = torch.tensor(rng.randn(40, 12)), torch.tensor(rng.randn(40, 2))
    w = torch.ones(40, dtype=torch.float64)
    cache: dict = {}
    first = ridge_path_fit(X, Y[:, :1], w, cache=cache)
    second = ridge_path_fit(X, Y[:, 1:], w, cache=cache)  # reuses the decomposition
    assert cache
    for got, want in zip((first, second), (ridge_path_fit(X, Y[:, :1], w),
                                            ridge_path_fit(X, Y[:, 1:], w))):
        torch.testing.assert_close(got[0], want[0])
        assert got[3] == want[3]
