"""``FileBlocks``: a multi-modal data set of file paths, decoded batch by batch.

Audio and image files that do not fit in memory stay on disk: a :class:`FileBlocks` holds
per-modality columns of file paths (plus in-memory tabular columns) and decodes the rows of a
batch when they are needed, in the workers of a :class:`torch.utils.data.DataLoader`.
:class:`~sklearn_mtml.MultiTaskNet` reads it like a :class:`~sklearn_mtml.ModalityBlocks`:
each training batch is decoded in the workers (waveforms at a fixed length and sample rate,
images at a fixed size), copied to the training device (pinned memory on CUDA) and turned
into frame features there by the batched torch audio front end
(:func:`sklearn_mtml.features.audio_torch.batch_frame_features`) before the network sees it.

How a fit reads one (``MultiTaskNet(streaming=...)``): ``"auto"`` decodes every row once
into memory when the decoded features fit the :attr:`FileBlocks.memory_budget` (the fast
in-memory path), else streams: the files are decoded again at every epoch, and memory stays
bounded by a few batches. The input scaling statistics of a streamed fit come from a
streaming pass that decodes only the rows the statistics use (the same row subsample as the
in-memory path takes), so both paths train the same model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ._missing import is_missing_value
from .blocks import ModalityBlocks, select_rows

# the public name (also ``sklearn_mtml.FileBlocks``); the rest serves the net and its batches
__all__ = ["FileBlocks"]

#: Frame features the audio front end computes, and the parameter that sets their size.
AUDIO_FRAME_FEATURES: dict[str, str | int] = {
    "logmel": "n_mels", "mfcc": "n_mfcc", "delta": "n_mfcc", "delta2": "n_mfcc",
    "chroma": 12, "centroid": 1, "bandwidth": 1, "rolloff": 1, "zcr": 1, "rms": 1,
}
_COLORS = ("rgb", "grey")
# ITU-R 601-2 luma, the weights of Pillow's convert("L") (as ImageFeatures)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def default_num_workers() -> int:
    """Default number of decoding workers: one per available core but one, at most 4.

    Returns
    -------
    n_workers : int
        0 (decode in the main process) on a single core.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))


def _available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``), or 4 GiB if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def _path_column(kind: str, name: str, values: Any, n: int | None) -> np.ndarray:
    """A column of file paths as a 1-D object array; missing cells stay as they are."""
    if hasattr(values, "to_numpy"):  # pandas / polars series
        values = values.to_numpy()
    if isinstance(values, (str, os.PathLike)):
        raise TypeError(f"FileBlocks: {kind} column {name!r} must be a sequence of file paths "
                        f"(one per row), got a single path {values!r}.")
    col = np.empty(len(values), dtype=object)
    col[:] = list(values)
    if col.ndim != 1:
        raise ValueError(f"FileBlocks: {kind} column {name!r} must be 1-D (one path per row), "
                         f"got shape {col.shape}.")
    for i, item in enumerate(col):
        if not (is_missing_value(item) or isinstance(item, (str, os.PathLike))):
            raise TypeError(
                f"FileBlocks: {kind} column {name!r}, row {i}: expected a file path (str or "
                f"os.PathLike) or None for a missing {kind}, got {type(item).__name__} "
                f"{item!r:.60}.")
    if n is not None and len(col) != n:
        raise ValueError(f"FileBlocks: {kind} column {name!r} has {len(col)} rows, but the "
                         f"columns before it have {n}; every column needs one row per sample.")
    return col


def _decode_audio(row: int, path: Any, name: str, sr: float) -> np.ndarray:
    """A file's waveform: mono float32 at ``sr`` (resampled with soxr when it differs)."""
    from .features._base import check_finite, row_error
    from .features.audio import _read_file

    y, rate = _read_file(row, path, name)
    if y.size == 0:
        raise row_error(ValueError, row, f"audio file {os.fspath(path)!r} is empty (0 "
                        "samples); pass None for a missing clip", name=name)
    check_finite(y, row, name, f"audio file {os.fspath(path)!r}")
    if rate != sr:
        import librosa

        y = librosa.resample(y, orig_sr=rate, target_sr=sr, res_type="soxr_hq")
    return np.asarray(y, dtype=np.float32)


def _decode_image(row: int, path: Any, name: str, color: str,
                  size: tuple[int, int]) -> np.ndarray:
    """A file's image as float32 ``(C, H, W)`` at ``size``: full scale 1, ``color`` channels."""
    from .features._base import check_finite, row_error
    from .features.image import _DTYPE_FULL_SCALE, _read_image, _resize

    arr = _read_image(row, path, name)
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        arr = np.moveaxis(arr[:, :, :3], 2, 0)
    else:
        raise row_error(ValueError, row, f"image file {os.fspath(path)!r} decodes to shape "
                        f"{arr.shape}; expected a grey or colour image", name=name)
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise row_error(ValueError, row, f"image file {os.fspath(path)!r} is empty",
                        name=name)
    full = _DTYPE_FULL_SCALE.get(arr.dtype, 1.0)
    img = arr.astype(np.float32)
    if full != 1.0:
        img /= np.float32(full)
    check_finite(img, row, name, f"image file {os.fspath(path)!r}")
    if color == "grey" and img.shape[0] == 3:
        img = np.tensordot(_LUMA, img, axes=1)[None]
    elif color == "rgb" and img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return np.ascontiguousarray(_resize(img, size), dtype=np.float32)


