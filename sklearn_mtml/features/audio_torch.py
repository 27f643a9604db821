"""Batched PyTorch backend of :class:`~sklearn_mtml.features.AudioFeatures`.

Pure torch functions (no scikit-learn) that reproduce librosa's frame features on a padded batch
of clips in one pass: STFT with librosa's conventions (``center=True``, ``pad_mode="constant"``,
periodic Hann window), librosa's own mel and chroma filterbanks (computed once with NumPy and
turned into tensors), ``power_to_db`` with librosa's ``ref``/``amin``/``top_db`` semantics applied
**per clip** (the maximum is taken over that clip's own frames only), the orthonormal DCT-II of
``librosa.feature.mfcc``, Savitzky-Golay deltas as ``librosa.feature.delta`` (``mode="interp"``),
and spectral centroid / bandwidth / rolloff / contrast, zero-crossing rate and RMS.

A clip of ``L`` samples has ``1 + L // hop_length`` frames, as librosa gives with ``center=True``;
frames past that count (the batch padding) are masked out of every per-clip reduction.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .._device import resolve_device
from ._delta import savgol_width

__all__ = [
    "batch_frame_features",
    "delta",
    "extract",
    "masked_stats",
    "power_to_db",
    "resolve_device",
    "savgol_width",
]

_TINY32 = float(np.finfo(np.float32).tiny)


@lru_cache(maxsize=32)
def _savgol_kernel(width: int, order: int) -> np.ndarray:
    from scipy.signal import savgol_coeffs

    # scipy's savgol_filter *convolves* with these coefficients; conv1d correlates.
    return np.ascontiguousarray(savgol_coeffs(width, order, deriv=order, use="conv")[::-1])


@lru_cache(maxsize=32)
def _mel_basis(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


@lru_cache(maxsize=32)
def _chroma_basis(sr: float, n_fft: int, n_chroma: int) -> np.ndarray:
    import librosa

    return librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=n_chroma)


@lru_cache(maxsize=32)
def _dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    from scipy.fft import dct

    # Row k of the returned matrix applied to a mel column gives dct(..., type=2, norm="ortho")[k]
    return dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]


@lru_cache(maxsize=32)
def _contrast_bands(sr: float, n_fft: int, fmin: float, n_bands: int) -> tuple:
    """Frequency-bin masks and quantile counts of librosa.feature.spectral_contrast."""
    freq = np.linspace(0, sr / 2, 1 + n_fft // 2)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:])):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[-1] + 1 :] = True
        q = int(max(np.rint(0.02 * np.sum(current)), 1))
        sel = np.flatnonzero(current)
        if k < n_bands:
            sel = sel[:-1]
        bands.append((tuple(sel.tolist()), q))
    return tuple(bands)


def _valid_mask(n_frames: torch.Tensor, T: int) -> torch.Tensor:
    """(B, 1, T) boolean mask of the frames that belong to each clip."""
    return (torch.arange(T, device=n_frames.device)[None, :] < n_frames[:, None])[:, None, :]


def power_to_db(
    S: torch.Tensor,
    mask: torch.Tensor,
    *,
    ref: float = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> torch.Tensor:
    """``librosa.power_to_db`` applied to each clip of a batch ``S`` of shape (B, K, T).

    ``top_db`` clips each clip at its own maximum (over its valid frames, ``mask`` (B, 1, T))
    minus ``top_db``, which is what librosa computes when called clip by clip.
    """
    log_spec = 10.0 * torch.log10(torch.clamp(S, min=amin))
    log_spec = log_spec - 10.0 * float(np.log10(max(amin, abs(ref))))
    if top_db is not None:
        peak = log_spec.masked_fill(~mask, -torch.inf).amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - top_db)
    return log_spec


def delta(
    x: torch.Tensor, n_frames: torch.Tensor, *, width: int = 9, order: int = 1
) -> torch.Tensor:
    """``librosa.feature.delta(x, width, order, mode="interp")`` on each clip of a batch.

    Parameters
    ----------
    x : Tensor of shape (B, K, T)
        Frame features (padding frames are ignored).
    n_frames : Tensor of shape (B,)
        Valid frames per clip.
    width, order : int
        Savitzky-Golay window and derivative order. Clips shorter than ``width`` use the
        window of :func:`savgol_width`.

    Returns
    -------
    Tensor of shape (B, K, T)
        Deltas; padding frames hold arbitrary values (mask them).
    """
    B, K, T = x.shape
    out = torch.zeros_like(x)
    counts = n_frames.tolist()
    widths = [savgol_width(n, width) for n in counts]
    for w in sorted(set(widths)):
        if w == 0:
            continue
        rows = [b for b, wb in enumerate(widths) if wb == w]
        sel = torch.tensor(rows, device=x.device)
        xs = x.index_select(0, sel)
        kernel = torch.as_tensor(_savgol_kernel(w, order), dtype=x.dtype, device=x.device)
        h = w // 2
        conv = F.conv1d(xs.reshape(-1, 1, T), kernel.view(1, 1, w), padding=h).view(len(rows), K, T)
        # mode="interp": the first/last h frames take the polynomial fitted on the first/last
        # window, whose derivative of order == polyorder is constant: the centre value.
        n = n_frames.index_select(0, sel)
        t = torch.arange(T, device=x.device)[None, :]
        idx = torch.minimum(torch.clamp(t, min=h), (n - 1 - h).clamp(min=h)[:, None])
        out[sel] = torch.gather(conv, 2, idx[:, None, :].expand(-1, K, -1))
    return out


def masked_stats(x: torch.Tensor, mask: torch.Tensor, stats: Sequence[str]) -> torch.Tensor:
    """Per-clip statistics over valid frames: (B, K, T) → (B, len(stats) * K), stat-major.

    ``stats`` are names among ``"mean"``, ``"std"`` (population, ddof=0), ``"min"``, ``"max"``.
    Computed in float64.
    """
    x = x.double()
    m = mask.to(x.dtype)
    n = m.sum(dim=2)
    mean = (x * m).sum(dim=2) / n
    blocks = []
    for s in stats:
        if s == "mean":
            blocks.append(mean)
        elif s == "std":
            blocks.append(torch.sqrt((((x - mean[..., None]) * m) ** 2).sum(dim=2) / n))
        elif s == "min":
            blocks.append(x.masked_fill(~mask, torch.inf).amin(dim=2))
        elif s == "max":
            blocks.append(x.masked_fill(~mask, -torch.inf).amax(dim=2))
        else:
            raise ValueError(f"unknown statistic {s!r}")
    return torch.cat(blocks, dim=1)


def batch_frame_features(
    x: torch.Tensor,
    lengths: torch.Tensor,
    *,
    features: Sequence[str],
    sr: float,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    n_mfcc: int,
    fmin: float,
    fmax: float | None,
    top_db: float | None,
    delta_width: int,
    n_chroma: int = 12,
    contrast_fmin: float = 200.0,
    contrast_bands: int = 6,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Frame features of a zero-padded batch of clips.

    Parameters
    ----------
    x : Tensor of shape (B, L)
        Clips, zero-padded at the end to a common length ``L``.
    lengths : Tensor of shape (B,)
        True length of each clip in samples.
    features : sequence of str
        Names among mfcc, delta, delta2, logmel, chroma, contrast, centroid, bandwidth,
        rolloff, zcr, rms.
    sr, n_fft, hop_length, n_mels, n_mfcc, fmin, fmax, top_db, delta_width : see AudioFeatures
    n_chroma, contrast_fmin, contrast_bands : see AudioFeatures

    Returns
    -------
    blocks : list of Tensor of shape (B, K_f, T)
        One block per requested feature, in order.
    n_frames : Tensor of shape (B,)
        Valid frames per clip, ``1 + length // hop_length``.
    """
    dev, L = x.device, x.shape[1]
    T = 1 + L // hop_length
    n_frames = 1 + torch.div(lengths, hop_length, rounding_mode="floor")
    mask = _valid_mask(n_frames, T)
    feats = set(features)
    need_mel = feats & {"mfcc", "delta", "delta2", "logmel"}
    need_pow = need_mel or "chroma" in feats
    need_mag = feats & {"contrast", "centroid", "bandwidth", "rolloff"}

    S_pow = S_mag = None
    if need_pow or need_mag:
        window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=dev)
        D = torch.stft(
            x, n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=True,
            pad_mode="constant", normalized=False, onesided=True, return_complex=True,
        )
        # |D|**2 as re**2 + im**2: cheaper than abs() and equal up to rounding
        S_pow = torch.view_as_real(D).square().sum(dim=-1)
        del D
        if need_mag:
            S_mag = torch.sqrt(S_pow)

    out: dict[str, torch.Tensor] = {}
    if need_mel:
        assert S_pow is not None  # computed above whenever a feature needs it
        mel_np = _mel_basis(sr, n_fft, n_mels, fmin, fmax)
        mel_fb = torch.as_tensor(mel_np, dtype=x.dtype, device=dev)
        logmel = power_to_db(torch.matmul(mel_fb, S_pow), mask, top_db=top_db)
        out["logmel"] = logmel
        if feats & {"mfcc", "delta", "delta2"}:
            dct_m = torch.as_tensor(_dct_matrix(n_mels, n_mfcc), dtype=x.dtype, device=dev)
            mfcc = torch.matmul(dct_m, logmel)
            out["mfcc"] = mfcc
            if "delta" in feats:
                out["delta"] = delta(mfcc, n_frames, width=delta_width, order=1)
            if "delta2" in feats:
                out["delta2"] = delta(mfcc, n_frames, width=delta_width, order=2)
    if "chroma" in feats:
        assert S_pow is not None
        fb = torch.as_tensor(_chroma_basis(sr, n_fft, n_chroma), dtype=x.dtype, device=dev)
        raw = torch.matmul(fb, S_pow)
        norm = raw.abs().amax(dim=1, keepdim=True)
        norm = torch.where(norm < _TINY32, torch.ones_like(norm), norm)
        out["chroma"] = raw / norm
    if need_mag:
        assert S_mag is not None
        freq = torch.linspace(0, sr / 2, 1 + n_fft // 2, dtype=torch.float64, device=dev)
        if feats & {"centroid", "bandwidth"}:
            S64 = S_mag.double()
            length = S64.sum(dim=1, keepdim=True)
            length = torch.where(length < _TINY32, torch.ones_like(length), length)
            S_norm = S64 / length
            centroid = (freq[None, :, None] * S_norm).sum(dim=1, keepdim=True)
            out["centroid"] = centroid
            if "bandwidth" in feats:
                dev_f = (freq[None, :, None] - centroid).abs()
                out["bandwidth"] = torch.sqrt((S_norm * dev_f**2).sum(dim=1, keepdim=True))
        if "rolloff" in feats:
            total = torch.cumsum(S_mag, dim=1)
            threshold = 0.85 * total[:, -1:, :]
            first = (total >= threshold).to(torch.int8).argmax(dim=1, keepdim=True)
            out["rolloff"] = freq[first]
        if "contrast" in feats:
            peaks, valleys = [], []
            for sel, q in _contrast_bands(sr, n_fft, contrast_fmin, contrast_bands):
                sub = S_mag[:, list(sel), :]
                srt = torch.sort(sub, dim=1).values
                valleys.append(srt[:, :q, :].mean(dim=1))
                peaks.append(srt[:, -q:, :].mean(dim=1))
            peak = torch.stack(peaks, dim=1).double()
            valley = torch.stack(valleys, dim=1).double()
            out["contrast"] = power_to_db(peak, mask) - power_to_db(valley, mask)
    if "rms" in feats or "zcr" in feats:
        p = n_fft // 2
        if "rms" in feats:
            frames = F.pad(x, (p, p)).unfold(-1, n_fft, hop_length)  # (B, T, n_fft)
            out["rms"] = torch.sqrt((frames**2).mean(dim=-1))[:, None, :]
        if "zcr" in feats:
            # librosa pads each clip with its own edge values (mode="edge")
            pos = torch.arange(-p, L + p, device=dev)[None, :]
            idx = torch.minimum(pos.clamp(min=0), (lengths - 1)[:, None])
            xp = torch.gather(x, 1, idx)
            neg = xp < -1e-10
            flips = (neg[:, 1:] != neg[:, :-1]).to(torch.int32)
            c = F.pad(torch.cumsum(flips, dim=1, dtype=torch.int32), (1, 0))
            starts = torch.arange(T, device=dev) * hop_length
            count = c[:, starts + n_fft - 1] - c[:, starts]
            out["zcr"] = (count.to(torch.float64) / n_fft)[:, None, :]
    blocks = [out[f].to(x.dtype) for f in features]
    return blocks, n_frames


def extract(
    waves: Sequence[np.ndarray],
    *,
    output: str,
    stats: Sequence[str] = ("mean", "std", "min", "max"),
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    dtype: str = "float32",
    n_threads: int | None = None,
    **params,
) -> np.ndarray | list[np.ndarray]:
    """Features of many clips, in batches of clips of similar length.

    Parameters
    ----------
    waves : sequence of 1-D float32 ndarray
        The clips (already at the target rate).
    output : {"stats", "frames"}
        ``"stats"``: an (n, len(stats) * K) float32 array of pooled statistics per feature
        block (stat-major inside each block). ``"frames"``: a list of (K, T_i) float32 arrays.
    stats : sequence of str
        Statistics for ``output="stats"``.
    batch_size : int
        Clips per batch (sorted by length first, to keep padding small).
    device : str or torch.device
        Where to compute.
    dtype : {"float32", "float64"}
        Compute precision (the output is float32 either way).
    n_threads : int or None
        On the CPU: None runs the batches one after the other with torch's own intra-op
        threads; an int runs that many batches at a time, in Python threads with one
        intra-op thread each (robust when the cores are shared with other processes).
    **params
        Passed to :func:`batch_frame_features`.

    Returns
    -------
    ndarray or list of ndarray
        See ``output``.
    """
    dev = resolve_device(device)
    lengths = np.fromiter((len(w) for w in waves), dtype=np.int64, count=len(waves))
    order = np.argsort(lengths, kind="stable")
    results: list = [None] * len(waves)

    def run(idx: np.ndarray) -> None:
        with torch.inference_mode():
            lmax = int(lengths[idx].max())
            buf = np.zeros((len(idx), lmax), dtype=dtype)
            for r, i in enumerate(idx):
                buf[r, : lengths[i]] = waves[i]
            xb = torch.from_numpy(buf).to(dev, non_blocking=True)
            lb = torch.from_numpy(lengths[idx]).to(dev)
            blocks, n_frames = batch_frame_features(xb, lb, **params)
            if output == "stats":
                mask = _valid_mask(n_frames, blocks[0].shape[2])
                pooled = torch.cat([masked_stats(b, mask, stats) for b in blocks],
                                   dim=1).to(torch.float32).cpu().numpy()
                for r, i in enumerate(idx):
                    results[i] = pooled[r]
            else:
                frames = torch.cat(blocks, dim=1).to(torch.float32).cpu().numpy()
                nf = n_frames.cpu().numpy()
                for r, i in enumerate(idx):
                    results[i] = frames[r, :, : nf[r]]

    batches = [order[a : a + batch_size] for a in range(0, len(order), batch_size)]
    if dev.type != "cpu" or n_threads is None:
        for idx in batches:
            run(idx)
    else:
        # n_threads Python threads, each running whole batches with one intra-op thread:
        # torch kernels release the GIL, and no OpenMP team spins when the cores are shared.
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if n_threads == 1:
                for idx in batches:
                    run(idx)
            else:
                with ThreadPoolExecutor(n_threads) as pool:
                    list(pool.map(run, batches))
        finally:
            torch.set_num_threads(previous)
    if output == "stats":
        return np.stack(results) if results else np.zeros((0, 0), np.float32)
    return results
