"""Image features: pixels, CNN-ready tensors, HOG descriptors or intensity histograms."""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from typing import Any

import numpy as np

from .._compat import Interval, StrOptions, _fit_context
from .._optional import require
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

__all__ = ["ImageFeatures", "hog", "is_constant"]

# ITU-R 601-2 luma, the weights of Pillow's convert("L")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _pair(value: Any, param: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, Integral) and int(v) > 0 for v in pair):
        raise ValueError(
            f"ImageFeatures: the {param!r} parameter must be a positive int or a pair of "
            f"positive ints (height, width), got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _read_image(row: int, path: Any, name: str) -> np.ndarray:
    """Read an image file with Pillow: (H, W) for grey images, (H, W, 3) otherwise."""
    Image = require("PIL.Image", needed_by="ImageFeatures (reading image files)",
                    extra="image", instead="or pass images as arrays")
    path_str = os.fspath(path)
    if not os.path.isfile(path_str):
        raise row_error(FileNotFoundError, row, f"image file not found: {path_str!r}", name=name)
    try:
        with Image.open(path_str) as img:
            img.load()
            if img.mode == "1":
                img = img.convert("L")
            elif img.mode not in ("L", "I", "I;16", "F", "RGB"):
                img = img.convert("RGB")  # palette, RGBA (alpha dropped), CMYK, LA, ...
            return np.asarray(img)
    except Exception as exc:
        raise row_error(
            ValueError, row, f"cannot read image file {path_str!r}: {exc}", name=name, cause=exc
        ) from exc


_CONSTANT = "image_constant"  # what the file memo records for an image file
# Full scale of the integer dtypes whose range is a convention; every other dtype is divided
# by the full scale learned at fit (``full_scale_``).
_DTYPE_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def is_constant(img: np.ndarray) -> bool:
    """Whether an image is constant (``max == min`` over all its pixels and channels).

    With ``detect_empty=True``, :class:`ImageFeatures` treats such an image (all black, all
    white, any uniform value) as carrying no signal.
    """
    return bool(img.size) and bool(img.max() == img.min())


def _learned_full_scale(images: list) -> float:
    """The ``full_scale="auto"`` rule, applied to the training images.

    The largest absolute value of the images whose dtype has no conventional full scale, or
    1.0 when those values lie within [-1, 1] (kept unchanged).
    """
    peaks = [max(abs(float(img.min())), abs(float(img.max()))) for img in images
             if img is not None and img.dtype not in _DTYPE_FULL_SCALE]
    peak = max(peaks, default=0.0)
    return peak if peak > 1.0 else 1.0


def _scale(arr: np.ndarray, normalize: str | None, full_scale: float = 1.0) -> np.ndarray:
    """Scale to full scale 1, float32 out (no scaling with normalize=None).

    uint8 / 255 and uint16 / 65535; any other dtype (floats, other integers, bool) is divided
    by ``full_scale``.
    """
    if normalize is None:
        return arr.astype(np.float32)
    full = _DTYPE_FULL_SCALE.get(arr.dtype, full_scale)
    out = arr.astype(np.float32)
    return out if full == 1.0 else out / np.float32(full)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (C, H, W) image: Gaussian anti-aliasing when shrinking, then bilinear."""
    from scipy import ndimage

    _, h, w = img.shape
    if (h, w) == size:
        return img
    factors = (size[0] / h, size[1] / w)
    sigma = [0.0] + [max(0.0, (1.0 / f - 1.0) / 2.0) for f in factors]
    if any(sigma):
        img = ndimage.gaussian_filter(img, sigma=sigma, mode="nearest")
    out = ndimage.zoom(img, (1.0, *factors), order=1, mode="nearest", grid_mode=True)
    return out.astype(np.float32, copy=False)


def hog(
    images: np.ndarray,
    orientations: int = 9,
    cell: tuple[int, int] = (8, 8),
    block: tuple[int, int] = (2, 2),
) -> np.ndarray:
    """Histograms of oriented gradients of a batch of images (Dalal & Triggs).

    Centred gradients (zero on the border rows/columns); for colour images the channel with
    the largest gradient magnitude at each pixel; unsigned orientations in [0, 180) binned
    into ``orientations`` equal bins (hard assignment), magnitudes averaged per cell; cells
    grouped into overlapping blocks of ``block`` cells, each block normalised with L2-Hys
    (L2, clip at 0.2, L2 again).

    Parameters
    ----------
    images : ndarray of shape (n, C, H, W)
        Images.
    orientations : int, default=9
        Orientation bins.
    cell : (int, int), default=(8, 8)
        Pixels per cell (rows, columns); trailing pixels that do not fill a cell are ignored.
    block : (int, int), default=(2, 2)
        Cells per block.

    Returns
    -------
    ndarray of shape (n, n_blocks_y * n_blocks_x * block[0] * block[1] * orientations)
        Descriptors, ordered by block row, block column, cell row, cell column, orientation.
    """
    x = np.asarray(images, dtype=np.float64)
    n, _, H, W = x.shape
    gy = np.zeros_like(x)
    gx = np.zeros_like(x)
    gy[:, :, 1:-1, :] = x[:, :, 2:, :] - x[:, :, :-2, :]
    gx[:, :, :, 1:-1] = x[:, :, :, 2:] - x[:, :, :, :-2]
    mag = np.hypot(gx, gy)
    best = mag.argmax(axis=1)[:, None]
    gx = np.take_along_axis(gx, best, axis=1)[:, 0]
    gy = np.take_along_axis(gy, best, axis=1)[:, 0]
    mag = np.take_along_axis(mag, best, axis=1)[:, 0]
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
    ch, cw = cell
    ncy, ncx = H // ch, W // cw
    bins = np.minimum((angle * (orientations / 180.0)).astype(np.int64), orientations - 1)
    mag = mag[:, : ncy * ch, : ncx * cw].reshape(n, ncy, ch, ncx, cw)
    bins = bins[:, : ncy * ch, : ncx * cw].reshape(n, ncy, ch, ncx, cw)
    hist = np.stack(
        [np.where(bins == o, mag, 0.0).sum(axis=(2, 4)) for o in range(orientations)], axis=-1
    ) / (ch * cw)  # (n, ncy, ncx, orientations)
    by, bx = block
    win = np.lib.stride_tricks.sliding_window_view(hist, (by, bx), axis=(1, 2))
    # (n, nby, nbx, orientations, by, bx) -> (n, nby, nbx, by, bx, orientations)
    win = win.transpose(0, 1, 2, 4, 5, 3).reshape(n, win.shape[1], win.shape[2], -1)
    eps = 1e-5
    v = win / np.sqrt((win**2).sum(axis=-1, keepdims=True) + eps**2)
    v = np.minimum(v, 0.2)
    v = v / np.sqrt((v**2).sum(axis=-1, keepdims=True) + eps**2)
    return v.reshape(n, -1)


class ImageFeatures(ModalityTransformer):
    """Images to pixel features, CNN tensors, HOG descriptors or intensity histograms.

    Each row of the input column is an image: a 2-D grey array ``(H, W)``, a 3-D colour array
    ``(H, W, C)`` with channels last (C = 1, 3, or 4 whose alpha is dropped), or a file path
    read with Pillow (optional dependency: ``pip install sklearn-mtml[image]``). Stacked numeric
    arrays are accepted too: ``(n, H, W)`` grey or ``(n, H, W, C)`` colour images, and
    ``(n, D)`` with ``D`` a perfect square for flattened square grey images (as MNIST or
    ``sklearn.datasets.load_digits().data``).

    Pipeline per image: scaling to full scale 1 (uint8 / 255, uint16 / 65535, any other dtype
    divided by ``full_scale_``), colour conversion, resizing to ``size``, then the output
    descriptor.

    Parameters
    ----------
    output : {"pixels", "tensor", "hog", "histogram"}, default="pixels"
        ``"pixels"``: 2-D ``(n, C*H*W)``, flattened in channel, row, column order.
        ``"tensor"``: 4-D ``(n, C, H, W)`` for a CNN encoder (channels first).
        ``"hog"``: 2-D histograms of oriented gradients (see :func:`hog`).
        ``"histogram"``: 2-D ``(n, C*bins)`` per-channel intensity histograms (fractions of
        pixels, summing to 1 per channel) of the scaled values over ``hist_range``.
    size : int, (int, int) or None, default=None
        ``(height, width)`` of every image. None uses the size of the images seen at fit,
        which must all share it (a different size at transform is an error); an int or pair
        resizes every image (Gaussian anti-aliasing when shrinking, then bilinear
        interpolation, with SciPy: the same results with or without Pillow).
    color : {"auto", "grey", "rgb"}, default="auto"
        Channels of the output: ``"grey"`` (1 channel; colour images are converted with the
        ITU-R 601-2 luma weights of Pillow), ``"rgb"`` (3 channels; grey images are
        replicated) or ``"auto"`` (``"rgb"`` if any image seen at fit has colour channels).
    normalize : {"unit", "standard"} or None, default="unit"
        ``"unit"``: the scaling to full scale 1 only (see ``full_scale``: uint8 images, and
        float images of any range, land in [0, 1]). ``"standard"``: then subtract the
        per-channel mean and divide by the per-channel standard deviation learned at fit
        (``pixels`` and ``tensor`` outputs only; descriptors use the scaled values). None: no
        scaling at all, pixel values are cast to float32 unchanged.
    full_scale : "auto" or float, default="auto"
        The value that maps to 1 for images whose dtype has no conventional range (floats,
        signed or wide integers, bool); uint8 images are always divided by 255 and uint16
        ones by 65535. ``"auto"``: learned at fit (``full_scale_``) as the largest absolute
        value of those training images when it exceeds 1 (float images stored as 0-255, or
        0-16 as ``load_digits``, are scaled like integer images), else 1 (values within
        [0, 1] or [-1, 1] are kept). A number fixes it, e.g. ``255.0`` for 8-bit values
        stored as floats whatever their training maximum. Ignored with ``normalize=None``.
    detect_empty : bool, default=True
        Treat a constant image (``max == min`` over all pixels and channels: all black, all
        white, any uniform value) as carrying no signal: at transform it is validated like
        any image, then gives an all-zero output row, like a missing image, and
        :meth:`absent_items` reports it so that :class:`~sklearn_mtml.fusion.ModalityFusion`
        marks it absent. At fit it is an ordinary image. False: only ``None``/NaN rows are
        missing.
    bins : int, default=16
        Bins per channel of ``output="histogram"``.
    hist_range : (float, float), default=(0.0, 1.0)
        Value range of the histogram bins; values outside fall in the first/last bin.
    hog_orientations : int, default=9
        Orientation bins of ``output="hog"``.
    hog_cell : int or (int, int), default=8
        Pixels per HOG cell.
    hog_block : int or (int, int), default=2
        Cells per HOG block (blocks overlap by all but one cell).

    Attributes
    ----------
    size_ : tuple of int
        ``(height, width)`` of the output images.
    color_ : str
        ``"grey"`` or ``"rgb"``.
    n_channels_ : int
        1 or 3.
    mean_ : ndarray of shape (n_channels,)
        Per-channel mean (``normalize="standard"`` only).
    scale_ : ndarray of shape (n_channels,)
        Per-channel standard deviation, 1 where it is 0 (``normalize="standard"`` only).
    full_scale_ : float
        Divisor of the images whose dtype is not uint8 or uint16 (see ``full_scale``; 1.0
        with ``normalize=None``).

    Notes
    -----
    Missing rows (``None``, NaN), and constant images with ``detect_empty=True``, give
    all-zero output rows (all-zero images for ``output="tensor"``). A missing or unreadable
    file, an image of the wrong dimensionality or, with ``size=None``, of another size than at
    fit raises an error naming the row (a constant image too).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml.features import ImageFeatures
    >>> rng = np.random.default_rng(0)
    >>> images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    >>> ImageFeatures().fit_transform(images).shape
    (3, 784)
    >>> ImageFeatures(output="tensor", size=16).fit_transform(images + [None]).shape
    (4, 1, 16, 16)
    >>> ImageFeatures(output="hog").fit(images).get_feature_names_out().shape
    (144,)
    """

    _parameter_constraints: dict = {
        "output": [StrOptions({"pixels", "tensor", "hog", "histogram"})],
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "color": [StrOptions({"auto", "grey", "rgb"})],
        "normalize": [StrOptions({"unit", "standard"}), None],
        "bins": [Interval(Integral, 1, None, closed="left")],
        "hist_range": [tuple, list],
        "hog_orientations": [Interval(Integral, 1, None, closed="left")],
        "hog_cell": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "hog_block": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "full_scale": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "detect_empty": ["boolean"],
    }

    def __init__(
        self,
        output: str = "pixels",
        *,
        size: int | tuple[int, int] | None = None,
        color: str = "auto",
        normalize: str | None = "unit",
        bins: int = 16,
        hist_range: tuple[float, float] = (0.0, 1.0),
        hog_orientations: int = 9,
        hog_cell: int | tuple[int, int] = 8,
        hog_block: int | tuple[int, int] = 2,
        full_scale: str | float = "auto",
        detect_empty: bool = True,
    ) -> None:
        self.output = output
        self.size = size
        self.color = color
        self.normalize = normalize
        self.bins = bins
        self.hist_range = hist_range
        self.hog_orientations = hog_orientations
        self.hog_cell = hog_cell
        self.hog_block = hog_block
        self.full_scale = full_scale
        self.detect_empty = detect_empty

    # ----------------------------------------------------------------- input handling

    def _numeric_array(self, X: np.ndarray) -> list:
        if X.ndim in (3, 4):
            return list(X)
        if X.ndim == 2:
            side = math.isqrt(X.shape[1])
            if side * side != X.shape[1]:
                raise ValueError(
                    "ImageFeatures: a 2-D numeric array is read as flattened square grey images "
                    f"(n, H*H), but its width {X.shape[1]} is not a square; pass a 3-D "
                    "(n, H, W) or 4-D (n, H, W, C) array or a list of images"
                )
            return list(X.reshape(X.shape[0], side, side))
        raise ValueError(
            f"ImageFeatures: a numeric array of shape {X.shape} is not a stack of images. "
            "Reshape your data: (n, H, W) grey or (n, H, W, C) colour images, or pass a list "
            "of 2-D/3-D images"
        )

    def _image(self, row: int, item: Any) -> np.ndarray:
        """One present row as a (C, H, W) array of its own dtype (not scaled), validated."""
        if is_path(item):
            arr = _read_image(row, item, self._name)
        elif isinstance(item, (np.ndarray, list, tuple)) or any(
            hasattr(item, a) for a in ("__array__", "__array_interface__")
        ):  # arrays, tensors, PIL images
            arr = to_float_array(item, row, self._name, "an image array")
        else:
            raise row_error(
                TypeError, row,
                "expected an image array (H, W) or (H, W, C), or an image file path, got "
                f"{type(item).__name__}",
                name=self._name,
            )
        if arr.ndim == 2:
            arr = arr[None]
        elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
            arr = np.moveaxis(arr[:, :, :3], 2, 0)
        else:
            raise row_error(
                ValueError, row,
                "expected a 2-D grey image (H, W) or a 3-D colour image (H, W, C) with C in "
                f"(1, 3, 4), channels last; got an array of shape {arr.shape}",
                name=self._name,
            )
        if arr.shape[1] == 0 or arr.shape[2] == 0:
            raise row_error(ValueError, row, f"empty image of shape {arr.shape[1:]}",
                            name=self._name)
        check_finite(arr, row, self._name, "image")
        if is_path(item):
            remember_file(_CONSTANT, item, is_constant(arr))
        return arr

    def _raw_images(self, X: Any, *, drop_blank: bool) -> list:
        """Per-row (C, H, W) images of their own dtype, None when missing.

        ``drop_blank`` (at transform, with ``detect_empty=True``) gives None for constant
        images too, once validated like the others.
        """
        out: list = []
        for i, item in enumerate(self._items(X)):
            img = None if is_missing(item) else self._image(i, item)
            if img is not None and drop_blank and self.detect_empty and is_constant(img):
                self._check_size(i, img, self.size_)  # a blank image is still validated
                img = None
            out.append(img)
        return out

    def _no_signal(self, row: int, item: Any) -> bool:
        if is_path(item):
            constant = recall_file(_CONSTANT, item)  # set when transform read the file
            if constant is not None:
                return bool(constant)
        return is_constant(self._image(row, item))

    def _convert(self, img: np.ndarray, color: str) -> np.ndarray:
        if color == "grey" and img.shape[0] == 3:
            return np.tensordot(_LUMA, img, axes=1)[None]
        if color == "rgb" and img.shape[0] == 1:
            return np.repeat(img, 3, axis=0)
        return img

    def _check_params(self) -> None:
        if self.size is not None:
            _pair(self.size, "size")
        _pair(self.hog_cell, "hog_cell")
        _pair(self.hog_block, "hog_block")
        rng = tuple(self.hist_range)
        if len(rng) != 2 or not all(isinstance(v, Real) for v in rng) or not rng[0] < rng[1]:
            raise ValueError(
                "ImageFeatures: the 'hist_range' parameter must be a pair (low, high) with "
                f"low < high, got {self.hist_range!r}"
            )

    def _prepare(self, images: list, color: str, size: tuple[int, int]) -> np.ndarray:
        """Stack the present images as (n_present, C, H, W) at ``size``."""
        stack = []
        for i, img in enumerate(images):
            if img is None:
                continue
            img = self._convert(img, color)
            self._check_size(i, img, size)
            stack.append(_resize(img, size))
        return np.stack(stack)

    def _check_size(self, row: int, img: np.ndarray, size: tuple[int, int]) -> None:
        """With ``size=None``, every image must have the size seen at fit."""
        if self.size is None and img.shape[1:] != size:
            raise row_error(
                ValueError, row,
                f"image of size {img.shape[1:]} (height, width), but the images seen at fit "
                f"were {size}; set size=(height, width) to resize every image",
                name=self._name,
            )

    # ----------------------------------------------------------------- fit / transform

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> ImageFeatures:
        """Learn the image size, the colour mode and (``"standard"``) channel statistics.

        Parameters
        ----------
        X : column of images or image file paths, or a stacked array of images
            The images; missing rows (None/NaN) are allowed, but not all of them.
        y : None
            Ignored.

        Returns
        -------
        self : ImageFeatures
            The fitted transformer.
        """
        self._check_params()
        raw = self._raw_images(X, drop_blank=False)
        check_not_all_missing(np.array([img is None for img in raw]), self._name)
        if self.normalize is None:
            full_scale = 1.0
        elif self.full_scale == "auto":
            full_scale = _learned_full_scale(raw)
        else:
            full_scale = float(self.full_scale)
        images = [None if img is None else _scale(img, self.normalize, full_scale)
                  for img in raw]
        present = [img for img in images if img is not None]
        if self.color == "auto":
            color = "rgb" if any(img.shape[0] == 3 for img in present) else "grey"
        else:
            color = self.color
        size: tuple[int, ...]  # (height, width)
        if self.size is None:
            sizes: dict[tuple[int, ...], int] = {}
            for i, img in enumerate(images):
                if img is not None:
                    sizes.setdefault(img.shape[1:], i)
            if len(sizes) > 1:
                (s0, i0), (s1, i1) = list(sizes.items())[:2]
                raise ValueError(
                    f"ImageFeatures: with size=None all images must share one size, but row "
                    f"{i0} is {s0} and row {i1} is {s1} (height, width); set size=(height, "
                    "width) to resize them"
                )
            size = next(iter(sizes))
        else:
            size = _pair(self.size, "size")
        if self.output == "hog":
            cell, block = _pair(self.hog_cell, "hog_cell"), _pair(self.hog_block, "hog_block")
            if size[0] // cell[0] < block[0] or size[1] // cell[1] < block[1]:
                raise ValueError(
                    f"ImageFeatures: images of size {size} hold {size[0] // cell[0]}x"
                    f"{size[1] // cell[1]} cells of hog_cell={cell} pixels, fewer than one "
                    f"block of hog_block={block} cells; use smaller cells/blocks or larger size"
                )
        self.full_scale_ = full_scale
        self.color_ = color
        self.n_channels_ = 3 if color == "rgb" else 1
        self.size_ = (int(size[0]), int(size[1]))
        if self.normalize == "standard":
            stack = self._prepare(images, color, self.size_)
            self.mean_ = stack.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
            std = stack.std(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
            self.scale_ = np.where(std > 0, std, np.float32(1.0))
        return self

    def _transform(self, X: Any) -> np.ndarray:
        self._check_params()
        full_scale = getattr(self, "full_scale_", 1.0)  # models fitted before full_scale_
        images = [None if img is None else _scale(img, self.normalize, full_scale)
                  for img in self._raw_images(X, drop_blank=True)]
        missing = np.array([img is None for img in images])
        n = len(images)
        C, (H, W) = self.n_channels_, self.size_
        if self.output in ("pixels", "tensor"):
            out = np.zeros((n, C, H, W), dtype=np.float32)
        else:
            out = np.zeros((n, len(self._feature_names())), dtype=np.float32)
        if missing.all():
            return out.reshape(n, -1) if self.output == "pixels" else out
        stack = self._prepare(images, self.color_, self.size_)
        if self.output in ("pixels", "tensor"):
            if self.normalize == "standard":
                stack = (stack - self.mean_[:, None, None]) / self.scale_[:, None, None]
            out[~missing] = stack
            return out.reshape(n, -1) if self.output == "pixels" else out
        if self.output == "hog":
            out[~missing] = hog(
                stack, self.hog_orientations, _pair(self.hog_cell, "hog_cell"),
                _pair(self.hog_block, "hog_block"),
            )
            return out
        lo, hi = (float(v) for v in self.hist_range)
        idx = np.clip(((stack - lo) * (self.bins / (hi - lo))).astype(np.int64), 0, self.bins - 1)
        rows = len(stack) * C  # one histogram per (image, channel)
        flat = idx.reshape(rows, -1) + (np.arange(rows) * self.bins)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * self.bins)
        out[~missing] = (counts / idx[0, 0].size).reshape(len(stack), C * self.bins)
        return out

    def _feature_names(self) -> list[str]:
        C, (H, W) = self.n_channels_, self.size_
        if self.output in ("pixels", "tensor"):
            return [f"px_{c}_{y}_{x}" for c in range(C) for y in range(H) for x in range(W)]
        if self.output == "histogram":
            return [f"hist_{c}_{b}" for c in range(C) for b in range(self.bins)]
        (ch, cw), (by, bx) = _pair(self.hog_cell, "hog_cell"), _pair(self.hog_block, "hog_block")
        nby, nbx = H // ch - by + 1, W // cw - bx + 1
        return [
            f"hog_{i}_{j}_{u}_{v}_{o}"
            for i in range(nby) for j in range(nbx) for u in range(by) for v in range(bx)
            for o in range(self.hog_orientations)
        ]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # 2-D numeric input: flattened square grey images (n, H*H).
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        return tags
