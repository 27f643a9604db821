"""Fusion modules: per-modality embeddings → one representation per row.

Contract: ``forward(embeddings, mask) -> (h, weights)`` where ``embeddings`` is a list of
``M`` tensors ``(n, d_m)``, ``mask`` a boolean ``(n, M)`` presence mask, ``h`` the fused
``(n, out_features)`` representation and ``weights`` the ``(n, M)`` per-row modality weights
(``None`` for fusions without weights). Absent modalities never contribute.

Fusions with ``needs_equal_dims = True`` receive embeddings that all have ``embed_dim``
columns. A new fusion is one class registered with :func:`register_fusion` (or passed as a
class: ``MultiTaskNet(fusion=MyFusion)``); its keyword arguments come from
``module__fusion_params``. Late (model-based) fusion
combines per-modality *predictions* and lives in :mod:`sklearn_mtml.nn.model`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._registry import registrar

__all__ = ["FUSIONS", "AttentionFusion", "ConcatFusion", "GatedFusion", "register_fusion"]

#: Registry of fusion modules: name -> class. ``"late"`` is handled by the model itself.
FUSIONS: dict[str, type[nn.Module]] = {}
#: Class decorator registering a fusion under a name (``@register_fusion("mine")``).
register_fusion = registrar(FUSIONS)


@register_fusion("concat")
class ConcatFusion(nn.Module):
    """Early fusion: concatenate the embeddings (absent modalities are zeros).

    Parameters
    ----------
    in_features : sequence of int
        Width of each modality's embedding.
    """

    needs_equal_dims = False

    def __init__(self, in_features: Sequence[int]):
        super().__init__()
        self.out_features = int(sum(in_features))

    def forward(self, embeddings, mask):  # noqa: D102
        if len(embeddings) == 1:
            return embeddings[0], None
        m = mask.to(embeddings[0].dtype)
        return torch.cat([e * m[:, i:i + 1] for i, e in enumerate(embeddings)], dim=1), None


@register_fusion("attention")
class AttentionFusion(nn.Module):
    """Attention over modality embeddings: a per-row softmax, masked for absent modalities.

    Each embedding ``e_m`` is scored by ``v·tanh(W e_m)``; ``h = Σ_m α_m e_m`` with
    ``α = softmax(scores)`` over the present modalities.

    Parameters
    ----------
    in_features : sequence of int
        Width of each embedding (all equal).
    hidden : int, default=64
        Width of the scoring layer.
    """

    needs_equal_dims = True

    def __init__(self, in_features: Sequence[int], hidden: int = 64):
        super().__init__()
        d = int(in_features[0])
        self.score = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out_features = d

    def forward(self, embeddings, mask):  # noqa: D102
        e = torch.stack(embeddings, dim=1)  # (n, M, d)
        scores = self.score(e).squeeze(-1).masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(scores, dim=1)
        alpha = torch.nan_to_num(alpha, nan=0.0)  # rows with no modality at all
        return (alpha.unsqueeze(-1) * e).sum(1), alpha


@register_fusion("gated")
class GatedFusion(nn.Module):
    """Gated fusion: a sigmoid gate per modality computed from all embeddings.

    ``g = σ(W [e_1, …, e_M])``; ``h = Σ_m g_m e_m / Σ_m g_m`` over present modalities.

    Parameters
    ----------
    in_features : sequence of int
        Width of each embedding (all equal).
    """

    needs_equal_dims = True

    def __init__(self, in_features: Sequence[int]):
        super().__init__()
        d = int(in_features[0])
        self.gate = nn.Linear(d * len(in_features), len(in_features))
        self.out_features = d

    def forward(self, embeddings, mask):  # noqa: D102
        e = torch.stack(embeddings, dim=1)
        m = mask.to(e.dtype)
        g = torch.sigmoid(self.gate((e * m.unsqueeze(-1)).flatten(1))) * m
        w = g / g.sum(1, keepdim=True).clamp_min(1e-6)
        return (w.unsqueeze(-1) * e).sum(1), w


