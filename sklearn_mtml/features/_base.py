"""Helpers shared by the per-modality transformers.

A *modality column* is one column of a data frame whose cells are per-row items: file paths,
arrays or strings. The helpers here turn such a column into a list of items, detect missing
entries (``None`` / NaN / ``pandas.NA``), build error messages that name the row, and provide the
small base class that gives the three transformers their common scikit-learn behaviour
(``set_output``, tags, feature names, fitted checks) and the "no signal" protocol
(:meth:`ModalityTransformer.absent_items`) that :class:`~sklearn_mtml.fusion.ModalityFusion`
reads to mark degraded items (a silent clip, a blank image, an empty text) as absent.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._compat import ADAPTERS_MANAGER, _get_output_config
from .._missing import is_missing_value

__all__ = [
    "ModalityTransformer",
    "column_to_items",
    "is_missing",
    "is_path",
    "missing_mask",
    "recall_file",
    "remember_file",
    "row_error",
]


def is_missing(item: Any) -> bool:
    """Return True when a cell of a modality column is missing.

    ``None``, a float NaN (Python or NumPy scalar), ``pandas.NA`` and ``pandas.NaT`` are
    missing. Arrays, strings and paths are never missing, even when empty (the rule of
    :mod:`sklearn_mtml._missing`).
    """
    return is_missing_value(item)


def missing_mask(items: Sequence[Any]) -> np.ndarray:
    """Boolean mask, True where the row's item is missing."""
    return np.fromiter((is_missing_value(it) for it in items), dtype=bool, count=len(items))


def is_path(item: Any) -> bool:
    """Return True for a file path (``str`` or ``os.PathLike``)."""
    return isinstance(item, (str, os.PathLike))


# What decoding a file taught about its content (a clip's peak amplitude, whether an image is
# constant), keyed by the file's identity, so that ``absent_items`` called right after
# ``transform`` (as ModalityFusion does) does not decode every file a second time. A modified
# file has another size or modification time, hence another key: a stale value is never used.
_FILE_MEMO: dict[tuple, Any] = {}
_FILE_MEMO_MAX = 200_000


def _file_key(kind: str, path: Any) -> tuple | None:
    path_str = os.fspath(path)
    try:
        st = os.stat(path_str)
    except OSError:
        return None
    return kind, os.path.abspath(path_str), st.st_size, st.st_mtime_ns


def remember_file(kind: str, path: Any, value: Any) -> None:
    """Record ``value``, a fact about the content of the file ``path``, under ``kind``.

    Parameters
    ----------
    kind : str
        What the value is (e.g. ``"audio_peak"``); one namespace per fact.
    path : str or os.PathLike
        The file; its absolute path, size and modification time form the key.
    value : object
        The fact, returned by :func:`recall_file` while the file is unchanged.
    """
    key = _file_key(kind, path)
    if key is None:
        return
    if len(_FILE_MEMO) >= _FILE_MEMO_MAX:
        _FILE_MEMO.clear()
    _FILE_MEMO[key] = value


def recall_file(kind: str, path: Any) -> Any:
    """Return what :func:`remember_file` recorded for the unchanged file, or None.

    Parameters
    ----------
    kind : str
        What the value is (the ``kind`` given to :func:`remember_file`).
    path : str or os.PathLike
        The file.

    Returns
    -------
    object or None
        The recorded value; None when nothing was recorded or the file changed since.
    """
    key = _file_key(kind, path)
    return None if key is None else _FILE_MEMO.get(key)


def row_error(
    cls: type[Exception],
    row: int,
    message: str,
    *,
    name: str = "",
    cause: BaseException | None = None,
) -> Exception:
    """Build an exception whose message names the transformer and the offending row.

    Parameters
    ----------
    cls : type of Exception
        Exception class, e.g. ``ValueError``.
    row : int
        Position of the row in the modality column (0-based).
    message : str
        What is wrong and what was expected.
    name : str, default=""
        Name of the transformer, prefixed to the message.
    cause : BaseException, optional
        Original exception, attached as ``__cause__``.

    Returns
    -------
    Exception
        The exception, ready to ``raise``.
    """
    prefix = f"{name}: " if name else ""
    exc = cls(f"{prefix}row {row}: {message}")
    if cause is not None:
        exc.__cause__ = cause
    return exc


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "iloc") and hasattr(X, "columns") and getattr(X, "ndim", 0) == 2


def _is_series(X: Any) -> bool:
    return hasattr(X, "iloc") and getattr(X, "ndim", 0) == 1