class FileBlocks:
    """Per-modality columns of file paths (audio, images) and tabular blocks, decoded lazily.

    A data container (not an estimator) for data sets whose decoded inputs do not fit in
    memory, read by :class:`~sklearn_mtml.MultiTaskNet` like a
    :class:`~sklearn_mtml.ModalityBlocks`: one block per column, a missing path (``None``,
    NaN) is an absent modality of that row. Nothing is decoded when it is built; a fit or a
    prediction decodes the rows of each batch in the workers of a
    :class:`torch.utils.data.DataLoader` (``iterator_train__num_workers``,
    ``iterator_valid__num_workers``), then computes the audio frame features of the batch on
    the training device. It is picklable and behaves like a 2-D array of shape
    ``(n_samples, n_blocks)`` for scikit-learn's row utilities, so ``cross_val_score``,
    ``GridSearchCV`` and ``train_test_split`` split it by rows.

    What the network sees, per row:

    - an audio block is a sequence ``(n_frames, n_features)``: the clip is decoded (mono,
      resampled to ``sr``), cut or zero-padded to ``duration`` seconds, and its frame
      features (``audio_features``, computed as :class:`~sklearn_mtml.AudioFeatures` with
      ``backend="torch"`` does) fill the clip's own frames; frames past the end of a shorter
      clip are zero (padding);
    - an image block is ``(C, H, W)`` float32: pixels scaled to full scale 1 (uint8 / 255,
      uint16 / 65535), converted to ``color`` and resized to ``image_size`` (as
      :class:`~sklearn_mtml.ImageFeatures` ``(output="tensor")`` does);
    - a tabular block is its row, as given.

    Parameters
    ----------
    audio : mapping of str to sequence of path or None, default=None
        Audio columns: one file path per row (anything soundfile reads, or librosa as a
        fallback), ``None``/NaN for a missing clip.
    images : mapping of str to sequence of path or None, default=None
        Image columns: one file path per row (read with Pillow), ``None``/NaN for a missing
        image.
    tabular : mapping of str to array-like, default=None
        In-memory numeric blocks, ``(n, d)`` (or ``(n, T, F)``, ``(n, C, H, W)``). A row that
        is NaN everywhere is absent; any other NaN or infinity is an error.
    masks : mapping of str to array-like of bool, default=None
        Presence of a block per row (``False``: absent), combined with the missing paths and
        all-NaN rows.
    sr : float, default=16000
        Sample rate of the decoded waveforms (files at another rate are resampled).
    duration : float, default=1.0
        Seconds of audio per row: longer clips are cut, shorter ones zero-padded.
    audio_features : str or tuple of str, default=("logmel",)
        Frame features of the audio front end, concatenated in this order: ``"logmel"``
        (``n_mels`` log-mel energies in dB), ``"mfcc"``, ``"delta"``, ``"delta2"``
        (``n_mfcc`` each), ``"chroma"`` (12), ``"centroid"``, ``"bandwidth"``,
        ``"rolloff"``, ``"zcr"``, ``"rms"`` (1 each).
    n_fft : int, default=512
        FFT size and window length.
    hop_length : int, default=128
        Hop between frames, in samples.
    n_mels : int, default=40
        Mel bands.
    n_mfcc : int, default=13
        MFCCs kept (at most ``n_mels``).
    fmin : float, default=0.0
        Lowest mel frequency (Hz).
    fmax : float or None, default=None
        Highest mel frequency (Hz); None is ``sr / 2``.
    top_db : float or None, default=80.0
        Log-mel dynamic range per clip; None disables clipping.
    image_size : int or (int, int), default=(32, 32)
        ``(height, width)`` of every decoded image.
    color : {"rgb", "grey"}, default="rgb"
        Channels of the decoded images (3 or 1).
    memory_budget : int or "auto", default="auto"
        Bytes the decoded features may take for a fit with ``streaming="auto"`` to decode them
        once into memory (the fast path) instead of decoding every batch at every epoch.
        ``"auto"``: a quarter of the memory available when the fit starts (``MemAvailable``);
        on a GPU the features must also fit in half of its free memory. ``0`` always streams.

    Attributes
    ----------
    audio : dict of str to ndarray of object
        The audio columns (paths, or None where missing).
    images : dict of str to ndarray of object
        The image columns.
    tabular : dict of str to ndarray of float32
        The tabular blocks (absent rows set to 0).
    masks : dict of str to ndarray of bool
        Presence of every block per row.

    See Also
    --------
    sklearn_mtml.ModalityBlocks : The in-memory container; :meth:`load` decodes into one.

    Notes
    -----
    A missing file raises a ``FileNotFoundError`` that names the column, the row and the path
    before any training (every present path is checked when a fit or a prediction starts); an
    unreadable or empty file raises a ``ValueError`` naming them when its batch is decoded.
    Rows are numbered within this container (a cross-validation fold numbers its own rows).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import soundfile as sf
    >>> from sklearn_mtml import FileBlocks
    >>> tmp = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> paths = []
    >>> for i in range(3):
    ...     paths.append(os.path.join(tmp, f"clip{i}.wav"))
    ...     sf.write(paths[-1], rng.normal(0, 0.1, 8000).astype("float32"), 8000)
    >>> Xf = FileBlocks(audio={"speech": paths + [None]},
    ...                 tabular={"meta": rng.normal(size=(4, 2))}, sr=8000, duration=0.5)
    >>> Xf.shape, Xf.block_shapes
    ((4, 2), {'speech': (32, 40), 'meta': (2,)})
    >>> Xb = Xf.load()  # decoded in memory: a ModalityBlocks
    >>> Xb.blocks["speech"].shape, Xb.masks["speech"].tolist()
    ((4, 32, 40), [True, True, True, False])
    """

    audio: dict[str, np.ndarray]
    images: dict[str, np.ndarray]
    tabular: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    def __init__(
        self,
        audio: Mapping[str, Any] | None = None,
        images: Mapping[str, Any] | None = None,
        tabular: Mapping[str, Any] | None = None,
        *,
        masks: Mapping[str, Any] | None = None,
        sr: float = 16000,
        duration: float = 1.0,
        audio_features: str | Sequence[str] = ("logmel",),
        n_fft: int = 512,
        hop_length: int = 128,
        n_mels: int = 40,
        n_mfcc: int = 13,
        fmin: float = 0.0,
        fmax: float | None = None,
        top_db: float | None = 80.0,
        image_size: int | tuple[int, int] = (32, 32),
        color: str = "rgb",
        memory_budget: int | str = "auto",
    ):
        self.sr = sr
        self.duration = duration
        self.audio_features = audio_features
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.n_mfcc = n_mfcc
        self.fmin = fmin
        self.fmax = fmax
        self.top_db = top_db
        self.image_size = image_size
        self.color = color
        self.memory_budget = memory_budget
        self._check_settings()
        self.audio, self.images, self.tabular = {}, {}, {}
        n: int | None = None
        seen: set[str] = set()
        for kind, given, store in (("audio", audio, self.audio), ("image", images, self.images),
                                   ("tabular", tabular, self.tabular)):
            if given is None:
                continue
            if not isinstance(given, Mapping):
                raise TypeError(f"FileBlocks: {kind} must be a mapping of column name to "
                                f"values, got {type(given).__name__}.")
            for name, values in given.items():
                if not isinstance(name, str):
                    raise TypeError(f"FileBlocks: column names must be strings, got {name!r}.")
                if name in seen:
                    raise ValueError(f"FileBlocks: column name {name!r} is used twice; every "
                                     "block needs its own name.")
                seen.add(name)
                if kind == "tabular":
                    store[name] = self._tabular_block(name, values, n)
                else:
                    store[name] = _path_column(kind, name, values, n)
                n = len(store[name])
        if n is None:
            raise ValueError("FileBlocks needs at least one column (audio, images or tabular).")
        if n == 0:
            raise ValueError("FileBlocks has 0 rows; at least one row is required.")
        given_masks = dict(masks or {})
        unknown = [k for k in given_masks if k not in seen]
        if unknown:
            raise ValueError(f"FileBlocks: masks {unknown} name no column; columns are "
                             f"{self.names}.")
        self.masks = {}
        for name in self.names:
            present = np.ones(n, dtype=bool)
            if name in self.tabular:
                block = self.tabular[name]
                flat = block.reshape(n, -1)
                absent = np.isnan(flat).all(axis=1) if flat.shape[1] else np.zeros(n, bool)
                present &= ~absent
            else:
                col = self.audio[name] if name in self.audio else self.images[name]
                present &= ~np.array([is_missing_value(v) for v in col], dtype=bool)
            if name in given_masks and given_masks[name] is not None:
                mask = np.asarray(given_masks[name])
                if mask.shape != (n,) or mask.dtype.kind not in "biu":
                    raise ValueError(f"FileBlocks: mask of {name!r} must be boolean of shape "
                                     f"({n},), got {mask.dtype} of shape {mask.shape}.")
                present &= mask.astype(bool)
            self.masks[name] = present
        for name, block in self.tabular.items():
            present = self.masks[name]
            bad = ~np.isfinite(block.reshape(n, -1)).all(axis=1) & present
            if bad.any():
                raise ValueError(
                    f"FileBlocks: tabular block {name!r} has NaN or infinity in row "
                    f"{int(np.flatnonzero(bad)[0])}; a row is absent only when it is all NaN "
                    "(or masked).")
            if not present.all():
                block = block.copy()
                block[~present] = 0
                self.tabular[name] = block

    # ------------------------------------------------------------------ validation
    def _check_settings(self) -> None:
        def positive(name: str, value: Any, integral: bool) -> None:
            kind = Integral if integral else Real
            if isinstance(value, bool) or not isinstance(value, kind) or not float(value) > 0:
                what = "integer" if integral else "number"
                raise ValueError(f"FileBlocks: {name} must be a positive {what}, got "
                                 f"{value!r}.")

        positive("sr", self.sr, False)
        positive("duration", self.duration, False)
        positive("n_fft", self.n_fft, True)
        positive("hop_length", self.hop_length, True)
        positive("n_mels", self.n_mels, True)
        positive("n_mfcc", self.n_mfcc, True)
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"FileBlocks: n_mfcc ({self.n_mfcc}) must be at most n_mels "
                             f"({self.n_mels}).")
        feats = self._features()
        unknown = [f for f in feats if f not in AUDIO_FRAME_FEATURES]
        if unknown or not feats or len(set(feats)) != len(feats):
            raise ValueError(f"FileBlocks: audio_features must be distinct names among "
                             f"{list(AUDIO_FRAME_FEATURES)}, got {self.audio_features!r}.")
        self._image_hw()
        if self.color not in _COLORS:
            raise ValueError(f"FileBlocks: color must be one of {list(_COLORS)}, got "
                             f"{self.color!r}.")
        budget = self.memory_budget
        if not (budget == "auto" or (isinstance(budget, Integral)
                                     and not isinstance(budget, bool) and budget >= 0)):
            raise ValueError("FileBlocks: memory_budget must be 'auto' or a number of bytes "
                             f">= 0, got {budget!r}.")

    def _features(self) -> tuple[str, ...]:
        feats = self.audio_features
        return (feats,) if isinstance(feats, str) else tuple(feats)

    def _image_hw(self) -> tuple[int, int]:
        size = self.image_size
        pair = (size, size) if isinstance(size, Integral) else tuple(cast(Sequence[int], size))
        if len(pair) != 2 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                     and v > 0 for v in pair):
            raise ValueError("FileBlocks: image_size must be a positive int or a pair of "
                             f"positive ints (height, width), got {size!r}.")
        return int(pair[0]), int(pair[1])

    @staticmethod
    def _tabular_block(name: str, values: Any, n: int | None) -> np.ndarray:
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        try:
            arr = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"FileBlocks: tabular block {name!r} is not numeric ({exc}); "
                             "encode it first (e.g. with CategoricalFeatures).") from exc
        if arr.ndim < 2:
            raise ValueError(f"FileBlocks: tabular block {name!r} has shape {arr.shape}; "
                             "expected one row per sample, (n, d) (reshape a 1-D column with "
                             ".reshape(-1, 1)).")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"FileBlocks: tabular block {name!r} has {arr.shape[0]} rows, but "
                             f"the columns before it have {n}.")
        return arr

    def settings(self) -> dict[str, Any]:
        """The decoding settings (every constructor parameter but the columns and masks).

        Returns
        -------
        settings : dict
            A fitted :class:`~sklearn_mtml.MultiTaskNet` checks that a prediction's
            ``FileBlocks`` decodes its files with the settings seen at fit.
        """
        return {"sr": self.sr, "duration": self.duration, "audio_features": self._features(),
                "n_fft": self.n_fft, "hop_length": self.hop_length, "n_mels": self.n_mels,
                "n_mfcc": self.n_mfcc, "fmin": self.fmin, "fmax": self.fmax,
                "top_db": self.top_db, "image_size": self._image_hw(), "color": self.color,
                "memory_budget": self.memory_budget}

    # ------------------------------------------------------------------ array-like protocol
    @property
    def names(self) -> list[str]:
        """Block names, in order: audio columns, then image columns, then tabular blocks."""
        return [*self.audio, *self.images, *self.tabular]

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return len(next(iter(self.masks.values())))

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_samples, n_blocks)``: what scikit-learn's row utilities read."""
        return (self.n_samples, len(self.masks))

    @property
    def ndim(self) -> int:
        """Always 2 (rows by blocks)."""
        return 2

    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self) -> Iterator:
        raise TypeError("FileBlocks is not iterable; use .names, or index rows with "
                        "X[rows].")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError("FileBlocks holds file paths that MultiTaskNet decodes batch by batch; "
                        "it does not convert to an array. Use .load() for an in-memory "
                        "ModalityBlocks of the decoded features.")

    @property
    def presence(self) -> np.ndarray:
        """Presence of every block as one ``(n_samples, n_blocks)`` boolean array."""
        return np.column_stack([self.masks[k] for k in self.names])

    def __getitem__(self, key: Any) -> FileBlocks:
        """Select rows: a new ``FileBlocks`` with the same settings (nothing is decoded).

        Parameters
        ----------
        key : int, slice, array-like of int or bool, or tuple (rows, ...)
            Rows to keep (an int keeps one row), or ``X[rows, ...]`` as scikit-learn writes
            it.

        Returns
        -------
        FileBlocks
        """
        if isinstance(key, tuple):
            if not all(k is Ellipsis or k == slice(None) for k in key[1:]):
                raise IndexError("FileBlocks selects rows only: index as X[rows] or "
                                 "X[rows, ...].")
            key = key[0]
        rows = self._rows(key)
        out = object.__new__(FileBlocks)
        out.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k not in ("audio", "images", "tabular", "masks")})
        out.audio = {k: v[rows] for k, v in self.audio.items()}
        out.images = {k: v[rows] for k, v in self.images.items()}
        out.tabular = {k: v[rows] for k, v in self.tabular.items()}
        out.masks = {k: v[rows] for k, v in self.masks.items()}
        if out.n_samples == 0:
            raise IndexError("FileBlocks: the selection keeps no row.")
        return out

    def _rows(self, key: Any) -> slice | np.ndarray:
        return select_rows(key, self.n_samples, "FileBlocks")

    def __repr__(self) -> str:
        parts = []
        for name in self.names:
            kind = ("audio" if name in self.audio else "images" if name in self.images
                    else "tabular")
            absent = int((~self.masks[name]).sum())
            extra = f", {absent} absent" if absent else ""
            parts.append(f"{name!r}: {kind} -> {self.block_shapes[name]}{extra}")
        return f"FileBlocks(n_samples={self.n_samples}, {{{', '.join(parts)}}})"

    # ------------------------------------------------------------------ decoded layout
    @property
    def n_audio_samples(self) -> int:
        """Samples of every decoded waveform (``duration * sr``, rounded)."""
        return max(int(round(float(self.duration) * float(self.sr))), 1)

    @property
    def n_frames(self) -> int:
        """Frames of every audio block (``1 + n_audio_samples // hop_length``)."""
        return 1 + self.n_audio_samples // int(self.hop_length)

    def _audio_width(self) -> int:
        sizes = {"n_mels": int(self.n_mels), "n_mfcc": int(self.n_mfcc)}
        return sum(sizes[s] if isinstance(s := AUDIO_FRAME_FEATURES[f], str) else s
                   for f in self._features())

    @property
    def block_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-row shape of every block as the network sees it (after the audio front end)."""
        h, w = self._image_hw()
        shapes: dict[str, tuple[int, ...]] = {}
        for name in self.names:
            if name in self.audio:
                shapes[name] = (self.n_frames, self._audio_width())
            elif name in self.images:
                shapes[name] = (3 if self.color == "rgb" else 1, h, w)
            else:
                shapes[name] = tuple(int(s) for s in self.tabular[name].shape[1:])
        return shapes

    @property
    def decoded_nbytes(self) -> int:
        """Bytes of every block's decoded features for all rows (float32)."""
        per_row = sum(int(np.prod(s)) for s in self.block_shapes.values())
        return 4 * per_row * self.n_samples

    def fits_in_memory(self, device: str | torch.device = "cpu") -> bool:
        """Whether the decoded features fit the memory budget (``streaming="auto"``).

        Parameters
        ----------
        device : str or torch.device, default="cpu"
            The training device; on CUDA the features must also fit in half of its free
            memory.

        Returns
        -------
        fits : bool
        """
        budget = (_available_memory() // 4 if self.memory_budget == "auto"
                  else int(self.memory_budget))
        need = self.decoded_nbytes
        device = torch.device(device)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget = min(budget, free // 2)
        return need <= budget

    def lazy_blocks(self) -> dict[str, LazyBlock]:
        """Every block as a :class:`LazyBlock` (shape and rows, decoded on access).

        Returns
        -------
        blocks : dict of str to LazyBlock
        """
        return {name: LazyBlock(self, name) for name in self.names}

    # ------------------------------------------------------------------ decoding
    def check_files(self) -> None:
        """Check that every present path names an existing file.

        Raises
        ------
        FileNotFoundError
            Naming the column, the row and the path of the first missing file.
        """
        for name, col in (*self.audio.items(), *self.images.items()):
            present = self.masks[name]
            for i in np.flatnonzero(present):
                path = os.fspath(col[i])
                if not os.path.isfile(path):
                    kind = "audio" if name in self.audio else "image"
                    raise FileNotFoundError(f"FileBlocks[{name!r}]: row {int(i)}: {kind} file "
                                            f"not found: {path!r}.")

    def decode(self, rows: Any, names: Iterable[str] | None = None
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Decode the files of some rows (what a ``DataLoader`` worker runs for a batch).

        Parameters
        ----------
        rows : array-like of int
            Rows to decode.
        names : iterable of str, default=None
            Blocks to decode (default: all).

        Returns
        -------
        blocks : dict of str to ndarray
            Audio blocks as waveforms ``(len(rows), n_audio_samples)`` (zero-padded), image
            blocks ``(len(rows), C, H, W)``, tabular blocks as stored; absent rows are zero.
        lengths : dict of str to ndarray of int64
            Samples of each audio block's clips (0 where absent), the input of
            :meth:`features`.
        """
        rows = np.asarray(rows, dtype=np.intp).reshape(-1)
        wanted = self.names if names is None else list(names)
        blocks: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        size = self._image_hw()
        n_samples = self.n_audio_samples
        for name in wanted:
            present = self.masks[name]
            label = f"FileBlocks[{name!r}]"
            if name in self.audio:
                wave = np.zeros((len(rows), n_samples), dtype=np.float32)
                lens = np.zeros(len(rows), dtype=np.int64)
                col = self.audio[name]
                for r, i in enumerate(rows):
                    if present[i]:
                        y = _decode_audio(int(i), col[i], label, float(self.sr))
                        k = min(len(y), n_samples)
                        wave[r, :k] = y[:k]
                        lens[r] = k
                blocks[name], lengths[name] = wave, lens
            elif name in self.images:
                h, w = size
                out = np.zeros((len(rows), 3 if self.color == "rgb" else 1, h, w), np.float32)
                col = self.images[name]
                for r, i in enumerate(rows):
                    if present[i]:
                        out[r] = _decode_image(int(i), col[i], label, self.color, size)
                blocks[name] = out
            elif name in self.tabular:
                blocks[name] = np.ascontiguousarray(self.tabular[name][rows])
            else:
                raise KeyError(f"No block {name!r}; blocks are {self.names}.")
        return blocks, lengths

    def features(self, blocks: Mapping[str, torch.Tensor],
                 lengths: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Apply the audio front end to decoded tensors, on the device they are on.

        Parameters
        ----------
        blocks, lengths : mapping of str to Tensor
            :meth:`decode`'s output as tensors (e.g. on the training device).

        Returns
        -------
        features : dict of str to Tensor
            Audio blocks as ``(B, n_frames, n_features)`` frame features (zero past each
            clip's frames and in absent rows); other blocks unchanged.
        """
        from .features.audio_torch import batch_frame_features

        out: dict[str, torch.Tensor] = {}
        for name, x in blocks.items():
            if name not in self.audio:
                out[name] = x
                continue
            lens = lengths[name].to(x.device)
            # clips in chunks whose spectrograms take about 64 MB: the front end's
            # temporaries stay bounded whatever the batch size
            chunk = max(1, (64 << 20) // (8 * (int(self.n_fft) // 2 + 1) * self.n_frames))
            parts = []
            for a in range(0, x.shape[0], chunk):
                xa, la = x[a:a + chunk].float(), lens[a:a + chunk]
                feats, n_frames = batch_frame_features(
                    xa, la.clamp(min=1), features=self._features(), sr=float(self.sr),
                    n_fft=int(self.n_fft), hop_length=int(self.hop_length),
                    n_mels=int(self.n_mels), n_mfcc=int(self.n_mfcc), fmin=float(self.fmin),
                    fmax=self.fmax, top_db=self.top_db, delta_width=9)
                frames = torch.cat(feats, dim=1).transpose(1, 2)  # (b, T, K)
                t = torch.arange(frames.shape[1], device=x.device)
                valid = (t[None, :] < n_frames[:, None]) & (la > 0)[:, None]
                parts.append(torch.where(valid[..., None], frames,
                                         torch.zeros((), dtype=frames.dtype, device=x.device)))
            out[name] = (parts[0] if len(parts) == 1 else torch.cat(parts)).contiguous()
        return out

    def load(self, *, device: str | torch.device = "cpu", batch_size: int = 256,
             num_workers: int | None = None) -> ModalityBlocks:
        """Decode every row into an in-memory :class:`~sklearn_mtml.ModalityBlocks`.

        What a fit with ``streaming="auto"`` does when the decoded features fit the memory
        budget; also the in-memory counterpart of this container (same features, same
        masks).

        Parameters
        ----------
        device : str or torch.device, default="cpu"
            Where the audio front end runs.
        batch_size : int, default=256
            Rows per decoded batch.
        num_workers : int or None, default=None
            ``DataLoader`` workers that decode the files (None: :func:`default_num_workers`).

        Returns
        -------
        ModalityBlocks
            The decoded features and the presence masks.
        """
        dev = torch.device(device)
        n = self.n_samples
        out = {name: np.zeros((n, *shape), dtype=np.float32)
               for name, shape in self.block_shapes.items()}
        batches = [np.arange(a, min(a + batch_size, n)) for a in range(0, n, batch_size)]
        for rows, blocks, lengths in iter_decoded(
                self, batches, num_workers=num_workers, pin_memory=dev.type == "cuda"):
            feats = self.features(
                {k: v.to(dev, non_blocking=True) for k, v in blocks.items()},
                {k: v.to(dev) for k, v in lengths.items()})
            idx = rows.numpy()
            for name, value in feats.items():
                out[name][idx] = value.float().cpu().numpy()
        return ModalityBlocks(out, masks=dict(self.masks))

    def statistics(self, method: str, *, device: str | torch.device = "cpu",
                   skip: Iterable[str] = (), batch_size: int = 256,
                   num_workers: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Input scaling statistics of every block, from a streaming pass over the files.

        Only the rows the statistics use are decoded: the present rows of a block, or the
        same random subsample of them that
        :func:`~sklearn_mtml.nn.scaling.block_statistics` takes of a large in-memory block,
        so the result equals ``block_statistics`` on the decoded block.

        Parameters
        ----------
        method : {"robust", "standard"}
            The scaling (``MultiTaskNet(input_scaling=...)``).
        device : str or torch.device, default="cpu"
            Where the audio front end runs.
        skip : iterable of str, default=()
            Blocks that get no statistics.
        batch_size : int, default=256
            Rows per decoded batch.
        num_workers : int or None, default=None
            ``DataLoader`` workers (None: :func:`default_num_workers`).

        Returns
        -------
        stats : dict of str to (ndarray, ndarray)
            Centre and scale of each block's features.
        """
        from .nn import scaling

        dev = torch.device(device)
        skipped = set(skip)
        stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, shape in self.block_shapes.items():
            if name in skipped:
                continue
            present = np.flatnonzero(self.masks[name])
            if name in self.tabular:
                stats[name] = scaling.block_statistics(self.tabular[name][present], method)
                continue
            # the subsample block_statistics draws from the present rows of a large block
            n_features = shape[0] if len(shape) >= 3 else shape[-1]
            per_row = max(int(np.prod(shape)) // n_features, 1)
            max_rows = max(min(scaling._MAX_VALUES // per_row,
                               scaling._MAX_TOTAL // (per_row * n_features)), 1)
            rows = present
            if len(present) > max_rows:
                pick = np.random.RandomState(0).choice(len(present), max_rows, replace=False)
                rows = present[np.sort(pick)]
            values = np.zeros((len(rows), *shape), dtype=np.float32)
            batches = [np.arange(a, min(a + batch_size, len(rows)))
                       for a in range(0, len(rows), batch_size)]
            for pos, blocks, lengths in iter_decoded(
                    self, [rows[b] for b in batches], names=[name], num_workers=num_workers,
                    pin_memory=dev.type == "cuda", positions=batches):
                feats = self.features(
                    {k: v.to(dev, non_blocking=True) for k, v in blocks.items()},
                    {k: v.to(dev) for k, v in lengths.items()})
                values[pos.numpy()] = feats[name].float().cpu().numpy()
            stats[name] = scaling.block_statistics(values, method)
        return stats


class LazyBlock:
    """One block of a :class:`FileBlocks`, shaped like the decoded array it stands for.

    It has the ``shape``, ``ndim``, ``dtype`` and ``nbytes`` of the decoded features, and
    ``block[rows]`` decodes those rows (in this process, front end on the CPU), so that code
    written for in-memory blocks can read its layout; a fit never indexes it whole.

    Parameters
    ----------
    source : FileBlocks
        The container.
    name : str
        The block.
    """

    def __init__(self, source: FileBlocks, name: str):
        self.source = source
        self.name = name
        self.dtype = np.dtype(np.float32)
        self.base = None  # not memory-mapped (see sklearn_mtml._rows.is_memory_mapped)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n_samples, *per-row shape)`` of the decoded features."""
        return (self.source.n_samples, *self.source.block_shapes[self.name])

    @property
    def ndim(self) -> int:
        """Number of axes of the decoded features."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded features."""
        return 4 * int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.source.n_samples

    def __getitem__(self, rows: Any) -> np.ndarray:
        """Decode ``rows`` of this block (features computed on the CPU).

        Parameters
        ----------
        rows : int, slice or array-like of int or bool
            Rows to decode.

        Returns
        -------
        ndarray of float32
        """
        idx = np.arange(self.source.n_samples)[rows]
        blocks, lengths = self.source.decode(np.atleast_1d(idx), [self.name])
        feats = self.source.features({k: torch.from_numpy(v) for k, v in blocks.items()},
                                     {k: torch.from_numpy(v) for k, v in lengths.items()})
        out = feats[self.name].numpy()
        return out[0] if np.ndim(idx) == 0 else out

    def __repr__(self) -> str:
        return f"LazyBlock({self.name!r}, shape={self.shape})"


def lazy_source(blocks: Mapping[str, Any]) -> FileBlocks | None:
    """The :class:`FileBlocks` behind blocks from :meth:`FileBlocks.lazy_blocks`, else None.

    Parameters
    ----------
    blocks : mapping of str to array or LazyBlock
        Validated input blocks.

    Returns
    -------
    FileBlocks or None
    """
    first = next(iter(blocks.values()), None)
    return first.source if isinstance(first, LazyBlock) else None


class _DecodeError:
    """An error raised while decoding a batch, sent back from a worker to be raised as it is.

    A ``DataLoader`` re-raises a worker's exception wrapped in a traceback dump; sending the
    exception itself keeps its type and its message (which names the row and the file).
    """

    def __init__(self, exc: BaseException):
        self.exc = exc


def _decode_or_error(source: FileBlocks, rows: np.ndarray, names: list[str] | None
                     ) -> tuple[Any, Any]:
    try:
        return source.decode(rows, names)
    except Exception as exc:  # noqa: BLE001 - re-raised in the main process
        return _DecodeError(exc), None


def raise_failures(batches: Iterable[tuple[Any, Any, Any]]
                   ) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor],
                                       dict[str, torch.Tensor]]]:
    """Pass decoded batches on; raise the error of a batch whose decoding failed.

    Parameters
    ----------
    batches : iterable of (rows, blocks, lengths)
        What a ``DataLoader`` over decoded batches yields.

    Yields
    ------
    rows, blocks, lengths
        The same batches.
    """
    for rows, blocks, lengths in batches:
        if isinstance(blocks, _DecodeError):
            raise blocks.exc
        yield rows, blocks, lengths


class _Decoder(Dataset):
    """A ``Dataset`` whose item ``i`` is the decoded batch of the ``i``-th row array."""

    def __init__(self, source: FileBlocks, batches: Sequence[np.ndarray],
                 positions: Sequence[np.ndarray] | None, names: list[str] | None):
        self.source = source
        self.batches = batches
        self.positions = positions
        self.names = names

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray],
                                            dict[str, np.ndarray]]:
        blocks, lengths = _decode_or_error(self.source, self.batches[i], self.names)
        key = self.batches[i] if self.positions is None else self.positions[i]
        return np.asarray(key), blocks, lengths


