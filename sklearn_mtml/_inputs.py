"""Turning user inputs (arrays, DataFrames, dicts of blocks, ``ModalityBlocks``) into blocks.

The network consumes a dict of float32 blocks ``{name: (n, *shape)}`` (int64 for blocks of
token ids) plus a boolean
``(n, M)`` presence mask. :class:`InputLayout` remembers at fit what the blocks were, so that
``predict`` can check it receives the same layout (the user never states it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import scipy.sparse as sp
from skorch.dataset import Dataset as SkorchDataset

from .blocks import check_token_block

__all__ = [
    "InputLayout",
    "RowSubset",
    "check_array_input",
    "check_numeric_frame",
    "convert_blocks",
    "declared_vocab_sizes",
    "is_block_input",
    "prefix_groups",
    "split_blocks",
]

#: Name of the single block made from a plain 2-D ``X``.
SINGLE_BLOCK = "X"


def is_block_input(X: object) -> bool:
    """Whether ``X`` holds several blocks: a mapping, or a ``ModalityBlocks``-like container."""
    if sp.issparse(X):  # a DOK matrix is a Mapping, but one block
        return False
    return isinstance(X, Mapping) or (hasattr(X, "blocks") and hasattr(X, "masks"))


def prefix_groups(feature_names: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """Group ``"modality__feature"`` column names by modality.

    Returns ``{modality: column indices}`` when every name has a ``"__"`` prefix and there are
    at least two modalities, else ``None`` (the columns form one block).
    """
    if feature_names is None or len(feature_names) == 0:
        return None
    prefixes = [str(n).split("__", 1)[0] if "__" in str(n) else None for n in feature_names]
    if any(p is None for p in prefixes) or len(set(prefixes)) < 2:
        return None
    order = [p for p in dict.fromkeys(prefixes) if p is not None]  # none is (checked above)
    arr = np.asarray(prefixes)
    return {p: np.flatnonzero(arr == p) for p in order}


def split_blocks(X: Any) -> tuple[dict[str, object], dict[str, np.ndarray] | None]:
    """Return ``(blocks, masks)`` of a block input: a dict or ``ModalityBlocks``.

    ``masks`` is ``None`` for a plain dict.
    """
    if isinstance(X, Mapping):
        return dict(X), None
    return dict(X.blocks), {k: np.asarray(v, dtype=bool) for k, v in X.masks.items()}


def _as_float_block(name: str, value: Any) -> np.ndarray:
    if sp.issparse(value):
        value = value.toarray()
    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Block {name!r} is not numeric ({exc}); encode it with a feature transformer "
            "(e.g. ModalityFusion) first."
        ) from exc
    if arr.ndim < 2:
        raise ValueError(
            f"Block {name!r} has shape {arr.shape}; expected 2-D (n, d), 3-D (n, T, F) or 4-D "
            "(n, C, H, W) with one row per sample."
        )
    return arr


@dataclass
class InputLayout:
    """The block layout learned at fit.

    Attributes
    ----------
    names : list of str
        Block names, in order.
    shapes : dict of str to tuple
        Per-row shape of each block.
    groups : dict of str to ndarray, or None
        For a 2-D input whose columns are named ``"modality__feature"``: the column indices
        of each modality's block.
    vocab_sizes : dict of str to int
        Vocabulary size of each block of token ids.
    """

    names: list[str]
    shapes: dict[str, tuple[int, ...]]
    groups: dict[str, np.ndarray] | None = None
    vocab_sizes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_blocks(cls, blocks: Mapping[str, np.ndarray],
                    groups: dict[str, np.ndarray] | None = None,
                    vocab_sizes: Mapping[str, int | None] | None = None) -> InputLayout:
        """Record the layout of converted blocks.

        ``vocab_sizes`` names the token-id blocks, with their vocabulary size (``None``: the
        largest id seen plus one).
        """
        vocab = {name: check_token_block(name, blocks[name], size)
                 for name, size in (vocab_sizes or {}).items()}
        return cls(list(blocks), {k: tuple(v.shape[1:]) for k, v in blocks.items()}, groups,
                   vocab)

    def check(self, blocks: Mapping[str, np.ndarray]) -> None:
        """Raise a clear error when ``blocks`` differ from the fitted layout."""
        self.check_shapes({k: tuple(v.shape[1:]) for k, v in blocks.items()})
        for name, size in self.vocab_sizes.items():
            check_token_block(name, blocks[name], size)


    def check_shapes(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Raise a clear error unless ``shapes`` (per-row shape of each block) are the fitted ones.

        The one rule for every estimator that takes blocks: every fitted block must be
        passed (absent rows are marked in the mask, not dropped), no other block, each with
        its fitted per-row shape.
        """
        missing = [n for n in self.names if n not in shapes]
        if missing:
            raise ValueError(
                f"Blocks {missing} were present at fit but are missing now; pass every block "
                f"of {self.names} (mark absent rows with the mask instead)."
            )
        extra = [n for n in shapes if n not in self.shapes]
        if extra:
            raise ValueError(f"Blocks {extra} were not seen at fit; expected {self.names}.")
        for name in self.names:
            if tuple(shapes[name]) != self.shapes[name]:
                raise ValueError(
                    f"Block {name!r} has per-row shape {tuple(shapes[name])}, but the model "
                    f"was fitted on {self.shapes[name]}."
                )