def column_to_items(
    X: Any,
    *,
    name: str,
    numeric_array: Callable[[np.ndarray], list] | None = None,
) -> list:
    """Turn one modality column into a list of per-row items.

    Parameters
    ----------
    X : pandas Series, 1-column DataFrame, list, tuple or ndarray
        The column. A 1-D object array or a 2-D object array with one column is a column
        of items. A numeric ndarray is handed to ``numeric_array``.
    name : str
        Name of the transformer, used in error messages.
    numeric_array : callable, optional
        Converts a numeric ndarray (e.g. stacked waveforms or images) into a list of rows.
        When None, numeric arrays are read like object arrays (1-D, or 2-D with one column).

    Returns
    -------
    list
        One item per row; missing rows are kept (``None``/NaN), never dropped.
    """
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{name}: expected a column of per-row items (Series, list, 1-D array or "
            f"1-column DataFrame), got a single {type(X).__name__}; wrap it in a list"
        )
    if sparse.issparse(X):
        raise TypeError(
            f"{name}: sparse input is not supported; pass a column of per-row items"
        )
    if _is_dataframe(X):
        if X.shape[1] != 1:
            raise ValueError(
                f"{name}: expected one modality column, got a DataFrame with {X.shape[1]} "
                f"columns {list(X.columns)[:5]}; select the column first"
            )
        items = X.iloc[:, 0].tolist()
    elif _is_series(X):
        items = X.tolist()
    elif isinstance(X, np.ndarray):
        if X.dtype.kind == "c":
            raise ValueError(f"{name}: Complex data not supported; expected real numbers")
        if X.ndim == 2 and X.shape[1] == 0:
            raise ValueError(
                f"{name}: found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                "is required."
            )
        if X.dtype == object or X.dtype.kind in "USO" or numeric_array is None:
            if X.ndim == 1:
                items = list(X)
            elif X.ndim == 2 and X.shape[1] == 1:
                items = list(X[:, 0])
            elif X.dtype == object and numeric_array is not None and X.ndim >= 2:
                try:
                    arr = X.astype(np.float64)
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"{name}: a {X.ndim}-D object array must hold numbers (or have one "
                        f"column of items); could not convert it: {exc}"
                    ) from exc
                items = numeric_array(arr)
            else:
                raise ValueError(
                    f"{name}: expected a 1-D column of items or a 2-D array with one "
                    f"column, got an array of shape {X.shape}"
                )
        else:
            items = numeric_array(X)
    elif isinstance(X, (list, tuple)):
        items = list(X)
    elif hasattr(X, "__array__") or hasattr(X, "__iter__"):
        # other array-likes (memmap subclasses are ndarrays; this covers e.g. polars Series)
        converted = np.asarray(X) if hasattr(X, "__array__") else None
        if converted is not None and converted.ndim >= 1:
            return column_to_items(converted, name=name, numeric_array=numeric_array)
        items = list(X)
    else:
        raise TypeError(
            f"{name}: expected a column of per-row items (Series, list, 1-D array or "
            f"1-column DataFrame), got {type(X).__name__}"
        )
    if len(items) == 0:
        raise ValueError(f"{name}: the modality column has 0 rows; at least 1 is required")
    return items


def check_not_all_missing(mask: np.ndarray, name: str, *, empty: bool = False) -> None:
    """Raise a ValueError when every row of the column is missing (used at fit).

    ``empty=True`` says that empty items (an empty clip) were counted as missing.
    """
    if mask.all():
        what = "None/NaN or empty" if empty else "None/NaN"
        raise ValueError(
            f"{name}: every row of the modality column is missing ({what}); "
            "at least one present row is needed to fit"
        )


def check_finite(arr: np.ndarray, row: int, name: str, what: str) -> None:
    """Raise a ValueError naming the row when ``arr`` has NaN or infinite values."""
    if not np.isfinite(arr).all():
        raise row_error(ValueError, row, f"{what} contains NaN or infinity", name=name)


def to_float_array(item: Any, row: int, name: str, what: str) -> np.ndarray:
    """Convert a numeric per-row item to a NumPy array, with a clear error otherwise."""
    if isinstance(item, (str, bytes)) or isinstance(item, numbers.Number):
        raise row_error(
            TypeError, row, f"expected {what}, got {type(item).__name__} {item!r:.60}", name=name
        )
    try:
        arr = np.asarray(item)
    except Exception as exc:  # ragged lists and the like
        raise row_error(TypeError, row, f"expected {what}: {exc}", name=name, cause=exc) from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise row_error(
            TypeError, row, f"expected {what} of numbers, got dtype {arr.dtype}", name=name
        )
    return arr


