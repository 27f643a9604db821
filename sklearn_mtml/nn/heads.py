"""One linear output head per task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["TaskHeads"]


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
