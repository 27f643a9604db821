"""``ModalityFusion``: one transformer per modality, ColumnTransformer-style, keeping blocks.

Design: :class:`ModalityFusion` *subclasses* :class:`sklearn.compose.ColumnTransformer`.
Everything a ``ColumnTransformer`` does well is inherited unchanged: the
``(name, transformer, columns)`` specification, column selection by name, index, mask or
callable (``make_column_selector``), ``remainder``, ``"drop"``/``"passthrough"``, nested
``get_params``/``set_params`` (``modalityfusion__text__max_features``), fitting in parallel
(``n_jobs``), ``transformer_weights``, ``named_transformers_``, metadata routing, the HTML
repr and feature-name prefixing. ``ColumnTransformer`` hstacks its outputs and rejects
anything but 2-D ones, so three documented-or-narrow hooks are overridden:

* ``_hstack`` (documented in scikit-learn as the hook that lets subclasses control
  stacking) returns the per-transformer outputs unstacked; :meth:`ModalityFusion.transform`
  then builds a :class:`~sklearn_mtml.blocks.ModalityBlocks` (``output="blocks"``) or
  flattens 3-D/4-D blocks and reuses ``ColumnTransformer._hstack`` (``output="concat"``,
  including its ``sparse_threshold`` logic);
* ``_validate_output`` accepts 3-D ``(n, T, F)`` and 4-D ``(n, C, H, W)`` outputs;
* ``_record_output_indices`` counts flattened widths.

Presence masks are computed from the raw input columns of each block (an item column entry
that is None/NaN, or a row where every selected tabular column is NaN), combined with the
"no signal" rule of the block's transformer when it has one (its ``absent_items`` method:
an empty or silent clip, a constant image, a blank text for the transformers of
:mod:`sklearn_mtml.features`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import narwhals.stable.v2 as nw
import numpy as np
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._compat import (
    ADAPTERS_MANAGER,
    StrOptions,
    _check_feature_names_in,
    _check_X,
    _get_output_config,
    _num_samples,
    _safe_indexing,
)
from ._missing import is_missing_value
from .blocks import CategoryVocabulary, ModalityBlocks, flat_feature_names

__all__ = ["ModalityFusion"]


@dataclass
class _Unstacked:
    """Per-transformer outputs handed from ``_hstack`` back to ``transform``."""

    Xs: list
    n_samples: int


def _vocab_sizes(specs: Any) -> dict[str, int]:
    """Vocabulary size of each block whose transformer emits token ids (``vocabulary_size_``)."""
    sizes = {}
    for name, trans, _, _ in specs:
        last = trans[-1] if isinstance(trans, Pipeline) else trans
        size = getattr(last, "vocabulary_size_", None)
        if size is not None:  # a CategoryVocabulary stays one (categorical ids)
            sizes[name] = size if isinstance(size, CategoryVocabulary) else int(size)
    return sizes


def _is_frame(X: Any) -> bool:
    return nw.dependencies.is_into_dataframe(X)


def _absent_rows(part: Any, n: int) -> np.ndarray:
    """Rows whose raw input is missing: a None/NaN item, or all selected columns NaN."""
    if sp.issparse(part):
        return np.zeros(n, dtype=bool)
    if hasattr(part, "isna"):  # pandas Series / DataFrame
        na = part.isna().to_numpy()
    else:
        arr = np.asarray(part) if not isinstance(part, np.ndarray) else part
        if arr.dtype.kind in "fc":
            na = np.isnan(arr)
        elif arr.dtype == object:
            flat = arr.reshape(-1) if arr.ndim else arr.reshape(1)
            na = np.fromiter((is_missing_value(v) for v in flat), dtype=bool,
                             count=flat.size).reshape(arr.shape)
        else:
            return np.zeros(n, dtype=bool)
    na = np.asarray(na, dtype=bool)
    if na.ndim == 1:
        return na
    return np.asarray(na.reshape(n, -1).all(axis=1))


def _no_signal_rows(trans: Any, part: Any, n: int, name: str) -> np.ndarray:
    """Rows the block's transformer reports as carrying no signal (its ``absent_items``).

    Transformers without an ``absent_items`` method (``"passthrough"``, scikit-learn's own)
    report none: for them only None/NaN inputs are absent.
    """
    rule = getattr(trans, "absent_items", None)
    if not callable(rule):
        return np.zeros(n, dtype=bool)
    absent = np.asarray(rule(part))
    if absent.shape != (n,) or absent.dtype != bool:
        raise ValueError(
            f"ModalityFusion: {type(trans).__name__}.absent_items of block {name!r} returned "
            f"{absent.dtype} of shape {absent.shape}; expected a boolean array of shape ({n},)."
        )
    return absent


def _uses_names(columns: Any) -> bool:
    if isinstance(columns, str):
        return True
    if isinstance(columns, (list, tuple, np.ndarray)):
        return any(isinstance(c, str) for c in np.asarray(columns, dtype=object).ravel())
    return False


def _as_list(columns: Any) -> list:
    return [columns] if isinstance(columns, str) else list(columns)


class ModalityFusion(ColumnTransformer, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Apply one transformer per modality and return per-modality blocks or one matrix.

    Built like :class:`~sklearn.compose.ColumnTransformer` (it is one: see Notes) over a
    DataFrame with one column per modality (file paths, arrays or strings) plus tabular
    columns. Unlike ``ColumnTransformer`` it keeps 3-D sequence and 4-D image outputs and,
    by default, returns a :class:`~sklearn_mtml.blocks.ModalityBlocks` (one block per
    transformer, natural shapes, row presence masks) that
    :class:`~sklearn_mtml.MultiTaskNet` reads directly, learning the block layout itself.

    Parameters
    ----------
    transformers : list of (str, transformer, columns) tuples
        ``name`` is the block name (unique). ``transformer`` is an estimator with ``fit`` and
        ``transform``, ``"passthrough"`` or ``"drop"``. ``columns`` follows
        ``ColumnTransformer``: a string selects one modality column, passed to the
        transformer as a 1-D Series (what ``TfidfVectorizer`` and the modality transformers
        of :mod:`sklearn_mtml.features` expect); a list of strings selects tabular columns,
        passed as a DataFrame; integers, slices, boolean masks and callables such as
        :class:`~sklearn.compose.make_column_selector` work as in ``ColumnTransformer``
        (integers also on NumPy arrays).
    output : {"blocks", "concat"}, default="blocks"
        ``"blocks"``: a :class:`~sklearn_mtml.blocks.ModalityBlocks` with one block per
        transformer (2-D, 3-D, 4-D or sparse, as the transformer returned it; data frames
        become arrays) and presence masks. ``"concat"``: one 2-D matrix, 3-D/4-D blocks
        flattened, columns named by :meth:`get_feature_names_out` (``"audio__mfcc0_mean"``);
        sparse when some block is sparse and the overall density is below
        ``sparse_threshold`` (as in ``ColumnTransformer``), a data frame after
        ``set_output(transform="pandas")`` (always dense). This serves any scikit-learn
        estimator.
    remainder : {"drop", "passthrough"} or transformer, default="drop"
        What to do with the columns no transformer selects; a kept remainder is the block
        ``"remainder"``.
    sparse_threshold : float, default=0.3
        ``output="concat"`` only: return a sparse matrix when some block is sparse and the
        density of the result is below this value.
    n_jobs : int or None, default=None
        Transformers fitted and applied in parallel (joblib), as in ``ColumnTransformer``.
    transformer_weights : dict or None, default=None
        Multiplicative weight of each block's output, keyed by block name.
    mask_missing : bool, default=True
        ``True``: a row whose raw input of a block is missing (None/NaN item; all selected
        columns NaN), or whose item carries no signal by the rule of the block's transformer
        (its ``absent_items`` method, when it has one: with the default ``detect_empty=True``
        of :mod:`sklearn_mtml.features`, an empty or silent clip, a constant image, an empty
        or whitespace-only text), is marked absent in the block's mask, and the
        transformer's output for that row is kept as it is (the modality transformers give
        zeros). ``False``: every modality is required in every row; an absent one is an
        error naming the block, column and row, at fit and at transform.
    verbose : bool, default=False
        Print the time spent fitting each transformer.
    verbose_feature_names_out : bool, str or callable, default=True
        As in ``ColumnTransformer``: ``True`` prefixes feature names with the block name
        (``"audio__mfcc0_mean"``).

    Attributes
    ----------
    transformers_ : list of tuples
        The fitted transformers, as in ``ColumnTransformer`` (``named_transformers_`` gives
        them by name).
    block_names_ : list of str
        Names of the output blocks, in order (dropped transformers and empty selections
        have no block).
    block_shapes_ : dict of str to tuple of int
        Per-row shape of each block at fit (``(d,)``, ``(T, F)`` or ``(C, H, W)``).
    block_columns_ : dict of str to list
        Input columns (labels, or indices for an array input) of each block.
    absent_counts_ : dict of str to int
        Rows marked absent in each block at fit (missing or carrying no signal).
    output_indices_ : dict of str to slice
        Columns of each block in the ``output="concat"`` matrix (flattened).
    sparse_output_ : bool
        Whether ``output="concat"`` gives a sparse matrix.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Input column names (DataFrame input).

    See Also
    --------
    sklearn.compose.ColumnTransformer : The base class.
    sklearn_mtml.blocks.ModalityBlocks : The ``output="blocks"`` container.
    sklearn_mtml.late_fusion.LateFusionClassifier : One model per block, predictions fused.

    Notes
    -----
    ``ModalityFusion`` subclasses ``ColumnTransformer`` and overrides only how outputs are
    validated and stacked, so column selection, ``remainder``, parameter routing,
    parallelism and feature-name prefixing behave exactly as there. Two differences:
    ``set_output`` configures the fused output only, not the sub-transformers (so sparse
    text transformers may sit in a fusion with pandas output, the concatenated result being
    densified), and a dict of columns is accepted as input (it becomes a DataFrame).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_mtml.fusion import ModalityFusion
    >>> X = pd.DataFrame({"text": ["a cat", "a dog", "the cat", "no dog"],
    ...                   "age": [1.0, 2.0, np.nan, 4.0]})
    >>> fusion = ModalityFusion([("text", TfidfVectorizer(), "text"),
    ...                          ("tab", StandardScaler(), ["age"])])
    >>> Xb = fusion.fit_transform(X)
    >>> Xb.names, Xb.masks["tab"].tolist()
    (['text', 'tab'], [True, True, False, True])
    >>> fusion.set_params(output="concat").fit_transform(X).shape
    (4, 5)
    >>> fusion.get_feature_names_out()[:2].tolist()
    ['text__cat', 'text__dog']
    """

    _parameter_constraints: dict = {
        **ColumnTransformer._parameter_constraints,
        "output": [StrOptions({"blocks", "concat"})],
        "mask_missing": ["boolean"],
    }

    def __init__(
        self,
        transformers: list[tuple[str, Any, Any]],
        *,
        output: str = "blocks",
        remainder: Any = "drop",
        sparse_threshold: float = 0.3,
        n_jobs: int | None = None,
        transformer_weights: dict | None = None,
        mask_missing: bool = True,
        verbose: bool = False,
        verbose_feature_names_out: Any = True,
    ):
        super().__init__(
            transformers,
            remainder=remainder,
            sparse_threshold=sparse_threshold,
            n_jobs=n_jobs,
            transformer_weights=transformer_weights,
            verbose=verbose,
            verbose_feature_names_out=verbose_feature_names_out,
        )
        self.output = output
        self.mask_missing = mask_missing

    # ------------------------------------------------------------------ set_output
    def set_output(self, *, transform: str | None = None) -> ModalityFusion:
        """Set the output container of ``transform`` and ``fit_transform``.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            Container of the ``output="concat"`` matrix (always dense for a data frame,
            columns from :meth:`get_feature_names_out`, the input's index). Unlike
            ``ColumnTransformer``, the sub-transformers are left as configured: a sparse
            text block (``TfidfVectorizer``, ``TextFeatures``) could not become a data frame,
            and the fused frame does not need them to. With ``output="blocks"`` the blocks
            stay arrays. None leaves the configuration unchanged.

        Returns
        -------
        self : ModalityFusion
        """
        if transform is None:
            return self
        if transform not in ADAPTERS_MANAGER.supported_outputs:
            raise ValueError(
                f"set_output: transform must be one of "
                f"{sorted(ADAPTERS_MANAGER.supported_outputs)} or None, got {transform!r}."
            )
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    # ------------------------------------------------------------------ input checks
    def _check_input(self, X: Any, fitted: bool) -> Any:
        """Convert a dict of columns; fail clearly on empty input and bad column specs."""
        if isinstance(X, Mapping) and not _is_frame(X) and not sp.issparse(X):
            import pandas as pd

            X = pd.DataFrame({
                k: list(v) if isinstance(v, np.ndarray) and v.ndim > 1 else v
                for k, v in X.items()
            })
        if X is None:
            raise ValueError("ModalityFusion: X is None; expected a DataFrame with one "
                             "column per modality.")
        if sp.issparse(X):
            X = X.tocsr()  # row and column indexing
        if not (_is_frame(X) or sp.issparse(X) or (hasattr(X, "__array__")
                                                   and hasattr(X, "shape"))):
            arr = np.asarray(X)  # lists and array-likes, as in ColumnTransformer
            X = arr if arr.dtype.kind in "biufc" else _check_X(X)
        if not _is_frame(X) and getattr(X, "ndim", 2) != 2:
            raise ValueError(
                f"ModalityFusion: expected a DataFrame or a 2-D array, got an array of shape "
                f"{X.shape}. Reshape your data either using array.reshape(-1, 1) if it has a "
                "single column or array.reshape(1, -1) if it contains a single sample."
            )
        try:
            n = _num_samples(X)
        except TypeError as exc:
            raise TypeError(
                f"ModalityFusion: expected a DataFrame, a dict of columns or a 2-D array, got "
                f"{type(X).__name__}."
            ) from exc
        if n == 0:
            raise ValueError(
                "ModalityFusion: X has 0 rows (an empty DataFrame?); at least one sample is "
                "required."
            )
        if len(X.shape) == 2 and X.shape[1] == 0:
            raise ValueError(
                f"ModalityFusion: 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 "
                "is required: X has no column."
            )
        specs = self.transformers_ if fitted else self.transformers
        if not isinstance(specs, (list, tuple)) or not all(
            isinstance(t, tuple) and len(t) == 3 for t in specs
        ):
            raise ValueError(
                "ModalityFusion: transformers must be a list of (name, transformer, columns) "
                f"tuples, got {specs!r}."
            )
        if not fitted:
            counts = Counter(name for name, _, _ in specs)
            dup = sorted(k for k, c in counts.items() if c > 1)
            if dup:
                raise ValueError(
                    f"ModalityFusion: duplicate block names {dup}; every transformer needs a "
                    "unique name (it names the block)."
                )
        frame = _is_frame(X)
        for name, trans, columns in specs:
            if callable(columns) or (fitted and trans == "drop"):
                continue
            if not _uses_names(columns):
                continue
            if not frame:
                raise ValueError(
                    f"ModalityFusion: block {name!r} selects columns by name ({columns!r}), "
                    f"which needs a pandas DataFrame (or a dict of columns); got "
                    f"{type(X).__name__}."
                )
            present = set(nw.from_native(X).columns)
            missing = [c for c in _as_list(columns) if c not in present]
            if missing:
                when = "were present at fit but are" if fitted else "are"
                raise ValueError(
                    f"ModalityFusion: columns {missing} of block {name!r} {when} not in X; "
                    f"X has columns {sorted(map(str, present))[:20]}."
                )
        return X

    # ------------------------------------------------------------------ ColumnTransformer hooks
    def _validate_output(self, result: list) -> None:
        names = [name for name, *_ in self._iter(
            fitted=True, column_as_labels=False, skip_drop=True, skip_empty_columns=True)]
        for Xs, name in zip(result, names):
            ndim = getattr(Xs, "ndim", 0)
            if _is_frame(Xs) or (sp.issparse(Xs) and ndim == 2) or ndim in (2, 3, 4):
                continue
            raise ValueError(
                f"ModalityFusion: the transformer of block {name!r} returned "
                f"{type(Xs).__name__} of shape {getattr(Xs, 'shape', None)}; expected one row "
                "per sample: 2-D (n, d), 3-D (n, T, F) or 4-D (n, C, H, W)."
            )

    def _record_output_indices(self, Xs: list) -> None:
        idx = 0
        self.output_indices_ = {}
        for i, (name, *_) in enumerate(self._iter(
                fitted=True, column_as_labels=False, skip_drop=True, skip_empty_columns=True)):
            width = int(np.prod(Xs[i].shape[1:], dtype=np.int64))
            self.output_indices_[name] = slice(idx, idx + width)
            idx += width
        for name in [t[0] for t in self.transformers] + ["remainder"]:
            self.output_indices_.setdefault(name, slice(0, 0))

    def _hstack(self, Xs: list, *, n_samples: int) -> _Unstacked:
        return _Unstacked(list(Xs), n_samples)

    # ------------------------------------------------------------------ fit / transform
    def fit(self, X: Any, y: Any = None, **params: Any) -> ModalityFusion:
        """Fit every transformer on its columns.

        Parameters
        ----------
        X : DataFrame, dict of columns or array-like of shape (n_samples, n_columns)
            One column per modality plus tabular columns.
        y : array-like, default=None
            Targets, passed to the transformers (supervised transformers).
        **params : dict
            Metadata routed to the transformers (metadata routing enabled only).

        Returns
        -------
        self : ModalityFusion
        """
        self.fit_transform(X, y, **params)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> Any:
        """Fit every transformer on its columns and return the fused output.

        Parameters
        ----------
        X : DataFrame, dict of columns or array-like of shape (n_samples, n_columns)
            One column per modality plus tabular columns.
        y : array-like, default=None
            Targets, passed to the transformers.
        **params : dict
            Metadata routed to the transformers (metadata routing enabled only).

        Returns
        -------
        ModalityBlocks, ndarray, sparse matrix or DataFrame
            See ``output``.
        """
        self._validate_params()
        X = self._check_input(X, fitted=False)
        result = super().fit_transform(X, y, **params)
        return self._finish(result, X, fit=True)

    def transform(self, X: Any, **params: Any) -> Any:
        """Transform each modality with its fitted transformer.

        Parameters
        ----------
        X : DataFrame, dict of columns or array-like of shape (n_samples, n_columns)
            The columns seen at fit (extra columns are ignored for a DataFrame).
        **params : dict
            Metadata routed to the transformers (metadata routing enabled only).

        Returns
        -------
        ModalityBlocks, ndarray, sparse matrix or DataFrame
            See ``output``.
        """
        check_is_fitted(self)
        X = self._check_input(X, fitted=True)
        result = super().transform(X, **params)
        return self._finish(result, X, fit=False)

    def _finish(self, result: Any, X: Any, fit: bool) -> Any:
        n = _num_samples(X)
        Xs = result.Xs if isinstance(result, _Unstacked) else []
        as_labels = (not fit) and hasattr(self, "feature_names_in_") and _is_frame(X)
        specs = list(self._iter(fitted=True, column_as_labels=as_labels, skip_drop=True,
                                skip_empty_columns=True))
        names = [s[0] for s in specs]
        for name, block in zip(names, Xs):
            if block.shape[0] != n:
                raise ValueError(
                    f"ModalityFusion: the transformer of block {name!r} returned "
                    f"{block.shape[0]} rows for {n} input rows; a transformer must return "
                    "one row per sample."
                )
        shapes = {name: tuple(int(s) for s in b.shape[1:]) for name, b in zip(names, Xs)}
        if fit:
            self.block_names_ = names
            self.block_shapes_ = shapes
            # ColumnTransformer counts a 3-D block as (n, T): recount with flattened widths.
            sizes = [n * int(np.prod(s, dtype=np.int64)) for s in shapes.values()]
            if any(sp.issparse(b) for b in Xs) and sum(sizes):
                nnz = sum(b.nnz if sp.issparse(b) else size for b, size in zip(Xs, sizes))
                self.sparse_output_ = nnz / sum(sizes) < self.sparse_threshold
            self.block_columns_ = {
                name: [str(c) if isinstance(c, str) else c for c in
                       (self.feature_names_in_[self._transformer_to_input_indices[name]]
                        if hasattr(self, "feature_names_in_")
                        else self._transformer_to_input_indices[name])]
                for name in names
            }
        else:
            for name in names:
                if shapes[name] != self.block_shapes_[name]:
                    raise ValueError(
                        f"ModalityFusion: block {name!r} has per-row shape {shapes[name]} "
                        f"at transform but {self.block_shapes_[name]} at fit."
                    )
        masks = {}
        for name, trans, columns, _ in specs:
            part = _safe_indexing(X, columns, axis=1)
            missing = _absent_rows(part, n)
            absent = missing | _no_signal_rows(trans, part, n, name)
            if absent.any() and not self.mask_missing:
                row = int(np.flatnonzero(absent)[0])
                label = ""
                if hasattr(X, "index"):
                    value = X.index[row]
                    value = value.item() if hasattr(value, "item") else value
                    label = f" (index {value!r})"
                cols = self.block_columns_[name]
                col = f"column {cols[0]!r}" if len(cols) == 1 else f"columns {cols}"
                when = "" if fit else " but was required at fit"
                what, hint = "is missing", ""
                if not missing[row]:
                    what = "carries no signal"
                    hint = (f" The rule is {type(trans).__name__}.absent_items (an empty or "
                            "silent clip, a constant image, a blank text); set "
                            "detect_empty=False on the transformer to keep such items.")
                raise ValueError(
                    f"ModalityFusion: modality {name!r} ({col}) {what} in row {row}"
                    f"{label}{when} (mask_missing=False); {int(absent.sum())} rows miss it."
                    f"{hint}"
                )
            masks[name] = ~absent
        if fit:
            self.absent_counts_ = {k: int((~m).sum()) for k, m in masks.items()}

        if self.output == "blocks":
            if not Xs:
                raise ValueError(
                    "ModalityFusion: no block to output (every transformer is 'drop' or "
                    "selects no column)."
                )
            blocks = {}
            for name, block in zip(names, Xs):
                if _is_frame(block):
                    block = nw.from_native(block).to_numpy()
                blocks[name] = block
            feature_names = self._block_feature_names(names)
            return ModalityBlocks(blocks, masks, feature_names,
                                  vocab_sizes=_vocab_sizes(specs))

        if not Xs:
            return np.zeros((n, 0))
        flat = [b.reshape(n, -1) if isinstance(b, np.ndarray) and b.ndim > 2 else b
                for b in Xs]
        out = ColumnTransformer._hstack(self, flat, n_samples=n)
        config = _get_output_config("transform", self)["dense"]
        if config == "default":
            return out
        if sp.issparse(out):
            out = out.toarray()
        adapter = ADAPTERS_MANAGER.adapters[config]
        return adapter.create_container(out, X if _is_frame(X) else None,
                                        columns=self.get_feature_names_out)

    # ------------------------------------------------------------------ feature names
    def _raw_names(self, name: str, trans: Any, input_features: np.ndarray) -> Any:
        try:
            return self._get_feature_name_out_for_transformer(name, trans, input_features)
        except (AttributeError, ValueError, TypeError, KeyError):
            return None

    def _block_feature_names(self, names: list[str]) -> dict[str, np.ndarray]:
        input_features = _check_feature_names_in(self, None)
        trans = {n: t for n, t, _ in self.transformers_}
        return {
            name: flat_feature_names(self._raw_names(name, trans[name], input_features),
                                     self.block_shapes_[name])
            for name in names
        }

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the flattened output features, prefixed with the block name.

        For ``output="concat"`` these are the columns of the matrix; for
        ``output="blocks"`` they describe the same flattened layout (for information).
        A block whose transformer gives no names gets ``"x0"``, ``"x1"``, ...; names of a
        3-D block given per frame feature become ``"{feature}_t{t}"``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; must match ``feature_names_in_`` when that is set.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self)
        input_features = _check_feature_names_in(self, input_features)
        pairs = []
        for name, trans, *_ in self._iter(fitted=True, column_as_labels=False,
                                          skip_empty_columns=True, skip_drop=True):
            if name not in self.block_shapes_:
                continue
            raw = self._raw_names(name, trans, input_features)
            pairs.append((name, flat_feature_names(raw, self.block_shapes_[name])))
        if not pairs:
            return np.array([], dtype=object)
        return self._add_prefix_for_feature_names_out(pairs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN marks a missing modality: it is data here, not an error.
        tags.input_tags.allow_nan = True
        return tags