class ModalityTransformer(TransformerMixin, BaseEstimator,  # type: ignore[call-arg]
                          auto_wrap_output_keys=None):
    """Base class of the per-modality transformers.

    Subclasses implement ``fit``, ``_transform`` (which returns an ndarray or a sparse matrix),
    ``_feature_names`` and ``_no_signal`` (the modality's "this item carries no signal" rule,
    applied when the ``detect_empty`` parameter is True). The base class adds ``transform``,
    ``absent_items``, ``set_output`` (pandas/polars containers for 2-D dense outputs; 3-D and
    4-D outputs stay ndarrays since a data frame cannot hold them), ``get_feature_names_out``
    and the tags shared by all modalities.
    """

    def __init_subclass__(cls, **kwargs):
        # The output wrapping is done by ``_wrap_output`` (2-D outputs only) rather than by
        # scikit-learn's automatic wrapper, which would fail on 3-D sequence outputs.
        kwargs.setdefault("auto_wrap_output_keys", None)
        super().__init_subclass__(**kwargs)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def _items(self, X: Any) -> list:
        return column_to_items(X, name=self._name, numeric_array=self._numeric_array)

    # Subclasses may override: how a numeric ndarray maps to rows (None = not accepted).
    _numeric_array: Callable[[np.ndarray], list] | None = None

    def _no_signal(self, row: int, item: Any) -> bool:
        """Whether a present (not None/NaN) item carries no signal; subclasses override."""
        return False

    def absent_items(self, X: Any) -> np.ndarray:
        """Rows whose item is missing or, with ``detect_empty=True``, carries no signal.

        This is the rule :class:`~sklearn_mtml.fusion.ModalityFusion` applies to build the
        presence mask of the block this transformer produces: a row is absent when its item
        is ``None``/NaN/``pandas.NA`` or, when the ``detect_empty`` parameter is True, when
        the item is degraded (audio: an empty clip, or one whose peak absolute amplitude is
        below ``silence_threshold``; images: a constant image; texts: an empty or
        whitespace-only string). ``transform`` gives those rows all-zero output rows. The
        method needs no fitting. Override it in a subclass to change the rule (any
        transformer with an ``absent_items`` method is read by ``ModalityFusion``).

        Parameters
        ----------
        X : column of per-row items
            The column given to ``transform``.

        Returns
        -------
        ndarray of bool of shape (n_rows,)
            True where the row is absent.
        """
        items = self._items(X)
        absent = missing_mask(items)
        if getattr(self, "detect_empty", False):
            for i in np.flatnonzero(~absent):
                absent[i] = self._no_signal(int(i), items[i])
        return absent

    def transform(self, X: Any) -> Any:
        """Transform a modality column into features.

        Parameters
        ----------
        X : column of per-row items
            See the class documentation for the accepted items.

        Returns
        -------
        ndarray, sparse matrix or DataFrame
            The features; missing rows (and, with ``detect_empty=True``, items that carry
            no signal) give all-zero rows.
        """
        check_is_fitted(self)
        return self._wrap_output(self._transform(X), X)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit to the column, then transform it.

        Parameters
        ----------
        X : column of per-row items
            See the class documentation for the accepted items.
        y : None
            Ignored.
        **fit_params : dict
            Ignored; present for API compatibility.

        Returns
        -------
        ndarray, sparse matrix or DataFrame
            The features of ``X``.
        """
        return self.fit(X, y).transform(X)

    def set_output(self, *, transform: str | None = None) -> ModalityTransformer:
        """Set the output container of ``transform`` and ``fit_transform``.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None
            ``"pandas"``/``"polars"`` wrap 2-D dense outputs in a data frame whose columns are
            :meth:`get_feature_names_out`. Sparse outputs raise an error (ask for a dense
            output); 3-D/4-D outputs are returned as ndarrays unchanged. None leaves the
            configuration unchanged.

        Returns
        -------
        self
            The transformer.
        """
        if transform is None:
            return self
        if transform not in ADAPTERS_MANAGER.supported_outputs:
            raise ValueError(
                f"set_output: transform must be one of {sorted(ADAPTERS_MANAGER.supported_outputs)}"
                f" or None, got {transform!r}"
            )
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _wrap_output(self, out: Any, X: Any) -> Any:
        config = _get_output_config("transform", self)["dense"]
        if config == "default" or getattr(out, "ndim", 2) != 2:
            return out
        if sparse.issparse(out):
            raise ValueError(
                f"{self._name} outputs a sparse matrix, which cannot become a {config} data "
                "frame; ask for a dense output or use set_output(transform='default')"
            )
        adapter = ADAPTERS_MANAGER.adapters[config]
        original = X if (_is_dataframe(X) or _is_series(X)) else None
        return adapter.create_container(out, original, columns=self.get_feature_names_out)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output features.

        For 3-D and 4-D outputs the names follow ``Xt.reshape(n, -1)``.

        Parameters
        ----------
        input_features : ignored
            Present for API compatibility; the names do not depend on input names.

        Returns
        -------
        ndarray of str
            The names.
        """
        check_is_fitted(self)
        return np.asarray(self._feature_names(), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        # Outputs are always float32 (int64 for token sequences): no dtype is preserved.
        tags.transformer_tags.preserves_dtype = []
        return tags