class BatchPlan:
    """The row arrays of the next pass over a data set, swapped in before each pass.

    A ``DataLoader`` with persistent workers keeps its sampler; the plan it samples from
    changes every epoch (a new shuffled order), so the workers decode the new batches.
    """

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)


class _PlanDecoder(Dataset):
    """Decodes the row array the sampler hands over (not an index into a list)."""

    def __init__(self, source: FileBlocks):
        self.source = source

    def __len__(self) -> int:
        return self.source.n_samples

    def __getitem__(self, rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                     dict[str, np.ndarray]]:
        blocks, lengths = _decode_or_error(self.source, rows, None)
        return np.asarray(rows), blocks, lengths


def make_loader(source: FileBlocks, plan: BatchPlan, **loader_kwargs: Any) -> DataLoader:
    """A ``DataLoader`` that decodes, in its workers, each row array of ``plan``.

    Parameters
    ----------
    source : FileBlocks
        The files.
    plan : BatchPlan
        The row arrays, one per batch (it may change between passes).
    **loader_kwargs
        ``DataLoader`` arguments (``num_workers``, ``pin_memory``, ``persistent_workers``,
        ``prefetch_factor``, ...).

    Returns
    -------
    DataLoader
        Yields ``(rows, blocks, lengths)`` as tensors.
    """
    kwargs = dict(loader_kwargs)
    workers = kwargs.pop("num_workers", None)
    workers = default_num_workers() if workers is None else int(workers)
    if workers == 0:
        for key in ("persistent_workers", "prefetch_factor", "timeout",
                    "multiprocessing_context", "worker_init_fn"):
            kwargs.pop(key, None)
    else:
        kwargs.setdefault("persistent_workers", True)
    # its own generator: drawing the workers' seeds must not move torch's global RNG (a fit
    # from files then shuffles and drops out exactly as the same fit from memory)
    kwargs.setdefault("generator", torch.Generator().manual_seed(0))
    return DataLoader(_PlanDecoder(source), batch_size=None, sampler=plan,
                      num_workers=workers, **kwargs)