def declared_vocab_sizes(X: object) -> dict[str, int]:
    """Token-id blocks a ``ModalityBlocks`` input declares (``vocab_sizes``), else none."""
    return dict(getattr(X, "vocab_sizes", None) or {})


def _as_token_block(name: str, value: object) -> np.ndarray:
    check_token_block(name, value)
    return np.asarray(value, dtype=np.int64)


def _row_finiteness(arr: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether all values are finite, and whether all are NaN.

    Computed in chunks of rows, so that a large (memory-mapped) block is never copied whole.
    """
    n = arr.shape[0]
    finite = np.empty(n, dtype=bool)
    all_nan = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        part = np.asarray(arr[start:start + chunk]).reshape(min(chunk, n - start), -1)
        finite[start:start + chunk] = np.isfinite(part).all(axis=1)
        if arr.dtype.kind == "f":
            all_nan[start:start + chunk] = np.isnan(part).all(axis=1)
    return finite, all_nan


def convert_blocks(X: object, tokens: Collection[str] = ()
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Convert a block input to float32 blocks and an ``(n, M)`` presence mask.

    Blocks named in ``tokens`` hold token ids and become int64 instead. In a plain dict, a
    row whose block is entirely NaN is an absent modality (filled with zeros, mask
    ``False``); any other non-finite value is an error naming the block.
    """
    raw, masks = split_blocks(X)
    if not raw:
        raise ValueError("X holds no block; expected at least one.")
    blocks = {str(k): (_as_token_block if str(k) in tokens else _as_float_block)(str(k), v)
              for k, v in raw.items()}
    lengths = {k: v.shape[0] for k, v in blocks.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Blocks have different numbers of rows: {lengths}.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError("X has 0 samples; at least one sample is required.")
    present = np.ones((n, len(blocks)), dtype=bool)
    for j, (name, arr) in enumerate(blocks.items()):
        finite, all_nan = _row_finiteness(arr)
        if masks is not None and name in masks:
            present[:, j] = masks[name]
            if masks[name].shape != (n,):
                raise ValueError(f"Mask of block {name!r} has shape {masks[name].shape}; "
                                 f"expected ({n},).")
        else:
            present[:, j] = ~all_nan
        bad = ~finite & present[:, j]
        if bad.any():
            raise ValueError(
                f"Block {name!r} contains NaN or inf in present rows (first: row "
                f"{int(np.flatnonzero(bad)[0])}); a row is absent only when it is all NaN."
            )
        if (~present[:, j]).any():
            arr = arr.copy()  # never write into the caller's array
            arr[~present[:, j]] = 0
            blocks[name] = arr
    return blocks, present


_AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def _looks_like_text(values: list[Any]) -> bool:
    """Whether string cells read as free text (several words on average), not categories."""
    words = [len(v.split()) for v in values if isinstance(v, str)]
    return bool(words) and sum(words) / len(words) >= 3


def _reads_as_categories(item: Any, values: list[Any]) -> bool:
    """Whether string cells are categories or identifiers (not file paths, not free text)."""
    return (isinstance(item, str) and not item.lower().endswith(_AUDIO_SUFFIXES
                                                                 + _IMAGE_SUFFIXES)
            and not _looks_like_text(values))


def _advice_for(name: str, item: Any, values: list[Any] | None = None) -> str:
    """How to encode a column whose first present cell is ``item`` (``values``: a sample)."""
    if isinstance(item, str):
        lower = item.lower()
        if lower.endswith(_AUDIO_SUFFIXES):
            return f"{name!r} holds audio file paths: encode it with AudioFeatures"
        if lower.endswith(_IMAGE_SUFFIXES):
            return f"{name!r} holds image file paths: encode it with ImageFeatures"
        if _looks_like_text(values if values is not None else [item]):
            return (f"{name!r} holds strings (e.g. {item[:30]!r}) that read as free text: "
                    "encode it with TextFeatures (categories or identifiers: "
                    "CategoricalFeatures)")
        return (f"{name!r} holds strings (e.g. {item[:30]!r}): encode categories or "
                "identifiers with CategoricalFeatures, free text with TextFeatures")
    if hasattr(item, "shape") or isinstance(item, (list, tuple)):
        ndim = np.ndim(item)
        what = "a waveform (AudioFeatures)" if ndim == 1 else "an image (ImageFeatures)"
        return f"{name!r} holds an array per row, e.g. {what}"
    return f"{name!r} holds {type(item).__name__} values: encode it as numbers"


def check_numeric_frame(X: object) -> None:
    """Fail clearly when a data frame passed to the network has non-numeric columns.

    Each such column is named with the transformer that encodes it (``CategoricalFeatures``,
    ``TextFeatures``, ``ImageFeatures``, ``AudioFeatures``) and the ``ModalityFusion`` route;
    categorical columns get a ready-made ``ModalityFusion`` specification.
    Any data frame narwhals supports (pandas, polars, ...) is checked; other inputs pass.

    Parameters
    ----------
    X : object
        The network's input.

    Raises
    ------
    ValueError
        Naming every non-numeric column and how to encode it.
    """
    if not nw.dependencies.is_into_dataframe(X):
        return
    frame = nw.from_native(X, eager_only=True)
    advice, categorical = [], []
    for name, dtype in frame.schema.items():
        if dtype.is_numeric() or dtype == nw.Boolean:
            continue
        if dtype == nw.Categorical or dtype == nw.Enum:
            advice.append(f"{name!r} is categorical: encode it with CategoricalFeatures")
            categorical.append(name)
            continue
        present = frame[name].drop_nulls()
        if len(present):
            sample = present.head(200).to_list()
            advice.append(_advice_for(str(name), present.item(0), sample))
            if _reads_as_categories(present.item(0), sample):
                categorical.append(name)
    if advice:
        example = ""
        if categorical:  # one token-id block for all of them
            example = (f"; categorical columns: ModalityFusion([('categorical', "
                       f"CategoricalFeatures(), {_short(categorical)}), ...])")
        raise ValueError(
            "MultiTaskNet needs numeric inputs, but " + "; ".join(advice) + ". Put the "
            "encoders in a ModalityFusion([(name, transformer, columns), ...]) before the "
            f"network (numeric columns: 'passthrough'){example}."
        )


def _short(names: list[Any], limit: int = 6) -> str:
    """A list of column names for a message, cut after ``limit`` names."""
    shown = repr(list(names[:limit]))
    return shown if len(names) <= limit else shown[:-1] + ", ...]"


def check_array_input(X: object) -> None:
    """Fail clearly on the common non-frame first mistakes: texts, paths, too many axes.

    Parameters
    ----------
    X : object
        The network's input, when it is neither a data frame nor a block input.

    Raises
    ------
    ValueError
        For strings (texts, categories or file paths), 1-D input or more than 4 axes,
        saying which transformer or input form to use.
    """
    if sp.issparse(X) or nw.dependencies.is_into_dataframe(X):
        return
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        arr = X
    else:
        try:
            arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
        except ValueError:  # ragged nested lists
            raise ValueError(
                "X is a ragged nested sequence; MultiTaskNet reads a 2-D (n, d) array, 3-D "
                "(n, T, F) sequences or 4-D (n, C, H, W) images, or a dict / ModalityBlocks "
                "of such blocks (variable-length items: AudioFeatures, TextFeatures)."
            ) from None
    if arr.dtype.kind in "OUS" and arr.size:
        first = next((v for v in arr.ravel() if v is not None), None)
        if isinstance(first, str):
            advice = _advice_for("X", first).replace("'X' holds", "X holds", 1)
            raise ValueError(
                f"MultiTaskNet needs numeric inputs, but {advice}. Put the encoders in a "
                "ModalityFusion([(name, transformer, columns), ...]) before the network, or "
                "use them in a Pipeline."
            )
    if arr.ndim == 1 and arr.dtype.kind == "O" and arr.size and (
            hasattr(arr[0], "shape") or isinstance(arr[0], (list, tuple))):
        advice = _advice_for("X", arr[0]).replace("'X' holds", "X holds", 1)
        raise ValueError(
            f"MultiTaskNet needs a 2-D array or blocks, but {advice}. Encode such items "
            "with that transformer in a ModalityFusion, or stack equal-shaped items into one "
            "3-D / 4-D array."
        )
    if arr.ndim == 1:
        raise ValueError(
            f"X is 1-D (shape {arr.shape}); MultiTaskNet expects one row per sample. "
            "Reshape your data with X.reshape(-1, 1) for a single feature (texts: "
            "TextFeatures; one audio or image file path per row: AudioFeatures / "
            "ImageFeatures)."
        )
    if arr.ndim > 4:
        raise ValueError(
            f"X has {arr.ndim} axes (shape {arr.shape}); MultiTaskNet reads 2-D (n, d) "
            "features, 3-D (n, T, F) sequences or 4-D (n, C, H, W) images, or a dict / "
            "ModalityBlocks of such blocks."
        )


class RowSubset(SkorchDataset):
    """The rows a fit trains or validates on, as skorch callbacks receive them.

    skorch hands ``dataset_train`` and ``dataset_valid`` to every callback; ``EpochScoring``
    and ``ProgressBar`` read their length and their ``X`` and ``y`` (skorch's
    ``data_from_dataset`` convention). ``X`` and ``y`` are the user's own input and targets
    (a DataFrame, a dict of blocks, ``ModalityBlocks``, ...) restricted to the rows, sliced on
    first access, so a scorer can call ``net.predict(X)`` on them.

    Parameters
    ----------
    X : object
        The input given to ``fit``.
    y : object
        The targets given to ``fit``.
    rows : ndarray of int
        Row indices.
    """

    def __init__(self, X: object, y: object, rows: np.ndarray):  # noqa: D107
        # skorch's Dataset converts X and y eagerly; this one slices the user's data lazily
        self._X, self._y, self.rows = X, y, np.asarray(rows)
        self._cache: dict[str, object] = {}

    def _take(self, key: str, data: object) -> object:
        if key not in self._cache:
            from ._compat import _safe_indexing

            if isinstance(data, Mapping):
                self._cache[key] = {k: _safe_indexing(v, self.rows) for k, v in data.items()}
            else:
                self._cache[key] = None if data is None else _safe_indexing(data, self.rows)
        return self._cache[key]

    @property
    def X(self) -> object:  # noqa: N802 (skorch's attribute name)
        """The input rows."""
        return self._take("X", self._X)

    @property
    def y(self) -> object:
        """The target rows."""
        return self._take("y", self._y)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[object, object]:
        raise TypeError("RowSubset is read through its X and y attributes (the fit slices "
                        "device tensors itself), not item by item.")
