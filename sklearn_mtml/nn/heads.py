"""One linear output head per task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

__all__ = ["TaskHeads", "WideHeads"]


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
    """

    def __init__(self, block_shapes: Sequence[Sequence[int]], out_features: Sequence[int],
                 gain: float | str = "auto", vocab_sizes: Sequence[int | None] | None = None):
        super().__init__()
        self.splits = [int(o) for o in out_features]
        self.shapes = [tuple(int(s) for s in shape) for shape in block_shapes]
        self.vocab_sizes = list(vocab_sizes or [None] * len(self.shapes))
        if isinstance(gain, str) and gain == "auto":
            width = sum(self._width(shape, v) for shape, v in zip(self.shapes, self.vocab_sizes))
            gain = min(max(10.0 * math.sqrt(10.0 / max(width, 1)), 1.0), 10.0)
        self.gain = float(gain)
        total = sum(self.splits)
        self.linears = nn.ModuleList(
            nn.Linear(self._width(shape), total) if vocab is None
            else _BagOfWords(vocab, total)
            for shape, vocab in zip(self.shapes, self.vocab_sizes))
        for linear in self.linears:
            if isinstance(linear, nn.Linear):
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def _width(self, shape: tuple[int, ...], vocab_size: int | None = None) -> int:
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
        return [self.gain * linear(self._inputs(x, shape))
                for linear, x, shape in zip(self.linears, xs, self.shapes)]

    def per_block(self, xs: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Each block's contribution to each task: ``[block][task] -> (n, k_t)``."""
        return [list(torch.split(c, self.splits, dim=1)) for c in self._contributions(xs)]

    def forward(self, xs: Sequence[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Sum of the present blocks' contributions: one ``(n, k_t)`` tensor per task."""
        contributions = self._contributions(xs)
        m = mask.to(contributions[0].dtype)
        total = cast(torch.Tensor, sum(c * m[:, i:i + 1] for i, c in enumerate(contributions)))
        return list(torch.split(total, self.splits, dim=1))
