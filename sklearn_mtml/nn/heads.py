"""One linear output head per task."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

__all__ = ["TaskHeads", "WideHeads", "ridge_path_fit"]

#: Penalties tried by :meth:`WideHeads.warm_start`, as multiples of the mean squared row norm.
RIDGE_ALPHAS = tuple(10.0 ** (k / 2) for k in range(-6, 5))  # 1e-3 ... 1e2
#: Rows used by :meth:`WideHeads.warm_start` when rows and inputs both exceed it.
MAX_WARM_START_ROWS = 4096


class TaskHeads(nn.Module):
    """A linear head per task: representation ``(n, d_t)`` → outputs ``(n, k_t)``.

    Parameters
    ----------
    in_features : sequence of int
        Width ``d_t`` of each task's representation.
    out_features : sequence of int
        Number of outputs ``k_t`` of each task (1 for binary and regression, ``n_classes`` for
        multi-class).
    """

    def __init__(self, in_features: Sequence[int], out_features: Sequence[int]):
        super().__init__()
        if len(in_features) != len(out_features):
            raise ValueError("in_features and out_features must have one entry per task.")
        self.heads = nn.ModuleList(nn.Linear(int(i), int(o)) for i, o in
                                   zip(in_features, out_features))

    def forward(self, reps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Apply each task's head to its representation."""
        return [head(r) for head, r in zip(self.heads, reps)]


class _BagOfWords(nn.Module):
    """A linear model over token ids: the mean of one weight vector per token, plus a bias.

    Padding (id 0) is excluded from the mean; an all-padding row gives the bias.
    """

    def __init__(self, vocab_size: int, out_features: int):
        super().__init__()
        self.bag = nn.EmbeddingBag(int(vocab_size), out_features, mode="mean", padding_idx=0)
        nn.init.zeros_(self.bag.weight)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.bag(ids.long()) + self.bias


