"""Input scaling inside the network: each block standardised from its training statistics.

A user never needs to put a scaler in front of :class:`~sklearn_mtml.MultiTaskNet`: the
statistics of every input block are computed from the training rows at fit
(:func:`block_statistics`) and applied by a :class:`BlockScaler` at the front of the network,
so that they travel with the model (state dict, pickle, device).

Statistics are per feature: per column of a ``(n, d)`` block, per frame feature of a
``(n, T, F)`` sequence (over the non-padding frames), per channel of a ``(n, C, H, W)`` image.
``"robust"`` centres on the median and divides by the inter-quartile range (scaled to match a
normal standard deviation; the standard deviation where the IQR is zero, 1 where both are),
``"standard"`` uses the mean and standard deviation. A column that is zero in most rows
(TF-IDF, counts, one-hot indicators) is not centred: it is divided by the median of its
non-zero magnitudes, so its zeros stay zero and a typical non-zero value becomes 1. The scaled
values then pass a soft clip:
beyond ``±clip`` they grow only logarithmically, so heavy-tailed features (audio energies,
counts, prices) neither dominate the first layer nor lose their order.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["SCALINGS", "BlockScaler", "block_statistics"]

#: Accepted names of the scaling method (``None`` disables scaling).
SCALINGS = ("robust", "standard")

_IQR_TO_STD = 1.3489795  # IQR of the standard normal distribution
_MAX_VALUES = 100_000  # values per feature used to estimate the statistics
_MAX_TOTAL = 1_000_000  # values in all used to estimate them


def _feature_axis_values(block: np.ndarray) -> np.ndarray:
    """Rearrange a block into ``(n_values, n_features)`` for per-feature statistics."""
    if block.ndim == 2:
        return block
    if block.ndim == 3:  # (n, T, F): frames that are entirely zero are padding
        frames = block.reshape(-1, block.shape[-1])
        keep = np.any(frames != 0, axis=1)
        return frames[keep] if keep.any() else frames
    # (n, C, H, W) or more: per channel
    return np.moveaxis(block, 1, -1).reshape(-1, block.shape[1])


def block_statistics(block: np.ndarray, method: str = "robust",
                     random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale of each feature of a block, from its (present, training) rows.

    Parameters
    ----------
    block : ndarray of shape (n, d), (n, T, F) or (n, C, H, W)
        Training rows of one block (rows where the block is absent already removed).
    method : {"robust", "standard"}, default="robust"
        Median and IQR, or mean and standard deviation.
    random_state : int, default=0
        Seed of the subsample used when the block holds more than 100,000 values per
        feature (or a million in all).

    Returns
    -------
    center, scale : ndarray of float32, shape (n_features,)
        ``scale`` is positive: a constant feature gets scale 1.
    """
    if method not in SCALINGS:
        raise ValueError(f"Unknown input scaling {method!r}; expected one of {SCALINGS} or None.")
    block = np.asarray(block)
    n_features = block.shape[1 if block.ndim >= 4 else -1]  # images: channels
    per_row = max(int(np.prod(block.shape[1:])) // n_features, 1)  # values per feature a row
    max_rows = max(min(_MAX_VALUES // per_row, _MAX_TOTAL // (per_row * n_features)), 1)
    if block.shape[0] > max_rows:  # subsample rows before any copy of a large block
        rows = np.random.RandomState(random_state).choice(block.shape[0], max_rows,
                                                          replace=False)
        block = block[np.sort(rows)]
    values = _feature_axis_values(block).astype(np.float64, copy=False)
    if values.shape[0] == 0:
        return np.zeros(n_features, np.float32), np.ones(n_features, np.float32)
    std = values.std(axis=0)
    if method == "standard":
        center, scale = values.mean(axis=0), std
    else:
        q25, center, q75 = np.percentile(values, [25, 50, 75], axis=0)
        scale = (q75 - q25) / _IQR_TO_STD
        scale = np.where(scale > 1e-12 * np.maximum(np.abs(center), 1.0), scale, std)
    # Columns that are zero in most rows (TF-IDF, counts, one-hot): standardising would turn
    # a rare non-zero into a huge value. Keep the zeros at zero and bring a typical non-zero
    # value to 1: divide by the median non-zero magnitude.
    sparse = (values == 0).mean(axis=0) > 0.5
    if sparse.any():
        nonzero = np.abs(values[:, sparse])
        nonzero[nonzero == 0] = np.nan
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-zero columns
            typical = np.nanmedian(nonzero, axis=0)
        center = np.where(sparse, 0.0, center)
        scale = scale.copy()
        scale[sparse] = typical
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    return center.astype(np.float32), scale.astype(np.float32)


class BlockScaler(nn.Module):
    """``x → softclip((x - center) / scale)`` with fitted per-feature statistics.

    Parameters
    ----------
    center, scale : array-like of shape (n_features,)
        From :func:`block_statistics`.
    ndim : int
        Number of per-row dimensions of the block (1 features, 2 sequences, 3 images).
    clip : float or None, default=3.0
        Beyond ``±clip`` the scaled value grows as ``clip + log1p(|z| - clip)``; ``None``
        leaves it linear.
    """

    center: torch.Tensor  # buffers
    scale: torch.Tensor

    def __init__(self, center, scale, ndim: int, clip: float | None = 3.0):
        super().__init__()
        center = torch.as_tensor(np.asarray(center, dtype=np.float32))
        scale = torch.as_tensor(np.asarray(scale, dtype=np.float32))
        if ndim >= 3:  # images: per channel
            shape = (1, -1) + (1,) * (ndim - 1)
        else:  # features or sequences: per last-axis feature
            shape = (1,) * ndim + (-1,)
        self.register_buffer("center", center.reshape(shape))
        self.register_buffer("scale", scale.reshape(shape))
        self.ndim = int(ndim)
        self.clip = None if clip is None else float(clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        inv = 1.0 / self.scale
        z = torch.addcmul(-self.center * inv, x, inv)  # one pass for (x - center) / scale
        if self.clip is not None:
            excess = (z.abs() - self.clip).clamp_min(0.0)
            if x.requires_grad:  # autograd needs the out-of-place form
                z = z - torch.sign(z) * (excess - torch.log1p(excess))
            else:  # a fresh tensor: update it in place, half the memory passes
                z.sub_(torch.log1p(excess).neg_().add_(excess).mul_(torch.sign(z)))
        if self.ndim == 2:  # keep padding frames (all zero) at zero for the encoders
            z = z * (x != 0).any(-1, keepdim=True).to(z.dtype)
        return z
