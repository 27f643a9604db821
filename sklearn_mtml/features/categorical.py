"""Categorical features: identifiers, codes and string categories as token ids or one-hot.

A categorical column is a token sequence of length 1 (``k`` columns: length ``k``): each
column's categories get ids in one shared vocabulary, so that
:class:`~sklearn_mtml.fusion.ModalityFusion` declares the block as token ids
(``vocabulary_size_``) and :class:`~sklearn_mtml.MultiTaskNet` encodes it with an embedding
table (:class:`~sklearn_mtml.nn.encoders.TokenEncoder`) and reads it as a bag of words in its
wide path, exactly as it does for ``TextFeatures(output="sequence")``. The categories are
learned by scikit-learn's :class:`~sklearn.preprocessing.OrdinalEncoder`.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.preprocessing import OrdinalEncoder
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _check_n_features,
    check_is_fitted,
)

from .._compat import Interval, StrOptions, _fit_context
from ..blocks import CategoryVocabulary
from ._base import ModalityTransformer, _is_dataframe, _is_series, is_missing

__all__ = ["CategoricalFeatures"]

MISSING = 0
_UNKNOWN_CODE, _MISSING_CODE = -1, -2  # OrdinalEncoder's codes before the shift to ids


def _column_kind(values: np.ndarray) -> str | None:
    """``"str"``, ``"number"`` or None (no present value) for one object column."""
    kinds = set()
    for v in values:
        if is_missing(v):
            continue
        if isinstance(v, str):
            kinds.add("str")
        elif isinstance(v, (bool, np.bool_, Integral, Real)):
            kinds.add("number")
        else:
            kinds.add(type(v).__name__)
        if len(kinds) > 1:
            break
    if not kinds:
        return None
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed:" + ",".join(sorted(kinds))


def _as_categories(kept: list, kind: str | None) -> np.ndarray:
    """Categories as an array: strings as objects, numbers numeric.

    Whole floats become int64, so that IDs of a column with a NaN stay integers.
    """
    if kind != "number" or not kept:
        return np.asarray(kept, dtype=object)
    arr = np.asarray(kept)
    if arr.dtype.kind == "f" and np.all(arr == np.round(arr)) and np.abs(arr).max() < 2**53:
        return arr.astype(np.int64)
    return arr


class CategoricalFeatures(ModalityTransformer):
    """Categorical columns to token ids in one shared vocabulary, or to one-hot indicators.

    For identifiers (product, customer or store IDs), codes and string categories: a network
    cannot use an identifier given as a number (ID 1078 is not "more" than ID 862), but it can
    learn one embedding per category. Each of the ``k`` selected columns becomes one token id;
    the ids of all columns live in one vocabulary (each column has its own range), so the
    output is a ``(n, k)`` int64 block of token ids. Inside a
    :class:`~sklearn_mtml.fusion.ModalityFusion`, ``vocabulary_size_`` declares the block as
    token ids of categories and :class:`~sklearn_mtml.MultiTaskNet` gives it an embedding
    encoder (:class:`~sklearn_mtml.nn.encoders.TokenEncoder` with the categorical settings of
    :data:`~sklearn_mtml.nn.encoders.CATEGORICAL_TOKEN_PARAMS`: the sum of the ``k``
    embeddings, no dropout) and a bag-of-words term in its linear (wide) path.
    ``output="onehot"`` gives the same vocabulary as indicator columns, for any scikit-learn
    estimator.

    The categories of each column are learned by scikit-learn's
    :class:`~sklearn.preprocessing.OrdinalEncoder` (sorted; ``min_frequency`` and
    ``max_categories`` as there).

    Parameters
    ----------
    output : {"ids", "onehot"}, default="ids"
        ``"ids"``: int64 token ids ``(n, k)``, one per column. Id 0 is a missing value
        (``None``/NaN/``pandas.NA``); column ``j`` owns the ids ``offsets_[j]`` (its
        "unknown" id) to ``offsets_[j] + len(categories_[j])``, category ``c`` of the column
        having id ``offsets_[j] + 1 + c``. ``"onehot"``: float32 indicators, one
        column per id but 0 (per input column: its unknown id, then its categories; a
        missing value gives zeros), sparse CSR unless ``dense=True``: what
        :class:`~sklearn.preprocessing.OneHotEncoder` with
        ``handle_unknown="infrequent_if_exist"`` gives, with missing values as zeros instead
        of a category.
    min_frequency : int, float or None, default=2
        Categories seen fewer times at fit (an int: a count; a float in (0, 1): a fraction of
        the rows) share their column's "unknown" id with the categories first seen at
        predict. The default 2 puts categories seen once into the unknown id, so that this id
        is trained on real rows and means "a rare or new category" when the network meets a
        category it has never seen. None or 1 keeps every category.
    max_categories : int or None, default=None
        At most this many ids per column, the "unknown" id included (the rarest categories
        go to it). None: no limit.
    dense : bool, default=False
        ``output="onehot"`` only: return a dense ndarray (needed by estimators that reject
        sparse input such as ``HistGradientBoostingClassifier``, and by
        ``set_output(transform="pandas")``).

    Attributes
    ----------
    encoder_ : OrdinalEncoder
        The fitted encoder (missing values encoded as -2, unknown categories as -1).
    categories_ : list of ndarray
        The categories of each column that have their own id, in id order.
    infrequent_categories_ : list of ndarray or None
        The categories of each column that were rarer than ``min_frequency`` (or beyond
        ``max_categories``) at fit and share the unknown id; None for a column without any.
    offsets_ : ndarray of int64 of shape (k,)
        The "unknown" id of each column; its categories follow it.
    vocabulary_size_ : CategoryVocabulary
        Number of ids, 0 (missing) included: the size of the embedding table a network needs
        (``output="ids"`` only: it declares the block as categorical token ids). An ``int``
        (:class:`~sklearn_mtml.blocks.CategoryVocabulary`).
    n_features_in_ : int
        Number of columns ``k``.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame (or a named Series) with string names.

    See Also
    --------
    sklearn.preprocessing.OrdinalEncoder : The encoder that learns the categories.
    sklearn.preprocessing.OneHotEncoder : One-hot encoding with NaN as a category.
    sklearn_mtml.features.TextFeatures : Texts to token-id sequences (``output="sequence"``).

    Notes
    -----
    A column holds either strings or numbers (integers, floats, booleans), as
    ``OrdinalEncoder`` requires; a pandas ``category`` column is read through its values.
    A row whose selected columns are all missing is absent (:meth:`absent_items`), which is
    also the rule :class:`~sklearn_mtml.fusion.ModalityFusion` applies to a list of columns;
    a row with some columns missing is present, the missing ones giving id 0, which the
    embedding encoder and the wide path leave out of their means.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_mtml.features import CategoricalFeatures
    >>> X = pd.DataFrame({"shop": ["a", "b", "a", "b", "c", None],
    ...                   "item": [7, 7, 9, 9, 7, 9]})
    >>> cat = CategoricalFeatures().fit(X)
    >>> cat.categories_, cat.offsets_.tolist(), cat.vocabulary_size_
    ([array(['a', 'b'], dtype=object), array([7, 9])], [1, 4], 7)
    >>> cat.transform(pd.DataFrame({"shop": ["b", "c", "new", None],
    ...                             "item": [9, 7, 8, 7]}))
    array([[3, 6],
           [1, 5],
           [1, 4],
           [0, 5]])
    >>> CategoricalFeatures(output="onehot", dense=True).fit_transform(X)[:2]
    array([[0., 1., 0., 0., 1., 0.],
           [0., 0., 1., 0., 1., 0.]], dtype=float32)
    >>> cat.get_feature_names_out().tolist()
    ['shop', 'item']
    """

    _parameter_constraints: dict = {
        "output": [StrOptions({"ids", "onehot"})],
        "min_frequency": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
            None,
        ],
        "max_categories": [Interval(Integral, 2, None, closed="left"), None],
        "dense": ["boolean"],
    }

    def __init__(
        self,
        output: str = "ids",
        *,
        min_frequency: int | float | None = 2,
        max_categories: int | None = None,
        dense: bool = False,
    ) -> None:
        self.output = output
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.dense = dense

    # ------------------------------------------------------------------ input
    def _table(self, X: Any, *, reset: bool) -> np.ndarray:
        """The input as a 2-D object array, missing values as NaN; checks names and width."""
        name = self._name
        if X is None:
            raise ValueError(f"{name}: X is None; expected a DataFrame, a 2-D array or one "
                             "column of categories.")
        if sparse.issparse(X):
            raise TypeError(f"{name}: sparse input is not supported; pass the categorical "
                            "columns as a DataFrame or a dense array.")
        if isinstance(X, (str, bytes)):
            raise TypeError(f"{name}: expected a column or a table of categories, got a "
                            f"single {type(X).__name__}; wrap it in a list.")
        if _is_series(X):
            X = X.to_frame()
        if _is_dataframe(X):
            _check_feature_names(self, X, reset=reset)
            columns = [str(c) for c in X.columns]
            table = np.empty(X.shape, dtype=object)
            for j in range(X.shape[1]):
                table[:, j] = X.iloc[:, j].to_numpy(dtype=object)
        else:
            if not isinstance(X, np.ndarray):
                try:
                    X = np.asarray(X, dtype=object)
                except ValueError as exc:  # ragged rows
                    raise ValueError(f"{name}: expected a table of categories (one value per "
                                     f"row and column): {exc}") from exc
            if X.ndim == 1:
                expected = getattr(self, "n_features_in_", 1)
                if not reset and expected != 1:
                    raise ValueError(
                        f"{name}: got a 1-D array of {len(X)} values, read as one column, but "
                        f"{expected} columns were seen at fit. Reshape your data: "
                        "X.reshape(1, -1) if it is one sample, or pass the columns as a 2-D "
                        "table.")
                X = X.reshape(-1, 1)
            if X.ndim != 2:
                raise ValueError(f"{name}: expected a 2-D table of categories (n_samples, "
                                 f"n_columns) or one column, got an array of shape {X.shape}.")
            if X.dtype.kind == "c":
                raise ValueError(f"{name}: Complex data not supported; categories are "
                                 "strings or real numbers.")
            _check_feature_names(self, X, reset=reset)
            columns = [f"x{j}" for j in range(X.shape[1])]
            table = X.astype(object)
        if table.shape[0] == 0:
            raise ValueError(f"{name}: found array with 0 sample(s) (shape={table.shape}) while "
                             "a minimum of 1 is required.")
        if table.shape[1] == 0:
            raise ValueError(f"{name}: found array with 0 feature(s) (shape={table.shape}) "
                             "while a minimum of 1 is required.")
        _check_n_features(self, table, reset=reset)
        kinds: list[str | None] = []
        for j in range(table.shape[1]):
            col = table[:, j]
            missing = np.fromiter((is_missing(v) for v in col), dtype=bool, count=len(col))
            col[missing] = np.nan
            kind = _column_kind(col)
            label = columns[j]
            if kind is not None and kind not in ("str", "number"):
                if kind == "mixed:number,str":
                    what = "both strings and numbers"
                else:
                    example = next(v for v in col if not is_missing(v) and not isinstance(
                        v, (str, Integral, Real, np.bool_)))
                    what = f"values of type {type(example).__name__} ({example!r:.40})"
                raise TypeError(
                    f"{name}: column {label!r} holds {what}; expected one type per column: "
                    "strings, or numbers (convert it, e.g. X[col].astype(str)), with "
                    "None/NaN for a missing value.")
            if kind == "number":
                numbers = col[~missing].astype(np.float64)
                if not np.isfinite(numbers).all():
                    raise ValueError(f"{name}: column {label!r} holds an infinite value; "
                                     "expected finite numbers or strings (NaN/None for a "
                                     "missing value).")
            if not reset and kind is not None and self._column_kinds[j] not in (None, kind):
                raise TypeError(
                    f"{name}: column {label!r} held {self._column_kinds[j]} values at fit "
                    f"but holds {kind} values now; pass the same type as at fit.")
            kinds.append(kind)
        if reset:
            self._column_kinds: list[str | None] = kinds
        return table

    # ------------------------------------------------------------------ fit / transform
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> CategoricalFeatures:
        """Learn the categories of each column and the shared vocabulary.

        Parameters
        ----------
        X : DataFrame, 2-D array-like or one column (Series, list, 1-D array)
            The categorical columns: strings or numbers, ``None``/NaN for a missing value.
        y : None
            Ignored.

        Returns
        -------
        self : CategoricalFeatures
            The fitted transformer.
        """
        table = self._table(X, reset=True)
        if all(kind is None for kind in self._column_kinds):
            raise ValueError(f"{self._name}: every value is missing (None/NaN); at least one "
                             "category is needed to fit.")
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=_UNKNOWN_CODE,
            encoded_missing_value=_MISSING_CODE, min_frequency=self.min_frequency,
            max_categories=self.max_categories, dtype=np.float64,
        )
        encoder.fit(table)
        infrequent = (encoder.infrequent_categories_ if encoder._infrequent_enabled
                      else [None] * table.shape[1])
        self.encoder_ = encoder
        self.infrequent_categories_ = [None if c is None or len(c) == 0 else c
                                       for c in infrequent]
        self.categories_ = []
        for cats, rare, kind in zip(encoder.categories_, self.infrequent_categories_,
                                    self._column_kinds):
            rare_set = set() if rare is None else set(rare.tolist())
            kept = [c for c in cats.tolist() if not is_missing(c) and c not in rare_set]
            self.categories_.append(_as_categories(kept, kind))
        sizes = np.asarray([1 + len(c) for c in self.categories_], dtype=np.int64)
        self.offsets_ = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._vocabulary_size = int(1 + sizes.sum())
        return self

    @property
    def vocabulary_size_(self) -> CategoryVocabulary:
        """Number of token ids, 0 (missing) included (``output="ids"`` only).

        What :class:`~sklearn_mtml.fusion.ModalityFusion` reads to declare the block as token
        ids: a :class:`~sklearn_mtml.blocks.CategoryVocabulary`, an ``int`` that also tells
        the network that the ids are categories (one per column), so that it embeds them with
        the categorical settings of its token encoder. With ``output="onehot"`` there is no
        such attribute (the block is numbers).
        """
        if self.output != "ids":
            raise AttributeError("vocabulary_size_ is defined for output='ids' only; "
                                 f"this CategoricalFeatures has output={self.output!r}")
        check_is_fitted(self, "_vocabulary_size")
        return CategoryVocabulary(self._vocabulary_size)

    def _ids(self, table: np.ndarray) -> np.ndarray:
        codes = self.encoder_.transform(table).astype(np.int64)
        ids = np.zeros(codes.shape, dtype=np.int64)
        for j, offset in enumerate(self.offsets_):
            code, n_kept = codes[:, j], len(self.categories_[j])
            col = offset + 1 + code                      # known, frequent categories
            col[(code == _UNKNOWN_CODE) | (code >= n_kept)] = offset  # unknown or rare
            col[code == _MISSING_CODE] = MISSING
            ids[:, j] = col
        return ids

    def _transform(self, X: Any) -> Any:
        ids = self._ids(self._table(X, reset=False))
        if self.output == "ids":
            return ids
        n, k = ids.shape
        rows = np.repeat(np.arange(n), k)
        flat = ids.ravel()
        present = flat != MISSING
        onehot = sparse.csr_matrix(
            (np.ones(int(present.sum()), dtype=np.float32), (rows[present], flat[present] - 1)),
            shape=(n, self._vocabulary_size - 1))
        return onehot.toarray() if self.dense else onehot

    def absent_items(self, X: Any) -> np.ndarray:
        """Rows whose selected columns are all missing (``None``/NaN/``pandas.NA``).

        The rule :class:`~sklearn_mtml.fusion.ModalityFusion` applies to the block's presence
        mask (the same as its own rule for a list of columns). A row with an unknown or rare
        category is present: its column gets the unknown id. Needs no fitting.

        Parameters
        ----------
        X : DataFrame, 2-D array-like or one column
            The columns given to ``transform``.

        Returns
        -------
        ndarray of bool of shape (n_rows,)
            True where every column of the row is missing.
        """
        if _is_series(X):
            X = X.to_frame()
        if _is_dataframe(X):
            table = np.empty(X.shape, dtype=object)
            for j in range(X.shape[1]):
                table[:, j] = X.iloc[:, j].to_numpy(dtype=object)
        else:
            table = np.asarray(X, dtype=object)
            table = table.reshape(len(table), -1)
        flat = table.ravel()
        missing = np.fromiter((is_missing(v) for v in flat), dtype=bool, count=flat.size)
        return missing.reshape(table.shape).all(axis=1)

    # ------------------------------------------------------------------ names and tags
    def _feature_names(self) -> list[str]:
        inputs = self._input_names()
        if self.output == "ids":
            return inputs
        names = []
        for col, cats in zip(inputs, self.categories_):
            names.append(f"{col}_infrequent_or_unknown")
            names.extend(f"{col}_{c}" for c in cats.tolist())
        return names

    def _input_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{j}" for j in range(self.n_features_in_)]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output features.

        ``output="ids"``: one name per input column (its name, or ``x0``, ``x1``, ...).
        ``output="onehot"``: ``"{column}_{category}"`` per category and
        ``"{column}_infrequent_or_unknown"`` for each column's unknown id.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input column names; must match ``feature_names_in_`` when that is set.

        Returns
        -------
        ndarray of str objects
            The names.
        """
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        saved = getattr(self, "feature_names_in_", None)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        try:
            return np.asarray(self._feature_names(), dtype=object)
        finally:
            if saved is None:
                del self.feature_names_in_
            else:
                self.feature_names_in_ = saved

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True  # a NaN is a missing category, id 0
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False
        return tags