def _linear(in_features: int, out_features: int) -> nn.Linear:
    """A linear map; one without inputs (a skipped block) is a bias only, built quietly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(in_features, out_features)


class WideHeads(nn.Module):
    """The wide (linear) path of a wide & deep network: inputs → every task's outputs.

    Each block gets one linear map from its (scaled) inputs to the outputs of all tasks, so
    that the network contains the linear model as a special case: on small tabular or pooled
    features the deep part only has to learn what a linear model cannot. Sequence blocks
    enter through the mean of their non-padding frames, image blocks through their channel
    means (a linear map of raw pixels overfits small image sets before the CNN has learned
    anything), token-id blocks as a bag of words (the mean of one learned weight vector per
    token, padding excluded). Weights start at zero.

    Parameters
    ----------
    block_shapes : sequence of tuple of int
        Per-row shape of each block.
    out_features : sequence of int
        Number of outputs of each task.
    gain : float or "auto", default="auto"
        Constant factor on the linear maps' outputs. Under Adam-type optimizers a parameter
        moves by about ``lr`` per step whatever its gradient's scale, so the gain makes the
        linear model converge ``gain`` times faster than the deep part: it is fitted before the
        deep part starts to overfit small data. Since every input moves the output, wide
        inputs need less: ``"auto"`` is ``10·sqrt(10 / d)`` within [1, 10] for ``d`` inputs
        in all (a token block counts as one input: its output is a mean).
    vocab_sizes : sequence of int or None, optional
        Vocabulary size of each block of token ids (``None`` for other blocks).
    skip : sequence of bool, optional
        Blocks the linear path does not read (their contribution is a learned bias only):
        blocks whose encoder reads them raw, such as waveforms for a pretrained audio model.
    """

    def __init__(self, block_shapes: Sequence[Sequence[int]], out_features: Sequence[int],
                 gain: float | str = "auto", vocab_sizes: Sequence[int | None] | None = None,
                 skip: Sequence[bool] | None = None):
        super().__init__()
        self.splits = [int(o) for o in out_features]
        self.shapes = [tuple(int(s) for s in shape) for shape in block_shapes]
        self.vocab_sizes = list(vocab_sizes or [None] * len(self.shapes))
        self.skip = [bool(b) for b in (skip or [False] * len(self.shapes))]
        if isinstance(gain, str) and gain == "auto":
            width = sum(self._width(shape, v, skipped) for shape, v, skipped
                        in zip(self.shapes, self.vocab_sizes, self.skip))
            gain = min(max(10.0 * math.sqrt(10.0 / max(width, 1)), 1.0), 10.0)
        self.gain = float(gain)
        total = sum(self.splits)
        self.linears = nn.ModuleList(
            _linear(self._width(shape, None, skipped), total) if vocab is None
            else _BagOfWords(vocab, total)
            for shape, vocab, skipped in zip(self.shapes, self.vocab_sizes, self.skip))
        for linear in self.linears:
            if isinstance(linear, nn.Linear):
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def _width(self, shape: tuple[int, ...], vocab_size: int | None = None,
               skipped: bool = False) -> int:
        if skipped:  # a block the wide path does not read (e.g. raw waveforms)
            return 0
        if vocab_size is not None:
            return 1
        if len(shape) == 1:
            return shape[0]
        if len(shape) == 2:
            return shape[1]
        return shape[0]

    def _inputs(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if not x.is_floating_point():  # token ids: the bag of words reads them
            return x
        if len(shape) == 1:
            return x
        if len(shape) == 2:  # (n, T, F): mean over non-padding frames
            frames = (x != 0).any(-1, keepdim=True).to(x.dtype)
            return (x * frames).sum(1) / frames.sum(1).clamp_min(1.0)
        return x.flatten(2).mean(2)

    def _contributions(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each block's ``(n, Σ k_t)`` contribution to the outputs of all tasks."""
        return [self.gain * linear(x.new_zeros((x.shape[0], 0)) if skipped
                                   else self._inputs(x, shape))
                for linear, x, shape, skipped in zip(self.linears, xs, self.shapes, self.skip)]

    @torch.no_grad()
    def warm_start(self, xs: Sequence[torch.Tensor], mask: torch.Tensor, targets: torch.Tensor,
                   weights: torch.Tensor, kinds: Sequence[str], late: bool = False,
                   random_state: int = 0) -> list[float | None]:
        """Start the linear maps at the cross-validated ridge solution of each task.

        For each task, a ridge regression from the wide inputs of the labelled rows (every
        block's inputs as :meth:`forward` reads them, zero where the block is absent; token
        blocks keep their zero start) to the task's encoded target — the standardised value
        of a regression, the class indicators of a classification — with the penalty that
        minimises the exact leave-one-out error (:func:`ridge_path_fit`). A classification
        task's ridge scores are then turned into logits by one scale and one offset per
        class, fitted on the leave-one-out scores (not the in-sample ones, which would be
        over-confident). Training then fine-tunes these weights together with the deep
        path: the network starts from, and early stopping compares against, the linear
        model that a cross-validated ``RidgeCV``/``RidgeClassifierCV`` would fit.

        Parameters
        ----------
        xs : sequence of Tensor
            Every block's scaled inputs ``(n, *shape)``, training rows only.
        mask : Tensor of bool, shape (n, M)
            Presence of each block.
        targets : Tensor of shape (n, T)
            Encoded targets (see :meth:`sklearn_mtml.tasks.Task.encode`).
        weights : Tensor of shape (n, T)
            Label weight of each row and task (0 where the label is missing).
        kinds : sequence of {"regression", "binary", "multiclass"}
            Kind of each task.
        late : bool, default=False
            The blocks' contributions are averaged (late fusion) rather than summed: each
            block's share is multiplied by the number of blocks and every block carries the
            intercept, so that a row with every block present starts at the joint linear
            model.
        random_state : int, default=0
            Seed of the row subsample used when both the rows and the inputs exceed
            :data:`MAX_WARM_START_ROWS`.

        Returns
        -------
        alphas : list of float or None
            The chosen relative penalty of each task (``None``: not warm-started).
        """
        blocks = [i for i, v in enumerate(self.vocab_sizes) if v is None]
        if not blocks or len(kinds) != len(self.splits):
            return [None] * len(self.splits)
        m = mask.to(torch.float64)
        parts = [(xs[i].new_zeros((xs[i].shape[0], 0)) if self.skip[i]
                  else self._inputs(xs[i], self.shapes[i])).double() * m[:, i:i + 1]
                 for i in blocks]
        Z = torch.cat(parts, dim=1)
        widths = [p.shape[1] for p in parts]
        factor = float(len(self.shapes)) if late else 1.0
        offsets = [0, *torch.tensor(self.splits).cumsum(0).tolist()]
        generator = torch.Generator().manual_seed(int(random_state))
        chosen: list[float | None] = []
        caches: list[tuple[torch.Tensor, dict]] = []  # one decomposition per label weights
        for t, kind in enumerate(kinds):
            rows = torch.nonzero(weights[:, t] > 0).flatten()
            if len(rows) < 3:
                chosen.append(None)
                continue
            cache = next((c for col, c in caches if torch.equal(col, weights[:, t])), None)
            if cache is None:
                cache = {}
                caches.append((weights[:, t], cache))
            if len(rows) > MAX_WARM_START_ROWS and Z.shape[1] > MAX_WARM_START_ROWS:
                pick = torch.randperm(len(rows), generator=generator)[:MAX_WARM_START_ROWS]
                rows = rows[pick.to(rows.device)]
                cache = {}  # the subsample: no sharing
            z, y, w = Z[rows], targets[rows, t].double(), weights[rows, t].double()
            if kind == "multiclass":
                Y = torch.nn.functional.one_hot(y.long(), self.splits[t]).double()
            else:
                Y = y[:, None]
            coef, intercept, loo, alpha = ridge_path_fit(z, Y, w, cache=cache)
            if kind != "regression":
                a, c = _calibrate(loo, y, w, kind)
                coef, intercept = a * coef, a * intercept + c
            chosen.append(alpha)
            lo, hi = offsets[t], offsets[t + 1]
            start = 0
            for j, (i, width) in enumerate(zip(blocks, widths)):
                linear = cast(nn.Linear, self.linears[i])
                part = coef[:, start:start + width] * (factor / self.gain)
                linear.weight[lo:hi] = part.to(linear.weight.dtype)
                if late or j == 0:
                    linear.bias[lo:hi] = (intercept / self.gain).to(linear.bias.dtype)
                else:
                    linear.bias[lo:hi] = 0.0
                start += width
        return chosen

    def per_block(self, xs: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Each block's contribution to each task: ``[block][task] -> (n, k_t)``."""
        return [list(torch.split(c, self.splits, dim=1)) for c in self._contributions(xs)]

    def forward(self, xs: Sequence[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Sum of the present blocks' contributions: one ``(n, k_t)`` tensor per task."""
        contributions = self._contributions(xs)
        m = mask.to(contributions[0].dtype)
        total = cast(torch.Tensor, sum(c * m[:, i:i + 1] for i, c in enumerate(contributions)))
        return list(torch.split(total, self.splits, dim=1))


def ridge_path_fit(Z: torch.Tensor, Y: torch.Tensor, weight: torch.Tensor,
                   alphas: Sequence[float] = RIDGE_ALPHAS, cache: dict | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Weighted ridge regression with an intercept, its penalty chosen by leave-one-out error.

    Solves ``min Σ_i w_i ||y_i - b - W z_i||² + α ||W||²`` for every ``α`` of ``alphas``
    (multiples of the weighted mean squared row norm of the centred ``Z``, so that the grid
    does not depend on the inputs' scale) through one eigendecomposition (of ``ZᵀZ`` or of
    ``ZZᵀ``, whichever is smaller), and keeps the ``α`` with the lowest weighted
    leave-one-out squared error, summed over the columns of ``Y`` (the closed form of
    :class:`~sklearn.linear_model.RidgeCV`; the intercept is not penalised).

    Parameters
    ----------
    Z : Tensor of shape (n, d)
        Inputs.
    Y : Tensor of shape (n, k)
        Targets.
    weight : Tensor of shape (n,)
        Positive row weights.
    alphas : sequence of float, default=RIDGE_ALPHAS
        Relative penalties to try.
    cache : dict, optional
        Keeps the eigendecomposition for the next call with the same ``Z`` and ``weight``
        (another target): pass the same empty dict to each such call.

    Returns
    -------
    coef : Tensor of shape (k, d)
    intercept : Tensor of shape (k,)
    loo : Tensor of shape (n, k)
        Leave-one-out predictions at the chosen penalty.
    alpha : float
        The chosen relative penalty.
    """
    cache = {} if cache is None else cache
    if not cache:
        Z, weight = Z.double(), weight.double()
        w = weight / weight.sum()
        z_mean = w @ Z
        root = weight.sqrt()[:, None]
        Zc = (Z - z_mean) * root
        n, d = Zc.shape
        if d <= n:
            s, V = torch.linalg.eigh(Zc.T @ Zc)
            U = Zc @ V  # (n, d): columns U_k scaled by sqrt(s_k)
            lev_basis = U ** 2
        else:
            s, U = torch.linalg.eigh(Zc @ Zc.T)
            V = None
            lev_basis = U ** 2 * s  # H_ii = Σ_k U_ik² s_k / (s_k + α)
        cache.update(w=w, z_mean=z_mean, root=root, Zc=Zc, s=s.clamp_min(0.0), U=U, V=V,
                     lev_basis=lev_basis, scale=float((Zc ** 2).sum()) / max(
                         float(weight.sum()), 1e-12))
    w, z_mean, root, Zc = cache["w"], cache["z_mean"], cache["root"], cache["Zc"]
    s, U, V, lev_basis, scale = (cache[k] for k in ("s", "U", "V", "lev_basis", "scale"))
    n, d = Zc.shape
    Y = Y.double()
    y_mean = w @ Y
    Yc = (Y - y_mean) * root
    proj = U.T @ Yc
    best = None
    for rel in alphas:
        alpha = max(rel * scale, 1e-12)
        inv = 1.0 / (s + alpha)
        if V is not None:
            fitted = U @ (proj * inv[:, None])
        else:
            fitted = U @ (proj * (s * inv)[:, None])
        leverage = (lev_basis @ inv + w).clamp_max(1.0 - 1e-6)  # + the intercept's
        resid = (Yc - fitted) / (1.0 - leverage)[:, None]
        err = float((resid ** 2).sum())
        if best is None or err < best[0]:
            best = (err, rel, alpha, resid)
    assert best is not None
    _, rel, alpha, resid = best
    inv = 1.0 / (s + alpha)
    if V is not None:
        coef = (V @ (proj * inv[:, None])).T
    else:
        coef = (Zc.T @ (U @ (proj * inv[:, None]))).T
    intercept = y_mean - coef @ z_mean
    loo = (Yc - resid) / root.clamp_min(1e-12) + y_mean
    return coef, intercept, loo, float(rel)


def _calibrate(scores: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, kind: str,
               steps: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale ``a`` and offsets ``c`` such that ``a·scores + c`` are calibrated logits.

    Fitted by L-BFGS on the task's weighted log-loss (binary: one column of scores, multi-
    class: one per class); ``a`` is kept non-negative.
    """
    scores, weight = scores.double(), weight.double() / weight.sum()
    log_a = torch.zeros((), dtype=torch.float64, requires_grad=True)
    c = torch.zeros(scores.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_a, c], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")
    nn_f = torch.nn.functional

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = log_a.exp() * scores + c
        if kind == "binary":
            loss = nn_f.binary_cross_entropy_with_logits(logits[:, 0], target.double(),
                                                         reduction="none")
        else:
            loss = nn_f.cross_entropy(logits, target.long(), reduction="none")
        total = (loss * weight).sum()
        total.backward()
        return total

    with torch.enable_grad():
        opt.step(closure)
    return log_a.detach().exp(), c.detach()
