"""``ModalityBlocks``: per-modality blocks plus a row presence mask, sliceable by rows.

A :class:`ModalityBlocks` is what :class:`~sklearn_mtml.ModalityFusion` returns with
``output="blocks"`` and what :class:`~sklearn_mtml.MultiTaskNet` and the late-fusion
estimators read. It behaves like a 2-D array of shape ``(n_samples, n_blocks)`` for
scikit-learn's row utilities (``_num_samples``, ``_safe_indexing``, ``indexable``), so
``cross_val_score``, ``GridSearchCV`` and ``train_test_split`` slice it by rows without a
``Pipeline``.

How scikit-learn (1.6 to 1.9) slices it: ``_safe_indexing(X, rows)`` finds no ``iloc`` and
no data-frame protocol but a ``shape``, so it calls ``_array_indexing``, which evaluates
``X[rows, ...]`` (a tuple key with an ``Ellipsis``) after turning a tuple key into a list;
boolean keys arrive as boolean arrays, integer keys as arrays or lists, and slices as they
are. :meth:`ModalityBlocks.__getitem__` accepts all of these.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["CategoryVocabulary", "ModalityBlocks", "check_token_block", "flat_feature_names"]


def flat_feature_names(names: Any, row_shape: tuple[int, ...]) -> np.ndarray:
    """Names of the flattened features of a block, following ``block.reshape(n, -1)``.

    Parameters
    ----------
    names : array-like of str or None
        Names given for the block: one per flattened feature, one per feature of the last
        axis (e.g. the frame features of a ``(n, T, F)`` sequence, which become
        ``"{name}_t{t}"``), or None for generic names ``"x0"``, ``"x1"``, ...
    row_shape : tuple of int
        Shape of one row of the block (``block.shape[1:]``).

    Returns
    -------
    ndarray of str objects
        ``prod(row_shape)`` names.
    """
    size = int(np.prod(row_shape, dtype=np.int64))
    if names is not None:
        names = [str(n) for n in np.asarray(names, dtype=object).ravel()]
        if len(names) == size:
            return np.asarray(names, dtype=object)
        if len(row_shape) > 1 and len(names) == row_shape[-1]:
            lead = row_shape[:-1]
            letters = "t" if len(lead) == 1 else "ijklmn"
            out: list[str] = []
            for idx in np.ndindex(*lead):
                suffix = "_".join(f"{letters[k] if len(lead) > 1 else 't'}{i}"
                                  for k, i in enumerate(idx))
                out.extend(f"{n}_{suffix}" for n in names)
            return np.asarray(out, dtype=object)
    return np.asarray([f"x{i}" for i in range(size)], dtype=object)


def _as_block(name: str, value: Any) -> np.ndarray | sp.spmatrix:
    if sp.issparse(value):
        if value.ndim != 2:
            raise ValueError(f"Block {name!r}: sparse blocks must be 2-D, got {value.shape}.")
        return value.tocsr()
    if hasattr(value, "to_numpy"):  # pandas / polars frames and series
        value = value.to_numpy()
    arr = np.asarray(value)
    if arr.ndim < 2:
        raise ValueError(
            f"Block {name!r} has shape {arr.shape}; expected one row per sample: 2-D (n, d), "
            "3-D (n, T, F) or 4-D (n, C, H, W) (reshape a 1-D column with .reshape(-1, 1))."
        )
    return arr


def select_rows(key: Any, n: int, owner: str, also: str = "") -> slice | np.ndarray:
    """The rows ``key`` selects among ``n``: a slice, or an array of int positions.

    Parameters
    ----------
    key : int, slice, array-like of int or bool
        The selection (negative positions count from the end).
    n : int
        Number of rows.
    owner : str
        The container's name, for messages.
    also : str, default=""
        Other selections the container accepts, for messages.

    Returns
    -------
    slice or ndarray of intp
        ``key`` itself when it is a slice, else the selected positions.

    Raises
    ------
    IndexError
        A position out of range, a boolean mask of another length, or a key of another type.
    """
    if isinstance(key, slice):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        if not -n <= int(key) < n:
            raise IndexError(f"Row {int(key)} is out of range for {n} rows.")
        return np.array([int(key)])
    idx = np.asarray(key)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise IndexError(f"Boolean row mask has shape {idx.shape}; expected ({n},).")
        return np.flatnonzero(idx)
    if idx.size == 0:
        return np.zeros(0, dtype=np.intp)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise IndexError(
            f"{owner} selects rows with an integer array, a boolean mask, a slice or an int"
            f"{' ' + also if also else ''}; got {type(key).__name__} of dtype {idx.dtype}."
        )
    if idx.max() >= n or idx.min() < -n:
        raise IndexError(f"Row indices out of range for {n} rows.")
    return idx.astype(np.intp, copy=False)


class CategoryVocabulary(int):
    """The vocabulary size of a block of categorical ids: an ``int`` that says what the ids are.

    :class:`~sklearn_mtml.features.CategoricalFeatures` reports its ``vocabulary_size_`` as
    one. Declared in ``ModalityBlocks(vocab_sizes=...)`` (which ``ModalityFusion`` does), it
    tells :class:`~sklearn_mtml.MultiTaskNet` that each position of a row is one categorical
    column with its own range of ids, not a token of a text, so the default
    :class:`~sklearn_mtml.nn.encoders.TokenEncoder` of the block uses the settings of
    :data:`~sklearn_mtml.nn.encoders.CATEGORICAL_TOKEN_PARAMS` (the sum of the columns'
    embeddings, initialised like a linear layer over one-hot columns, no dropout) instead of
    those tuned for texts. In every other respect it is the plain ``int``.

    Examples
    --------
    >>> size = CategoryVocabulary(12)
    >>> size + 1, isinstance(size, int)
    (13, True)
    """

    def __reduce__(self) -> tuple:
        return CategoryVocabulary, (int(self),)


def check_token_block(name: str, block: Any, vocab_size: Any = None) -> int:
    """Check a block of token ids and return its vocabulary size.

    Parameters
    ----------
    name : str
        Block name, for messages.
    block : array-like
        Token ids ``(n, L)``: non-negative integers, 0 is padding.
    vocab_size : int or None, default=None
        Number of ids (every id must be below it); ``None``: the largest id plus one.

    Returns
    -------
    int
        The vocabulary size.

    Raises
    ------
    ValueError
        When the block is not a dense 2-D array of integers in ``[0, vocab_size)``.
    """
    if sp.issparse(block) or np.ndim(block) != 2:
        raise ValueError(f"Token block {name!r} must be a dense 2-D array of token ids (n, L), "
                         f"got {type(block).__name__} of shape {getattr(block, 'shape', None)}.")
    arr = np.asarray(block)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"Token block {name!r} must hold integer token ids, got dtype "
                         f"{arr.dtype}; use TextFeatures(output='sequence').")
    low = int(arr.min()) if arr.size else 0
    high = int(arr.max()) if arr.size else 0
    if vocab_size is None:
        vocab_size = high + 1
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) \
            or vocab_size < 2:
        raise ValueError(f"Vocabulary size of token block {name!r} must be an int >= 2, got "
                         f"{vocab_size!r}.")
    if low < 0 or high >= vocab_size:
        raise ValueError(f"Token block {name!r} has ids in [{low}, {high}], outside the "
                         f"vocabulary [0, {int(vocab_size)}); unknown tokens must be mapped "
                         "to an id of the vocabulary (TextFeatures uses 1).")
    if isinstance(vocab_size, CategoryVocabulary):  # keeps saying what the ids are
        return vocab_size
    return int(vocab_size)


def _row_shape(block: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in block.shape[1:])


class ModalityBlocks:
    """Per-modality blocks with a row presence mask, sliceable by rows like an array.

    A data container (not an estimator): scikit-learn sees an object of shape
    ``(n_samples, n_blocks)`` whose rows can be selected, so model selection tools
    (``cross_val_score``, ``GridSearchCV``, ``train_test_split``) split it by rows and hand
    each fold a smaller ``ModalityBlocks``.

    Parameters
    ----------
    blocks : mapping of str to array-like
        One block per modality, each with ``n_samples`` rows: 2-D ``(n, d)`` features (dense
        or scipy sparse; sparse blocks are stored as CSR), 3-D ``(n, T, F)`` sequences or 4-D
        ``(n, C, H, W)`` images. Data frames are converted to arrays. Arrays are stored
        without a copy.
    masks : mapping of str to array-like of bool, or None, default=None
        Presence mask of each block, shape ``(n_samples,)``, ``True`` where the row has the
        modality. Blocks without a mask are present in every row.
    feature_names : mapping of str to array-like of str, or None, default=None
        Feature names of each block (one per flattened feature, or one per feature of the
        last axis of a 3-D/4-D block); see :func:`flat_feature_names`.
    vocab_sizes : mapping of str to int, or None, default=None
        Blocks of token ids (2-D integer ``(n, L)``: ids in ``[0, size)``, 0 is padding),
        with their vocabulary size, e.g. from
        :class:`~sklearn_mtml.TextFeatures` ``(output="sequence")``. A network gives such
        blocks an embedding encoder instead of reading the ids as numbers.

    Attributes
    ----------
    blocks : dict of str to ndarray or sparse matrix
        The blocks, in order.
    masks : dict of str to ndarray of bool
        Presence mask of every block (one entry per block).
    feature_names : dict of str to ndarray, or None
        Feature names per block, when given.
    vocab_sizes : dict of str to int
        Vocabulary size of each token-id block (empty when there is none).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml.blocks import ModalityBlocks
    >>> Xb = ModalityBlocks(
    ...     {"audio": np.ones((4, 3, 2)), "tab": np.arange(8.0).reshape(4, 2)},
    ...     masks={"audio": [True, False, True, True]},
    ... )
    >>> Xb.shape, len(Xb), Xb.names
    ((4, 2), 4, ['audio', 'tab'])
    >>> Xb[[0, 1]].masks["audio"]
    array([ True, False])
    >>> Xb.concat().shape
    (4, 8)
    """

    blocks: dict[str, Any]  # ndarray or sparse matrix
    masks: dict[str, np.ndarray]
    feature_names: dict[str, np.ndarray] | None
    vocab_sizes: dict[str, int]

    def __init__(
        self,
        blocks: Mapping[str, Any],
        masks: Mapping[str, Any] | None = None,
        feature_names: Mapping[str, Any] | None = None,
        vocab_sizes: Mapping[str, int] | None = None,
    ):
        if isinstance(blocks, ModalityBlocks):  # a copy keeps what was not given anew
            masks = blocks.masks if masks is None else masks
            feature_names = blocks.feature_names if feature_names is None else feature_names
            vocab_sizes = blocks.vocab_sizes if vocab_sizes is None else vocab_sizes
            blocks = blocks.blocks
        if not isinstance(blocks, Mapping):
            raise TypeError(
                f"blocks must be a mapping of modality name to array, got "
                f"{type(blocks).__name__}."
            )
        if not blocks:
            raise ValueError("ModalityBlocks needs at least one block; got an empty mapping.")
        self.blocks = {}
        for name, value in blocks.items():
            if not isinstance(name, str):
                raise TypeError(f"Block names must be strings, got {name!r}.")
            self.blocks[name] = _as_block(name, value)
        rows = {k: int(v.shape[0]) for k, v in self.blocks.items()}
        if len(set(rows.values())) > 1:
            first = next(iter(rows))
            bad = next(k for k, r in rows.items() if r != rows[first])
            raise ValueError(
                f"Block {bad!r} has {rows[bad]} rows but block {first!r} has {rows[first]}; "
                f"every block needs one row per sample (rows per block: {rows})."
            )
        n = rows[next(iter(rows))]
        masks = dict(masks or {})
        unknown = [k for k in masks if k not in self.blocks]
        if unknown:
            raise ValueError(f"Masks {unknown} name no block; blocks are {list(self.blocks)}.")
        self.masks = {}
        for name in self.blocks:
            if name not in masks or masks[name] is None:
                self.masks[name] = np.ones(n, dtype=bool)
                continue
            mask = np.asarray(masks[name])
            if mask.shape != (n,):
                raise ValueError(
                    f"Mask of block {name!r} has shape {mask.shape}; expected ({n},), one "
                    "entry per row."
                )
            if mask.dtype != bool:
                if mask.dtype.kind not in "biu" or not np.isin(mask, (0, 1)).all():
                    raise ValueError(
                        f"Mask of block {name!r} must be boolean (True = present), got "
                        f"dtype {mask.dtype}."
                    )
                mask = mask.astype(bool)
            self.masks[name] = mask
        if feature_names is None:
            self.feature_names = None
        else:
            unknown = [k for k in feature_names if k not in self.blocks]
            if unknown:
                raise ValueError(
                    f"feature_names {unknown} name no block; blocks are {list(self.blocks)}."
                )
            self.feature_names = {}
            for name, names in feature_names.items():
                if names is None:
                    continue
                names = np.asarray(names, dtype=object).ravel()
                shape = _row_shape(self.blocks[name])
                if len(names) not in (int(np.prod(shape)), shape[-1]):
                    raise ValueError(
                        f"Block {name!r} has per-row shape {shape} but {len(names)} feature "
                        f"names; expected {int(np.prod(shape))} (flattened) or {shape[-1]}."
                    )
                self.feature_names[name] = names
        self.vocab_sizes = {}
        for name, size in dict(vocab_sizes or {}).items():
            if name not in self.blocks:
                raise ValueError(
                    f"vocab_sizes names no block {name!r}; blocks are {list(self.blocks)}."
                )
            self.vocab_sizes[name] = check_token_block(name, self.blocks[name], size)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_dict(cls, blocks: Mapping[str, Any]) -> ModalityBlocks:
        """Build from a dict of arrays whose entirely-NaN rows mark absent modalities.

        This is the convention of a plain dict input of :class:`~sklearn_mtml.MultiTaskNet`.
        Absent rows are set to 0 in the stored blocks (copied, the input is not modified).

        Parameters
        ----------
        blocks : mapping of str to array-like
            Dense blocks; a row that is NaN everywhere is absent.

        Returns
        -------
        ModalityBlocks
        """
        out, masks = {}, {}
        for name, value in blocks.items():
            block = _as_block(name, value)
            if sp.issparse(block) or block.dtype.kind not in "fc":
                out[name] = block
                continue
            absent = np.isnan(block.reshape(len(block), -1)).all(axis=1)
            if absent.any():
                block = block.copy()
                block[absent] = 0
            out[name], masks[name] = block, ~absent
        return cls(out, masks)

    # ------------------------------------------------------------------ array-like protocol
    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(next(iter(self.blocks.values())).shape[0])

    @property
    def names(self) -> list[str]:
        """Block names, in order."""
        return list(self.blocks)

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        return len(self.blocks)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_samples, n_blocks)``: what scikit-learn's row utilities read."""
        return (self.n_samples, self.n_blocks)

    @property
    def ndim(self) -> int:
        """Always 2 (rows by blocks)."""
        return 2

    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self) -> Iterator:
        # Without __iter__ Python would iterate by calling __getitem__(0), (1), ... and
        # every caller would silently get one-row containers; say what to do instead.
        raise TypeError(
            "ModalityBlocks is not iterable; use .names, .blocks.items() or .masks, or "
            "index rows with blocks[rows]."
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "ModalityBlocks holds several blocks and does not convert implicitly to one "
            "array; use .concat() for a 2-D feature matrix, or an estimator that reads blocks "
            "(MultiTaskNet, LateFusionClassifier, LateFusionRegressor)."
        )

    def _rows(self, key: Any) -> slice | np.ndarray:
        return select_rows(key, self.n_samples, "ModalityBlocks",
                           "(or a block with its name)")

    def __getitem__(self, key: Any) -> Any:
        """Select rows (a new ``ModalityBlocks``), or a block by its name.

        Parameters
        ----------
        key : int, slice, array-like of int or bool, tuple (rows, ...) or str
            Rows to keep (an int keeps one row as a 1-row container); ``X[rows, ...]``
            as scikit-learn writes it; a block name returns that block's array.

        Returns
        -------
        ModalityBlocks or ndarray
        """
        if isinstance(key, str):
            try:
                return self.blocks[key]
            except KeyError:
                raise KeyError(f"No block {key!r}; blocks are {self.names}.") from None
        if isinstance(key, tuple):
            rest = key[1:]
            if not all(k is Ellipsis or k == slice(None) for k in rest):
                raise IndexError(
                    "ModalityBlocks selects rows only: index as X[rows] or X[rows, ...]."
                )
            key = key[0]
        rows = self._rows(key)
        return ModalityBlocks(
            {k: v[rows] for k, v in self.blocks.items()},
            {k: v[rows] for k, v in self.masks.items()},
            self.feature_names,
            self.vocab_sizes,
        )

    def __repr__(self) -> str:
        parts = []
        for name, block in self.blocks.items():
            kind = "sparse " if sp.issparse(block) else ""
            if name in self.vocab_sizes:
                kind = f"tokens (vocabulary {self.vocab_sizes[name]}) "
            missing = int((~self.masks[name]).sum())
            extra = f", {missing} absent" if missing else ""
            parts.append(f"{name!r}: {kind}{_row_shape(block)}{extra}")
        return f"ModalityBlocks(n_samples={self.n_samples}, {{{', '.join(parts)}}})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModalityBlocks):
            return NotImplemented
        if self.names != other.names or self.vocab_sizes != other.vocab_sizes:
            return False
        for name in self.names:
            a, b = self.blocks[name], other.blocks[name]
            if sp.issparse(a) != sp.issparse(b) or a.shape != b.shape:
                return False
            if sp.issparse(a):
                a, b = a.toarray(), b.toarray()
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return False
            if not np.array_equal(self.masks[name], other.masks[name]):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable container: unhashable

    # ------------------------------------------------------------------ conversions
    @property
    def presence(self) -> np.ndarray:
        """Presence of every block as one ``(n_samples, n_blocks)`` boolean array."""
        return np.column_stack([self.masks[k] for k in self.blocks])

    def to_dict(self, absent: float | None = None) -> dict[str, Any]:
        """Return the blocks as a dict ``{name: array}``.

        Parameters
        ----------
        absent : float or None, default=None
            None returns the stored blocks (no copy). A value (e.g. ``np.nan``) returns
            float copies whose absent rows are filled with it: with ``np.nan`` this is the
            plain-dict convention of :class:`~sklearn_mtml.MultiTaskNet` (an all-NaN row is
            an absent modality). Sparse blocks are densified when a row must be filled.

        Returns
        -------
        dict of str to ndarray or sparse matrix
        """
        if absent is None:
            return dict(self.blocks)
        out = {}
        for name, block in self.blocks.items():
            mask = self.masks[name]
            if mask.all():
                out[name] = block
                continue
            block = block.toarray() if sp.issparse(block) else block
            block = np.array(block, dtype=np.result_type(block.dtype, np.float32))
            block[~mask] = absent
            out[name] = block
        return out

    def concat_feature_names(self) -> np.ndarray:
        """Flattened feature names of :meth:`concat`, ``"{block}__{feature}"``.

        Returns
        -------
        ndarray of str objects
        """
        names: list[str] = []
        for name, block in self.blocks.items():
            given = (self.feature_names or {}).get(name)
            names.extend(f"{name}__{f}" for f in flat_feature_names(given, _row_shape(block)))
        return np.asarray(names, dtype=object)

    def concat(self, *, dtype: Any = np.float32, sparse: bool | str = "auto",
               absent: float = 0.0, as_frame: bool = False) -> Any:
        """Concatenate every block into one 2-D matrix (3-D/4-D blocks flattened).

        Parameters
        ----------
        dtype : numpy dtype, default=np.float32
            Dtype of the result.
        sparse : bool or "auto", default="auto"
            ``"auto"``: a CSR matrix when any block is sparse, else dense.
        absent : float, default=0.0
            Value of the features of absent rows (e.g. ``np.nan`` for estimators that
            handle missing values, such as ``HistGradientBoostingClassifier``). A non-zero
            value gives a dense result.
        as_frame : bool, default=False
            Return a pandas DataFrame whose columns are :meth:`concat_feature_names`
            (always dense).

        Returns
        -------
        ndarray, sparse matrix or DataFrame of shape (n_samples, n_features)
        """
        n = self.n_samples
        any_sparse = any(sp.issparse(b) for b in self.blocks.values())
        want_sparse = any_sparse if sparse == "auto" else bool(sparse)
        if as_frame or absent != 0:  # NaN != 0 too
            want_sparse = False
        parts = []
        for name, block in self.blocks.items():
            mask = self.masks[name]
            if sp.issparse(block):
                part = block.astype(dtype)
                if not mask.all():
                    part = sp.csr_matrix(sp.diags(mask.astype(dtype)) @ part)
                if not want_sparse:
                    part = part.toarray()
            else:
                part = np.asarray(block).reshape(n, -1).astype(dtype)  # a copy
                if not mask.all():
                    part[~mask] = 0
                if want_sparse:
                    part = sp.csr_matrix(part)
            if not want_sparse and absent != 0 and not mask.all():
                part[~mask] = absent
            parts.append(part)
        if want_sparse:
            out = sp.hstack(parts, format="csr")
        else:
            out = np.hstack(parts) if len(parts) > 1 else parts[0]
        if as_frame:
            import pandas as pd

            return pd.DataFrame(out, columns=self.concat_feature_names())
        return out
