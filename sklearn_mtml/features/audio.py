"""Audio features: librosa frame features, pooled statistics or padded frame sequences."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from .._compat import Interval, StrOptions, _fit_context
from ._base import (
    ModalityTransformer,
    check_finite,
    check_not_all_missing,
    is_missing,
    is_path,
    recall_file,
    remember_file,
    row_error,
    to_float_array,
)
from ._delta import savgol_width

__all__ = ["AudioFeatures", "peak_amplitude", "savgol_width"]

FEATURES = (
    "mfcc", "delta", "delta2", "logmel", "chroma", "contrast",
    "centroid", "bandwidth", "rolloff", "zcr", "rms",
)
STATS = ("mean", "std", "min", "max")
_CONTRAST_FMIN = 200.0
_N_CHROMA = 12


@dataclass(frozen=True)
class _Config:
    """Everything a worker needs to load one clip and compute its features."""

    features: tuple
    sr: float  # the resolved rate (sr_)
    n_fft: int
    hop_length: int
    n_mels: int
    n_mfcc: int
    fmin: float
    fmax: float | None
    top_db: float | None
    delta_width: int
    contrast_bands: int
    stats: tuple
    name: str
    silence: float | None = None  # silence_threshold when detect_empty, else None

    def torch_params(self) -> dict:
        return dict(
            features=self.features, sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length,
            n_mels=self.n_mels, n_mfcc=self.n_mfcc, fmin=self.fmin, fmax=self.fmax,
            top_db=self.top_db, delta_width=self.delta_width, n_chroma=_N_CHROMA,
            contrast_fmin=_CONTRAST_FMIN, contrast_bands=self.contrast_bands,
        )


# --------------------------------------------------------------------------- loading


def _read_file(row: int, path: Any, name: str) -> tuple[np.ndarray, float]:
    """Read an audio file as a mono float32 waveform at its native rate."""
    path_str = os.fspath(path)
    if not os.path.isfile(path_str):
        raise row_error(FileNotFoundError, row, f"audio file not found: {path_str!r}", name=name)
    try:
        import soundfile as sf

        data, rate = sf.read(path_str, dtype="float32", always_2d=True)
        y = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
        return np.ascontiguousarray(y), float(rate)
    except Exception as sf_exc:  # formats libsndfile cannot read: let librosa/audioread try
        try:
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, rate = librosa.load(path_str, sr=None, mono=True)
            return np.asarray(y, dtype=np.float32), float(rate)
        except Exception:
            raise row_error(
                ValueError, row, f"cannot read audio file {path_str!r}: {sf_exc}", name=name,
                cause=sf_exc,
            ) from sf_exc


def _probe_file(row: int, path: Any, name: str) -> tuple[float, int]:
    """Native rate and length (samples) of a file, reading only its header when possible."""
    path_str = os.fspath(path)
    if not os.path.isfile(path_str):
        raise row_error(FileNotFoundError, row, f"audio file not found: {path_str!r}", name=name)
    try:
        import soundfile as sf

        info = sf.info(path_str)
        return float(info.samplerate), int(info.frames)
    except Exception:
        y, rate = _read_file(row, path, name)
        return rate, len(y)


def _resampled_length(n: int, rate: float, sr: float) -> int:
    return n if rate == sr else int(math.ceil(n * float(sr) / rate))


_PEAK = "audio_peak"  # what the file memo records for an audio file: its peak amplitude


def peak_amplitude(y: np.ndarray) -> float:
    """Peak absolute amplitude of a waveform; ``-inf`` for an empty one (0 samples).

    With ``detect_empty=True``, :class:`AudioFeatures` treats a clip as carrying no signal
    when this value is below ``silence_threshold``: an empty clip always, a silent one (all
    samples within the threshold of zero, e.g. a muted microphone) too.
    """
    return float(np.max(np.abs(y))) if y.size else -math.inf


def _is_silent(peak: float, threshold: float | None) -> bool:
    """The audio "no signal" rule: peak amplitude below the threshold (None: detection off)."""
    return threshold is not None and peak < threshold


def _load(row: int, item: Any, cfg: _Config) -> tuple[np.ndarray, float]:
    """Waveform of a row at the target rate ``cfg.sr`` (float32, 1-D) and its peak amplitude.

    The peak is taken on the samples as decoded (before resampling), so it does not depend
    on ``sr``. An empty file is an error unless empty clips are detected (``cfg.silence``).
    """
    if not is_path(item):
        return item, peak_amplitude(item)  # already validated and converted by _check_items
    y, rate = _read_file(row, item, cfg.name)
    if y.size == 0:
        if cfg.silence is None:
            raise row_error(ValueError, row, f"audio file {os.fspath(item)!r} is empty",
                            name=cfg.name)
        return y, -math.inf
    check_finite(y, row, cfg.name, f"audio file {os.fspath(item)!r}")
    peak = peak_amplitude(y)
    if rate != cfg.sr and not _is_silent(peak, cfg.silence):
        import librosa

        y = librosa.resample(y, orig_sr=rate, target_sr=cfg.sr, res_type="soxr_hq")
    return np.asarray(y, dtype=np.float32), peak


# --------------------------------------------------------------------------- librosa backend


def _librosa_frames(y: np.ndarray, cfg: _Config) -> list[np.ndarray]:
    """Frame features of one clip with librosa: one (K_f, T) float32 block per feature."""
    import librosa

    feats = set(cfg.features)
    out: dict[str, np.ndarray] = {}
    sr, n_fft, hop = cfg.sr, cfg.n_fft, cfg.hop_length
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.* is too large")
        need_mel = feats & {"mfcc", "delta", "delta2", "logmel"}
        need_mag = feats & {"contrast", "centroid", "bandwidth", "rolloff"}
        if need_mel or need_mag or "chroma" in feats:
            D = librosa.stft(
                y, n_fft=n_fft, hop_length=hop, win_length=n_fft, window="hann", center=True,
                pad_mode="constant",
            )
            S_mag = np.abs(D)
            S_pow = S_mag**2
        if need_mel:
            mel = librosa.feature.melspectrogram(
                S=S_pow, sr=sr, n_fft=n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
            )
            out["logmel"] = librosa.power_to_db(mel, top_db=cfg.top_db)
            mfcc = librosa.feature.mfcc(S=out["logmel"], n_mfcc=cfg.n_mfcc)
            out["mfcc"] = mfcc
            w = savgol_width(mfcc.shape[1], cfg.delta_width)
            for key, order in (("delta", 1), ("delta2", 2)):
                if key in feats:
                    out[key] = (
                        librosa.feature.delta(mfcc, width=w, order=order) if w else
                        np.zeros_like(mfcc)
                    )
        if "chroma" in feats:
            out["chroma"] = librosa.feature.chroma_stft(
                S=S_pow, sr=sr, n_fft=n_fft, tuning=0.0, n_chroma=_N_CHROMA
            )
        if "contrast" in feats:
            out["contrast"] = librosa.feature.spectral_contrast(
                S=S_mag, sr=sr, n_fft=n_fft, fmin=_CONTRAST_FMIN, n_bands=cfg.contrast_bands
            )
        if "centroid" in feats:
            out["centroid"] = librosa.feature.spectral_centroid(S=S_mag, sr=sr, n_fft=n_fft)
        if "bandwidth" in feats:
            out["bandwidth"] = librosa.feature.spectral_bandwidth(S=S_mag, sr=sr, n_fft=n_fft)
        if "rolloff" in feats:
            out["rolloff"] = librosa.feature.spectral_rolloff(S=S_mag, sr=sr, n_fft=n_fft)
        if "zcr" in feats:
            out["zcr"] = librosa.feature.zero_crossing_rate(
                y, frame_length=n_fft, hop_length=hop, center=True
            )
        if "rms" in feats:
            out["rms"] = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop, center=True)
    return [np.asarray(out[f], dtype=np.float32) for f in cfg.features]


def _pool(blocks: list[np.ndarray], stats: tuple) -> np.ndarray:
    """Pooled statistics over frames, stat-major inside each feature block."""
    parts = []
    for b in blocks:
        b = b.astype(np.float64)
        for s in stats:
            parts.append(getattr(np, s)(b, axis=1))
    return np.concatenate(parts).astype(np.float32)


def _clip_job(row: int, item: Any, cfg: _Config, output: str) -> tuple[np.ndarray | None, float]:
    """Load one clip and compute its features (the unit of work of the librosa backend).

    Returns the features (None for a clip without signal, when detected) and the peak.
    """
    y, peak = _load(row, item, cfg)
    if _is_silent(peak, cfg.silence):
        return None, peak
    blocks = _librosa_frames(y, cfg)
    if output == "stats":
        return _pool(blocks, cfg.stats), peak
    return np.concatenate(blocks, axis=0), peak


def _run_chunk(func, jobs: list[tuple]) -> list:
    return [func(*job) for job in jobs]


def _map(func, jobs: list[tuple], n_jobs: int | None, prefer: str | None = None) -> list:
    """``[func(*job) for job in jobs]``, in parallel chunks when ``n_jobs`` asks for it."""
    n = effective_n_jobs(n_jobs)
    if n == 1 or len(jobs) < 2:
        return _run_chunk(func, jobs)
    bounds = np.linspace(0, len(jobs), min(len(jobs), 4 * n) + 1).astype(int)
    parts = Parallel(n_jobs=n, prefer=prefer)(
        delayed(_run_chunk)(func, jobs[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
    )
    return [r for part in parts for r in part]


# --------------------------------------------------------------------------- estimator


class AudioFeatures(ModalityTransformer):
    """Frame features of audio clips (librosa), pooled per clip or kept as sequences.

    Each row of the input column is an audio file path (``str`` or ``os.PathLike``; anything
    soundfile reads, or librosa/audioread as a fallback) or a 1-D waveform already sampled at
    ``sr``. Clips are mixed down to mono and resampled to ``sr`` when their rate differs. A
    2-D numeric array is read as one waveform per row (equal-length clips).

    Frames follow librosa: ``1 + n_samples // hop_length`` frames per clip (``center=True``,
    zero padding), periodic Hann window, power spectrogram, slaney mel filterbank,
    ``power_to_db(ref=1.0, amin=1e-10, top_db=top_db)`` per clip, orthonormal DCT-II MFCCs.

    Parameters
    ----------
    features : tuple of str, default=("mfcc", "delta")
        Frame features, concatenated in this order: ``"mfcc"`` (``n_mfcc``), ``"delta"`` and
        ``"delta2"`` (first/second Savitzky-Golay derivative of the MFCCs, ``n_mfcc`` each),
        ``"logmel"`` (``n_mels`` log-mel energies in dB), ``"chroma"`` (12, tuning fixed at 0
        so no tuning estimation is run), ``"contrast"`` (spectral contrast, octave bands from
        200 Hz: 6 bands + 1, fewer when ``sr`` is low so that they fit below Nyquist),
        ``"centroid"``, ``"bandwidth"``, ``"rolloff"`` (85 %), ``"zcr"``, ``"rms"`` (1 each).
    sr : float or None, default=22050
        Target sample rate; files at another rate are resampled (soxr). None keeps the
        native rate of the files, which must then all share one rate (checked at fit and at
        transform); waveform rows need an explicit ``sr``.
    output : {"stats", "sequence"}, default="stats"
        ``"stats"``: a 2-D float32 array ``(n, sum_f K_f * len(stats))`` of statistics over
        each clip's frames. ``"sequence"``: a 3-D float32 array ``(n, max_frames, sum_f K_f)``
        of frames, zero-padded at the end.
    stats : tuple of str, default=("mean", "std", "min", "max")
        Statistics of ``output="stats"``; ``std`` is the population standard deviation.
    n_fft : int, default=512
        FFT size and window length (also the frame length of ``zcr`` and ``rms``): 64 ms at
        8 kHz, 23 ms at 22.05 kHz.
    hop_length : int, default=128
        Hop between frames in samples (16 ms at 8 kHz).
    n_mels : int, default=40
        Mel bands.
    n_mfcc : int, default=13
        MFCCs kept (at most ``n_mels``).
    fmin : float, default=0.0
        Lowest mel frequency (Hz).
    fmax : float or None, default=None
        Highest mel frequency (Hz); None is ``sr / 2``.
    top_db : float or None, default=80.0
        Log-mel dynamic range per clip (librosa's ``power_to_db``); None disables clipping.
    delta_width : int, default=9
        Odd window of the deltas (librosa ``delta(width=..., mode="interp")``). Clips with
        fewer frames use the largest odd window that fits; under 3 frames the delta is 0.
    max_frames : int or None, default=None
        Frames of ``output="sequence"``; None uses the longest clip seen at fit
        (``max_frames_``).
    truncate : {"end", "start", "center"}, default="end"
        For longer clips in ``output="sequence"``: drop frames at the end (keep the start), at
        the start (keep the end) or on both sides (keep the middle).
    backend : {"librosa", "torch"}, default="librosa"
        ``"librosa"``: the reference, one clip at a time (in parallel with ``n_jobs``).
        ``"torch"``: one batched pass per ``batch_size`` clips of similar length, on
        ``device``; it reproduces librosa's numbers within float32 rounding for every feature.
    device : str, default="auto"
        Torch device of the ``"torch"`` backend: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or
        ``"auto"`` (CUDA when available). Resolved at each transform, so a model fitted on a
        GPU machine transforms on a CPU-only one with ``"auto"``.
    precision : {"float32", "float64"}, default="float32"
        Compute precision of the torch backend (the output is float32 either way). float32
        matches librosa within about 2e-5 relative on MFCCs, deltas and log-mel energies;
        features built on the quietest spectral bins (``"contrast"`` valleys) differ by up to
        about 2e-3 relative in float32 and within about 1e-7 in float64, which costs two to
        three times the time on a CPU.
    batch_size : int, default=256
        Clips per batch of the torch backend.
    n_jobs : int or None, default=None
        Parallel jobs (joblib semantics, -1 = all cores). librosa backend: clips are
        processed (loaded and featurised) in that many worker processes. torch backend: files
        are read in that many threads and, on the CPU, that many batches run at a time, each
        with one torch intra-op thread; None keeps torch's own threading (one batch at a
        time).
    detect_empty : bool, default=True
        Treat a clip that carries no signal like a missing one: an empty clip (0 samples) or
        a silent one, whose peak absolute amplitude is below ``silence_threshold``. Such a
        row gives an all-zero output row at transform and is reported by
        :meth:`absent_items`, so that :class:`~sklearn_mtml.fusion.ModalityFusion` marks it
        absent. At fit an empty clip is ignored like a missing one; a silent clip is a valid
        clip (it counts towards ``max_frames_``). False: only ``None``/NaN rows are missing
        and an empty clip is an error.
    silence_threshold : float, default=1e-4
        Peak absolute amplitude below which a clip is silent (``detect_empty=True``), in the
        units of the samples: full scale is 1.0 for files and float waveforms (1e-4 is
        -80 dBFS). Files are judged on their samples as decoded, before resampling. 0 detects
        empty clips only.

    Attributes
    ----------
    sr_ : float
        Sample rate used.
    frame_feature_names_ : list of str
        Names of the per-frame features, e.g. ``"mfcc0"``, ``"mfcc0_delta"``, ``"logmel3"``,
        ``"rms"``.
    n_contrast_bands_ : int
        Octave bands of ``"contrast"`` (the block has ``n_contrast_bands_ + 1`` values).
    max_frames_ : int
        Frames per sequence (``output="sequence"`` only).

    Notes
    -----
    Missing rows (``None``, NaN, ``pandas.NA``), and with ``detect_empty=True`` empty or
    silent clips, give all-zero output rows (all-zero sequences). Padding frames of
    ``output="sequence"`` are exactly zero, and networks in this package treat all-zero
    frames as padding. Pooled statistics only use each clip's own frames. A missing or
    unreadable file raises an error naming the row and the file.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml.features import AudioFeatures
    >>> rng = np.random.default_rng(0)
    >>> clips = [rng.normal(size=4000).astype("float32"), None, rng.normal(size=6000)]
    >>> feats = AudioFeatures(sr=8000).fit(clips)
    >>> Xt = feats.transform(clips)
    >>> Xt.shape, Xt.dtype
    ((3, 104), dtype('float32'))
    >>> bool((Xt[1] == 0).all())
    True
    >>> feats.get_feature_names_out()[:2].tolist()
    ['mfcc0_mean', 'mfcc1_mean']
    >>> seq = AudioFeatures(sr=8000, output="sequence").fit(clips)
    >>> seq.transform(clips).shape
    (3, 47, 26)
    """

    _parameter_constraints: dict = {
        "features": [tuple, list, str],
        "sr": [Interval(Real, 0, None, closed="neither"), None],
        "output": [StrOptions({"stats", "sequence"})],
        "stats": [tuple, list, str],
        "n_fft": [Interval(Integral, 2, None, closed="left")],
        "hop_length": [Interval(Integral, 1, None, closed="left")],
        "n_mels": [Interval(Integral, 1, None, closed="left")],
        "n_mfcc": [Interval(Integral, 1, None, closed="left")],
        "fmin": [Interval(Real, 0, None, closed="left")],
        "fmax": [Interval(Real, 0, None, closed="neither"), None],
        "top_db": [Interval(Real, 0, None, closed="left"), None],
        "delta_width": [Interval(Integral, 3, None, closed="left")],
        "max_frames": [Interval(Integral, 1, None, closed="left"), None],
        "truncate": [StrOptions({"end", "start", "center"})],
        "backend": [StrOptions({"librosa", "torch"})],
        "device": [str],
        "precision": [StrOptions({"float32", "float64"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "detect_empty": ["boolean"],
        "silence_threshold": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        features: tuple[str, ...] = ("mfcc", "delta"),
        *,
        sr: float | None = 22050,
        output: str = "stats",
        stats: tuple[str, ...] = STATS,
        n_fft: int = 512,
        hop_length: int = 128,
        n_mels: int = 40,
        n_mfcc: int = 13,
        fmin: float = 0.0,
        fmax: float | None = None,
        top_db: float | None = 80.0,
        delta_width: int = 9,
        max_frames: int | None = None,
        truncate: str = "end",
        backend: str = "librosa",
        device: str = "auto",
        precision: str = "float32",
        batch_size: int = 256,
        n_jobs: int | None = None,
        detect_empty: bool = True,
        silence_threshold: float = 1e-4,
    ) -> None:
        self.features = features
        self.sr = sr
        self.output = output
        self.stats = stats
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.fmin = fmin
        self.fmax = fmax
        self.top_db = top_db
        self.delta_width = delta_width
        self.max_frames = max_frames
        self.truncate = truncate
        self.backend = backend
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.detect_empty = detect_empty
        self.silence_threshold = silence_threshold

    # ----------------------------------------------------------------- validation

    @staticmethod
    def _names(value: Any, param: str, allowed: tuple) -> tuple:
        names = (value,) if isinstance(value, str) else tuple(value)
        bad = [v for v in names if v not in allowed]
        if not names or bad:
            raise ValueError(
                f"AudioFeatures: the {param!r} parameter must be a non-empty tuple of names "
                f"among {list(allowed)}; got {value!r}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"AudioFeatures: the {param!r} parameter has duplicates: {value!r}")
        return names

    def _check_params(self) -> None:
        self._names(self.features, "features", FEATURES)
        self._names(self.stats, "stats", STATS)
        if self.delta_width % 2 != 1:
            raise ValueError(
                f"AudioFeatures: delta_width must be an odd integer >= 3, got {self.delta_width}"
            )
        if self.n_mfcc > self.n_mels:
            raise ValueError(
                f"AudioFeatures: n_mfcc={self.n_mfcc} cannot exceed n_mels={self.n_mels}"
            )
        if self.fmax is not None and self.fmax <= self.fmin:
            raise ValueError(
                f"AudioFeatures: fmax={self.fmax} must be greater than fmin={self.fmin}"
            )
        if self.backend == "torch":
            from .._device import resolve_device

            try:
                resolve_device(self.device)
            except ValueError as exc:
                raise ValueError(f"AudioFeatures: {exc}") from exc

    def _numeric_array(self, X: np.ndarray) -> list:
        if X.ndim == 1:
            raise ValueError(
                "AudioFeatures: a 1-D numeric array is ambiguous (one waveform, or a column of "
                "numbers?). Reshape your data: X.reshape(1, -1) for a single waveform, or pass "
                "a list of 1-D waveforms / file paths"
            )
        if X.ndim != 2:
            raise ValueError(
                "AudioFeatures: a numeric array must be 2-D (one equal-length waveform per row), "
                f"got shape {X.shape}"
            )
        return list(X)

    def _check_items(self, items: list) -> list:
        """Validate each row; waveforms become float32 arrays, paths stay paths.

        Missing rows, and empty waveforms when ``detect_empty`` is True, become None.
        """
        out: list = []
        for i, item in enumerate(items):
            if is_missing(item):
                out.append(None)
            elif is_path(item):
                out.append(item)
            elif isinstance(item, (np.ndarray, list, tuple)) or hasattr(item, "__array__"):
                arr = to_float_array(item, i, self._name, "a 1-D waveform")
                if arr.ndim != 1:
                    raise row_error(
                        ValueError, i,
                        f"expected a 1-D mono waveform, got an array of shape {arr.shape}",
                        name=self._name,
                    )
                if arr.size == 0:
                    if self.detect_empty:
                        out.append(None)
                        continue
                    raise row_error(ValueError, i, "empty waveform (0 samples)", name=self._name)
                check_finite(arr, i, self._name, "waveform")
                out.append(np.ascontiguousarray(arr, dtype=np.float32))
            else:
                raise row_error(
                    TypeError, i,
                    "expected a file path (str or os.PathLike) or a 1-D waveform array, got "
                    f"{type(item).__name__}",
                    name=self._name,
                )
        return out

    def _config(self, sr: float, contrast_bands: int) -> _Config:
        return _Config(
            features=self._names(self.features, "features", FEATURES), sr=sr,
            n_fft=int(self.n_fft), hop_length=int(self.hop_length), n_mels=int(self.n_mels),
            n_mfcc=int(self.n_mfcc), fmin=float(self.fmin),
            fmax=None if self.fmax is None else float(self.fmax),
            top_db=None if self.top_db is None else float(self.top_db),
            delta_width=int(self.delta_width), contrast_bands=contrast_bands,
            stats=self._names(self.stats, "stats", STATS), name=self._name,
            silence=self._silence(),
        )

    def _frame_names(self, contrast_bands: int) -> list[str]:
        names: list[str] = []
        for f in self._names(self.features, "features", FEATURES):
            if f == "mfcc":
                names += [f"mfcc{k}" for k in range(self.n_mfcc)]
            elif f in ("delta", "delta2"):
                names += [f"mfcc{k}_{f}" for k in range(self.n_mfcc)]
            elif f == "logmel":
                names += [f"logmel{k}" for k in range(self.n_mels)]
            elif f == "chroma":
                names += [f"chroma{k}" for k in range(_N_CHROMA)]
            elif f == "contrast":
                names += [f"contrast{k}" for k in range(contrast_bands + 1)]
            else:
                names.append(f)
        return names

    # ----------------------------------------------------------------- fit / transform

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> AudioFeatures:
        """Check the clips and learn the sample rate and sequence length.

        Only file headers are read (no features are computed) unless ``output="sequence"``
        with ``max_frames=None`` needs clip lengths of files that have no readable header.

        Parameters
        ----------
        X : column of file paths and/or 1-D waveforms, or 2-D array (n_clips, n_samples)
            The clips; missing rows (None/NaN) are allowed, but not all of them.
        y : None
            Ignored.

        Returns
        -------
        self : AudioFeatures
            The fitted transformer.
        """
        self._check_params()
        items = self._items(X)
        sources = self._check_items(items)
        present = [i for i, s in enumerate(sources) if s is not None]
        check_not_all_missing(np.array([s is None for s in sources]), self._name,
                              empty=self.detect_empty)
        files = [i for i in present if is_path(sources[i])]
        probes = dict(
            zip(files, _map(_probe_file, [(i, sources[i], self._name) for i in files],
                            self.n_jobs, prefer="threads"))
        )
        if self.sr is None:
            waves = [i for i in present if not is_path(sources[i])]
            if waves:
                raise row_error(
                    ValueError, waves[0],
                    "sr=None (keep the files' native rate) needs file paths, but this row is a "
                    "waveform whose rate is unknown; set sr to the waveforms' sample rate",
                    name=self._name,
                )
            rates: dict[float, int] = {}
            for i in files:
                rates.setdefault(probes[i][0], i)
            if len(rates) > 1:
                (r0, i0), (r1, i1) = list(rates.items())[:2]
                raise ValueError(
                    f"AudioFeatures: with sr=None all files must share one sample rate, but row "
                    f"{i0} is at {r0:g} Hz and row {i1} at {r1:g} Hz; set sr to resample them"
                )
            sr = next(iter(rates))
        else:
            sr = self.sr
        self.sr_ = float(sr)

        nb = 6
        while nb > 1 and _CONTRAST_FMIN * 2.0 ** (nb - 1) >= self.sr_ / 2:
            nb -= 1
        if "contrast" in self._names(self.features, "features", FEATURES) and (
            _CONTRAST_FMIN >= self.sr_ / 2
        ):
            raise ValueError(
                f"AudioFeatures: 'contrast' needs sr > {2 * _CONTRAST_FMIN:g} Hz, got {self.sr_:g}"
            )
        self.n_contrast_bands_ = nb
        self.frame_feature_names_ = self._frame_names(nb)

        if self.output == "sequence":
            if self.max_frames is None:
                lengths = [
                    _resampled_length(probes[i][1], probes[i][0], self.sr_) if i in probes
                    else len(sources[i])
                    for i in present
                ]
                self.max_frames_ = 1 + max(lengths) // int(self.hop_length)
            else:
                self.max_frames_ = int(self.max_frames)
        return self

    def _check_rates(self, sources: list, cfg: _Config) -> None:
        if self.sr is not None:
            return
        for i, s in enumerate(sources):
            if s is None:
                continue
            if not is_path(s):
                raise row_error(
                    ValueError, i,
                    "sr=None needs file paths; this row is a waveform of unknown rate",
                    name=self._name,
                )
            rate = _probe_file(i, s, self._name)[0]
            if rate != cfg.sr:
                raise row_error(
                    ValueError, i,
                    f"file {os.fspath(s)!r} is at {rate:g} Hz but the files seen at fit were at "
                    f"{cfg.sr:g} Hz (sr=None keeps native rates); set sr to resample",
                    name=self._name,
                )

    def _transform(self, X: Any) -> np.ndarray:
        self._check_params()
        items = self._items(X)
        sources = self._check_items(items)
        cfg = self._config(self.sr_, self.n_contrast_bands_)
        self._check_rates(sources, cfg)
        present = [
            i for i, s in enumerate(sources)
            if s is not None and (is_path(s) or not self._silent(peak_amplitude(s)))
        ]
        output = "stats" if self.output == "stats" else "frames"
        results: np.ndarray | list[np.ndarray]
        if self.backend == "librosa":
            jobs = _map(_clip_job, [(i, sources[i], cfg, output) for i in present], self.n_jobs)
            self._remember_peaks(sources, present, [peak for _, peak in jobs])
            kept = [(i, r) for i, (r, _) in zip(present, jobs) if r is not None]
            present, results = [i for i, _ in kept], [r for _, r in kept]
        else:
            from .audio_torch import extract

            loaded = _map(_load, [(i, sources[i], cfg) for i in present], self.n_jobs,
                          prefer="threads")
            self._remember_peaks(sources, present, [peak for _, peak in loaded])
            kept = [(i, y) for i, (y, peak) in zip(present, loaded) if not self._silent(peak)]
            present, waves = [i for i, _ in kept], [y for _, y in kept]
            results = extract(
                waves, output=output, stats=cfg.stats, batch_size=int(self.batch_size),
                device=self.device, dtype=self.precision,
                n_threads=None if self.n_jobs is None else effective_n_jobs(self.n_jobs),
                **cfg.torch_params(),
            ) if waves else []
        n_frame = len(self.frame_feature_names_)
        if self.output == "stats":
            out = np.zeros((len(items), n_frame * len(cfg.stats)), dtype=np.float32)
            for i, r in zip(present, results):
                out[i] = r
            return out
        T = self.max_frames_
        out = np.zeros((len(items), T, n_frame), dtype=np.float32)
        for i, frames in zip(present, results):
            n = frames.shape[1]
            if n > T:
                start = {"end": 0, "start": n - T, "center": (n - T) // 2}[self.truncate]
                frames = frames[:, start : start + T]
            out[i, : frames.shape[1]] = frames.T
        return out

    def _silence(self) -> float | None:
        """The silence threshold in force: None when ``detect_empty`` is False."""
        return float(self.silence_threshold) if self.detect_empty else None

    def _silent(self, peak: float) -> bool:
        """Whether a clip of this peak amplitude carries no signal."""
        return _is_silent(peak, self._silence())

    @staticmethod
    def _remember_peaks(sources: list, rows: list, peaks: list) -> None:
        for i, peak in zip(rows, peaks):
            if is_path(sources[i]):
                remember_file(_PEAK, sources[i], peak)

    def _no_signal(self, row: int, item: Any) -> bool:
        if is_path(item):
            peak = recall_file(_PEAK, item)
            if peak is None:  # not decoded by a transform since the file last changed
                y, _ = _read_file(row, item, self._name)
                peak = peak_amplitude(y)
                remember_file(_PEAK, item, peak)
            return self._silent(peak)
        arr = to_float_array(item, row, self._name, "a 1-D waveform")
        return self._silent(peak_amplitude(arr))

    def _feature_names(self) -> list[str]:
        if self.output == "sequence":
            return [f"{f}_t{t}" for t in range(self.max_frames_) for f in self.frame_feature_names_]
        names: list[str] = []
        stats = self._names(self.stats, "stats", STATS)
        start = 0
        for f in self._names(self.features, "features", FEATURES):
            block = self.frame_feature_names_[start : start + self._block_size(f)]
            start += len(block)
            names += [f"{n}_{s}" for s in stats for n in block]
        return names

    def _block_size(self, feature: str) -> int:
        return {
            "mfcc": self.n_mfcc, "delta": self.n_mfcc, "delta2": self.n_mfcc,
            "logmel": self.n_mels, "chroma": _N_CHROMA, "contrast": self.n_contrast_bands_ + 1,
        }.get(feature, 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # 2-D numeric input: one equal-length waveform per row.
        tags.input_tags.two_d_array = True
        return tags
