"""Text features: TF-IDF (sparse or dense), LSA (TruncatedSVD) or token-id sequences."""

from __future__ import annotations

from collections import Counter
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from .._compat import Interval, StrOptions, _fit_context
from ._base import ModalityTransformer, check_not_all_missing, is_missing, row_error

__all__ = ["TextFeatures"]

PAD, UNKNOWN = 0, 1


def _is_blank(item: Any) -> bool:
    """The text "no signal" rule: an empty or whitespace-only string."""
    return isinstance(item, str) and not item.strip()


def _scatter_rows(M: sparse.csr_matrix, rows: np.ndarray, n: int) -> sparse.csr_matrix:
    """Place the rows of ``M`` at positions ``rows`` (increasing) of an n-row CSR matrix."""
    counts = np.zeros(n, dtype=np.int64)
    counts[rows] = np.diff(M.indptr)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sparse.csr_matrix((M.data, M.indices, indptr), shape=(n, M.shape[1]))


class TextFeatures(ModalityTransformer):
    r"""Texts to TF-IDF features, LSA components or padded token-id sequences.

    Each row of the input column is a string; ``None``/NaN rows are missing. Built on
    scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`, whose common
    parameters are exposed directly (so that ``GridSearchCV`` can tune them).

    Parameters
    ----------
    output : {"tfidf", "sequence"}, default="tfidf"
        ``"tfidf"``: TF-IDF weights (``n``, vocabulary size), a float32 CSR sparse matrix, or a
        dense ndarray with ``dense=True``, or the ``svd_components`` LSA components.
        ``"sequence"``: int64 token ids ``(n, max_length_)`` for an embedding layer, padded at
        the end with 0; id 1 is an unknown token (not in the vocabulary); known tokens have
        ids 2, 3, ... in order of decreasing frequency at fit.
    max_features : int or None, default=None
        Vocabulary size: the most frequent terms (both outputs). None keeps every term.
    ngram_range : (int, int), default=(1, 1)
        N-gram range of the analyzer. With ``output="sequence"`` the sequence is what the
        analyzer yields (all unigrams, then all bigrams, ...): keep (1, 1) for sequences.
    min_df, max_df : float or int, default=1 and 1.0
        Document-frequency bounds of the TF-IDF vocabulary (``output="tfidf"`` only).
    analyzer : {"word", "char", "char_wb"}, default="word"
        Tokens are words or character n-grams.
    stop_words : "english", list or None, default=None
        Words removed by the analyzer.
    lowercase : bool, default=True
        Lowercase before tokenising.
    sublinear_tf : bool, default=False
        Use ``1 + log(tf)``.
    token_pattern : str, default=r"(?u)\b\w\w+\b"
        Regular expression of a word token.
    dense : bool, default=False
        Return the TF-IDF matrix as a dense ndarray (needed for ``set_output(transform=
        "pandas")``; mind the memory with large vocabularies).
    svd_components : int or None, default=None
        When set, ``output="tfidf"`` returns the dense ``(n, svd_components)`` projection of
        the TF-IDF matrix on a :class:`~sklearn.decomposition.TruncatedSVD` (latent semantic
        analysis) fitted on the training texts.
    max_length : int or None, default=None
        Tokens per sequence (``output="sequence"``); longer texts keep their first tokens.
        None uses the longest text seen at fit (``max_length_``).
    random_state : int, RandomState or None, default=None
        Seed of the TruncatedSVD.
    detect_empty : bool, default=True
        Treat an empty or whitespace-only string as carrying no signal: at transform it
        gives an all-zero row (padding ids for sequences), like a missing text, whatever the
        analyzer (a ``"char"`` analyzer would otherwise see the spaces), and
        :meth:`absent_items` reports it so that :class:`~sklearn_mtml.fusion.ModalityFusion`
        marks it absent. At fit it is an ordinary text. False: only ``None``/NaN rows are
        missing.

    Attributes
    ----------
    vectorizer_ : TfidfVectorizer
        The fitted vectorizer (``output="tfidf"``).
    svd_ : TruncatedSVD
        The fitted SVD (when ``svd_components`` is set).
    vocabulary_ : dict of str to int
        Token ids of ``output="sequence"`` (from 2; 0 is padding, 1 unknown).
    vocabulary_size_ : int
        Number of token ids including padding and unknown (``output="sequence"``): the
        size of the embedding table a network needs.
    max_length_ : int
        Sequence length (``output="sequence"``).

    Notes
    -----
    Missing rows (``None``, NaN), and blank texts with ``detect_empty=True``, give all-zero
    rows: zero TF-IDF weights, zero components, or a sequence of padding ids. Any other
    non-string row raises a ``TypeError`` naming it.

    Examples
    --------
    >>> from sklearn_mtml.features import TextFeatures
    >>> texts = ["a lovely dress", None, "the dress runs small", "lovely colour"]
    >>> tf = TextFeatures().fit(texts)
    >>> Xt = tf.transform(texts)
    >>> Xt.shape, Xt.dtype, Xt[1].nnz
    ((4, 6), dtype('float32'), 0)
    >>> seq = TextFeatures(output="sequence").fit(texts)
    >>> seq.transform(["lovely dress, truly", None])
    array([[3, 2, 1, 0],
           [0, 0, 0, 0]])
    """

    _parameter_constraints: dict = {
        "output": [StrOptions({"tfidf", "sequence"})],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "ngram_range": [tuple],
        "min_df": [Interval(Real, 0, 1, closed="both"), Interval(Integral, 1, None, closed="left")],
        "max_df": [Interval(Real, 0, 1, closed="both"), Interval(Integral, 1, None, closed="left")],
        "analyzer": [StrOptions({"word", "char", "char_wb"})],
        "stop_words": [StrOptions({"english"}), list, None],
        "lowercase": ["boolean"],
        "sublinear_tf": ["boolean"],
        "token_pattern": [str],
        "dense": ["boolean"],
        "svd_components": [Interval(Integral, 1, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "detect_empty": ["boolean"],
    }

    def __init__(
        self,
        output: str = "tfidf",
        *,
        max_features: int | None = None,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: float | int = 1,
        max_df: float | int = 1.0,
        analyzer: str = "word",
        stop_words: str | list[str] | None = None,
        lowercase: bool = True,
        sublinear_tf: bool = False,
        token_pattern: str = r"(?u)\b\w\w+\b",
        dense: bool = False,
        svd_components: int | None = None,
        max_length: int | None = None,
        random_state: Any = None,
        detect_empty: bool = True,
    ) -> None:
        self.output = output
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.analyzer = analyzer
        self.stop_words = stop_words
        self.lowercase = lowercase
        self.sublinear_tf = sublinear_tf
        self.token_pattern = token_pattern
        self.dense = dense
        self.svd_components = svd_components
        self.max_length = max_length
        self.random_state = random_state
        self.detect_empty = detect_empty

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            max_features=self.max_features, ngram_range=tuple(self.ngram_range),
            min_df=self.min_df, max_df=self.max_df, analyzer=self.analyzer,
            stop_words=self.stop_words, lowercase=self.lowercase,
            sublinear_tf=self.sublinear_tf, token_pattern=self.token_pattern, dtype=np.float32,
        )

    def _no_signal(self, row: int, item: Any) -> bool:
        return _is_blank(item)

    def _texts(self, X: Any, *, drop_blank: bool = False) -> tuple[list[str], np.ndarray, int]:
        """Present texts, their row positions, and the number of rows.

        ``drop_blank`` (at transform, with ``detect_empty=True``) leaves out blank texts too.
        """
        items = self._items(X)
        drop_blank = drop_blank and self.detect_empty
        texts, rows = [], []
        for i, item in enumerate(items):
            if is_missing(item) or (drop_blank and _is_blank(item)):
                continue
            if not isinstance(item, str):
                raise row_error(
                    TypeError, i,
                    f"expected a string (or None/NaN for a missing text), got "
                    f"{type(item).__name__} {item!r:.40}",
                    name=self._name,
                )
            texts.append(item)
            rows.append(i)
        return texts, np.asarray(rows, dtype=np.int64), len(items)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> TextFeatures:
        """Learn the vocabulary (and the SVD, or the sequence length).

        Parameters
        ----------
        X : column of str
            The texts; missing rows (None/NaN) are allowed, but not all of them.
        y : None
            Ignored.

        Returns
        -------
        self : TextFeatures
            The fitted transformer.
        """
        ngram = tuple(self.ngram_range)
        if len(ngram) != 2 or not all(isinstance(v, Integral) for v in ngram) or not (
            1 <= ngram[0] <= ngram[1]
        ):
            raise ValueError(
                "TextFeatures: the 'ngram_range' parameter must be a pair (min_n, max_n) with "
                f"1 <= min_n <= max_n, got {self.ngram_range!r}"
            )
        texts, rows, n = self._texts(X)
        mask = np.ones(n, dtype=bool)
        mask[rows] = False
        check_not_all_missing(mask, self._name)
        if self.output == "sequence":
            analyze = self._vectorizer().build_analyzer()
            counts: Counter = Counter()
            longest = 1
            for text in texts:
                tokens = analyze(text)
                counts.update(tokens)
                longest = max(longest, len(tokens))
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            if self.max_features is not None:
                ranked = ranked[: self.max_features]
            self.vocabulary_ = {tok: k + 2 for k, (tok, _) in enumerate(ranked)}
            self.vocabulary_size_ = len(self.vocabulary_) + 2
            self.max_length_ = int(self.max_length or longest)
            return self
        vec = self._vectorizer()
        try:
            tfidf = vec.fit_transform(texts)
        except ValueError as exc:  # e.g. an empty vocabulary
            raise ValueError(f"TextFeatures: {exc}") from exc
        self.vectorizer_ = vec
        if self.svd_components is not None:
            n_terms = tfidf.shape[1]
            if self.svd_components >= n_terms:
                raise ValueError(
                    f"TextFeatures: svd_components={self.svd_components} must be smaller than "
                    f"the vocabulary size ({n_terms} terms)"
                )
            self.svd_ = TruncatedSVD(self.svd_components, random_state=self.random_state)
            self.svd_.fit(tfidf)
        return self

    def _transform(self, X: Any) -> Any:
        texts, rows, n = self._texts(X, drop_blank=True)
        if self.output == "sequence":
            analyze = self._vectorizer().build_analyzer()
            L = self.max_length_
            out = np.zeros((n, L), dtype=np.int64)
            vocab = self.vocabulary_
            for i, text in zip(rows, texts):
                ids = [vocab.get(tok, UNKNOWN) for tok in analyze(text)[:L]]
                out[i, : len(ids)] = ids
            return out
        n_terms = len(self.vectorizer_.vocabulary_)
        tfidf = (
            self.vectorizer_.transform(texts) if texts
            else sparse.csr_matrix((0, n_terms), dtype=np.float32)
        )
        if self.svd_components is not None:
            out = np.zeros((n, self.svd_components), dtype=np.float32)
            if texts:
                out[rows] = self.svd_.transform(tfidf)
            return out
        full = _scatter_rows(tfidf.tocsr(), rows, n)
        return full.toarray() if self.dense else full

    def _feature_names(self) -> list[str]:
        if self.output == "sequence":
            return [f"token{t}" for t in range(self.max_length_)]
        if self.svd_components is not None:
            return [f"svd{k}" for k in range(self.svd_components)]
        return list(self.vectorizer_.get_feature_names_out())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True  # NaN rows are missing texts
        # a one-column 2-D array (or DataFrame) of strings is accepted
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False
        return tags
