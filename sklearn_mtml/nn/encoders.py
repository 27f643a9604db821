"""Per-modality encoders: one block of inputs → one embedding per row.

The encoder of a block is chosen from the block's per-row shape:

- ``(d,)`` feature vectors: :class:`FeatureEncoder` (identity, or an MLP to ``embed_dim``);
- ``(T, F)`` frame sequences: :class:`SequenceEncoder` (1-D convolutions, masked mean pooling;
  all-zero frames are padding), or :class:`GRUEncoder` on request (``encoders={"audio":
  "gru"}``);
- ``(C, H, W)`` images: :class:`ImageEncoder` (a small CNN with global average pooling).

Every encoder maps ``(n, *shape)`` to ``(n, out_features)``. A new encoder is one class and one
:data:`ENCODERS` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .layers import make_activation, masked_mean, mlp

__all__ = [
    "ENCODERS",
    "FeatureEncoder",
    "GRUEncoder",
    "ImageEncoder",
    "SequenceEncoder",
    "default_encoder_kind",
    "make_encoder",
]


class FeatureEncoder(nn.Module):
    """Encoder of a 2-D feature block: identity when ``embed_dim`` is ``None``, else an MLP.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(d,)``.
    embed_dim : int or None
        Output width; ``None`` passes the features through unchanged.
    activation : str, default="relu"
        Non-linearity of the MLP.
    dropout : float, default=0.0
        Dropout of the MLP.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        (d,) = shape
        self.net = nn.Identity() if embed_dim is None else mlp(
            d, [embed_dim], activation=activation, dropout=dropout)
        self.out_features = int(d if embed_dim is None else embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)


class SequenceEncoder(nn.Module):
    """Encoder of ``(n, T, F)`` frame sequences: two 1-D convolutions and masked mean pooling.

    Frames that are entirely zero are padding and do not enter the pooled mean.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(T, F)``.
    embed_dim : int or None
        Output width (``None``: 64).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout before pooling.
    kernel_size : int, default=5
        Convolution width in frames.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0, kernel_size: int = 5):
        super().__init__()
        _, f = shape
        width = int(embed_dim or 64)
        pad = kernel_size // 2
        self.conv = nn.Sequential(
            nn.Conv1d(f, width, kernel_size, padding=pad), make_activation(activation),
            nn.Conv1d(width, width, kernel_size, padding=pad), make_activation(activation),
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        frame_mask = x.abs().sum(-1) > 0  # (n, T)
        z = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (n, T, width)
        return masked_mean(self.dropout(z), frame_mask, dim=1)


class GRUEncoder(nn.Module):
    """Encoder of ``(n, T, F)`` frame sequences: a bidirectional GRU and masked mean pooling.

    All-zero frames at the end of a row are padding: the GRU runs over each row's own frames
    only (packed sequences), and the pooled mean skips the padding.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(T, F)``.
    embed_dim : int or None
        Output width (``None``: 64); each direction has ``embed_dim // 2`` units.
    activation : str, default="relu"
        Unused (accepted for a uniform constructor).
    dropout : float, default=0.0
        Dropout before pooling.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        _, f = shape
        width = int(embed_dim or 64)
        self.gru = nn.GRU(f, max(width // 2, 1), batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out_features = 2 * max(width // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        frame_mask = x.abs().sum(-1) > 0
        # length = last non-zero frame + 1 (padding is at the end); at least 1 frame
        positions = torch.arange(1, x.shape[1] + 1, device=x.device)
        lengths = (frame_mask * positions).amax(1).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        z, _ = self.gru(packed)
        z, _ = nn.utils.rnn.pad_packed_sequence(z, batch_first=True, total_length=x.shape[1])
        return masked_mean(self.dropout(z), frame_mask, dim=1)


def _groups(channels: int, per_group: int = 8) -> int:
    """Number of GroupNorm groups: about ``per_group`` channels each, dividing ``channels``."""
    groups = max(channels // per_group, 1)
    while channels % groups:
        groups -= 1
    return groups


class ImageEncoder(nn.Module):
    """Encoder of ``(n, C, H, W)`` images: three conv blocks and a pooled spatial grid.

    Each block is a 3×3 convolution, group normalisation (statistics per image, so training
    on a hundred images in small batches is as stable as on many) and the activation, with
    2×2 max pooling between blocks.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(C, H, W)``.
    embed_dim : int or None
        Output width (``None``: 64).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout before the output projection.
    channels : sequence of int, default=(16, 32, 64)
        Channels of the conv blocks.
    pool_size : int, default=3
        The last block's maps are average-pooled to a ``pool_size × pool_size`` grid (not to
        one value per channel), so the projection sees where features are.
    max_side : int or None, default=64
        Images whose longer side exceeds it are first average-pooled to that size (aspect
        ratio kept), which keeps an epoch cheap; ``None`` keeps the full resolution.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0, channels: Sequence[int] = (16, 32, 64),
                 pool_size: int = 3, max_side: int | None = 64):
        super().__init__()
        c, h, w = (int(v) for v in shape)
        layers: list[nn.Module] = []
        if max_side is not None and max(h, w) > max_side:
            # large images are averaged down first: an epoch stays cheap on a CPU, and a few
            # hundred images cannot train a CNN at full resolution anyway
            ratio = max_side / max(h, w)
            layers.append(nn.AdaptiveAvgPool2d((max(round(h * ratio), 1),
                                                max(round(w * ratio), 1))))
        for i, out in enumerate(channels):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.GroupNorm(_groups(out), out),
                       make_activation(activation)]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c = out
        self.features = nn.Sequential(*layers)
        # a coarse spatial grid rather than one global average: where a stroke is matters
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        width = int(embed_dim or 64)
        self.proj = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(c * pool_size * pool_size, width),
                                  make_activation(activation))
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.proj(self.pool(self.features(x)))


#: Registry of encoders: name -> factory ``(shape, embed_dim, **params) -> nn.Module``.
ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "features": FeatureEncoder,
    "sequence": SequenceEncoder,
    "gru": GRUEncoder,
    "image": ImageEncoder,
}


def default_encoder_kind(shape: Sequence[int]) -> str:
    """Encoder name for a block of per-row ``shape``: by its number of dimensions."""
    kinds = {1: "features", 2: "sequence", 3: "image"}
    if len(shape) not in kinds:
        raise ValueError(
            f"cannot encode blocks with per-row shape {tuple(shape)}: expected (d,), (T, F) "
            "or (C, H, W)."
        )
    return kinds[len(shape)]


def make_encoder(shape: Sequence[int], embed_dim: int | None, kind: str | None = None,
                 **params) -> nn.Module:
    """Build the encoder of one block.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape of the block.
    embed_dim : int or None
        Output width (``None`` keeps 2-D features as they are).
    kind : str or None
        A key of :data:`ENCODERS`; ``None`` chooses from ``shape``.
    **params
        Passed to the encoder.

    Returns
    -------
    encoder : nn.Module
        With an ``out_features`` attribute.
    """
    kind = kind or default_encoder_kind(shape)
    if kind not in ENCODERS:
        raise ValueError(f"Unknown encoder {kind!r}; expected one of {sorted(ENCODERS)}.")
    return ENCODERS[kind](tuple(shape), embed_dim, **params)