def iter_decoded(source: FileBlocks, batches: Sequence[np.ndarray], *,
                 names: Iterable[str] | None = None, num_workers: int | None = None,
                 pin_memory: bool = False, positions: Sequence[np.ndarray] | None = None
                 ) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor],
                                     dict[str, torch.Tensor]]]:
    """Decode batches of rows of ``source`` in ``DataLoader`` workers, in order.

    Parameters
    ----------
    source : FileBlocks
        The files.
    batches : sequence of ndarray of int
        The rows of each batch.
    names : iterable of str, default=None
        Blocks to decode (default: all).
    num_workers : int or None, default=None
        Worker processes (None: :func:`default_num_workers`; 0 decodes in this process).
    pin_memory : bool, default=False
        Pin the decoded tensors (for a non-blocking copy to a GPU).
    positions : sequence of ndarray, default=None
        What to yield as the first item of each batch instead of its rows.

    Yields
    ------
    rows : Tensor of int64
        The batch's rows (or ``positions``).
    blocks, lengths : dict of str to Tensor
        :meth:`FileBlocks.decode`'s output, as tensors.
    """
    if not len(batches):
        return
    workers = default_num_workers() if num_workers is None else int(num_workers)
    workers = min(workers, len(batches))
    loader = DataLoader(_Decoder(source, batches, positions,
                                 None if names is None else list(names)),
                        batch_size=None, shuffle=False, num_workers=workers,
                        pin_memory=pin_memory, generator=torch.Generator().manual_seed(0))
    yield from raise_failures(loader)

