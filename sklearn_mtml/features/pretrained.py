"""Pretrained Hugging Face models as scikit-learn transformers (``transformers``, optional).

* :class:`PretrainedTokenizer`: a column of texts → the model's token ids ``(n, max_length)``,
  0-padded (the package's convention), with ``vocabulary_size_`` so that
  :class:`~sklearn_mtml.fusion.ModalityFusion` declares the block as token ids and
  :class:`~sklearn_mtml.MultiTaskNet` feeds it to a
  :class:`~sklearn_mtml.nn.pretrained.PretrainedEncoder`.
* :class:`PretrainedFeatures`: images ``(n, C, H, W)`` or token ids ``(n, L)`` → the frozen
  backbone's embeddings ``(n, d)``, so that any scikit-learn estimator can learn on them.
"""

from __future__ import annotations

import copy
import os
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions
from .._device import resolve_device
from .._optional import require
from ..nn.pretrained import (
    PretrainedEncoder,
    _from_pretrained,
    model_to_block_ids,
    padding_id,
)
from ._base import ModalityTransformer, check_not_all_missing, is_missing, row_error
from .text import _is_blank

__all__ = ["PretrainedFeatures", "PretrainedTokenizer"]


def _transformers(needed_by: str):
    return require("transformers", needed_by=needed_by, extra="pretrained")


class PretrainedTokenizer(ModalityTransformer):
    r"""Texts to a pretrained model's token ids, 0-padded, for a pretrained text encoder.

    Each row of the input column is a string; ``None``/NaN rows are missing and give
    all-padding rows. The ids are the tokenizer's (special tokens included, truncated to
    ``max_length``), except that 0 is always padding: for a model whose padding id ``p`` is
    not 0 the ids 0 and ``p`` are swapped, as
    :class:`~sklearn_mtml.nn.pretrained.PretrainedEncoder` expects (see
    :func:`~sklearn_mtml.nn.pretrained.model_to_block_ids`).

    Parameters
    ----------
    model : str, os.PathLike or tokenizer
        A Hugging Face model name or a local directory (its tokenizer is loaded with
        ``AutoTokenizer.from_pretrained`` at fit), or a tokenizer object
        (``transformers.PreTrainedTokenizerBase``, e.g. a ``BertTokenizerFast``).
    max_length : int or None, default=128
        Tokens per row (special tokens included); longer texts keep their first tokens.
        ``None``: the longest text seen at fit (at most the tokenizer's
        ``model_max_length``).
    detect_empty : bool, default=True
        Treat an empty or whitespace-only string as carrying no signal: it gives an
        all-padding row, like a missing text, and :meth:`absent_items` reports it (so that
        :class:`~sklearn_mtml.fusion.ModalityFusion` marks it absent).
    local_files_only : bool, default=True
        Load a name from the local Hugging Face cache only (never download).
    cache_dir : str or None, default=None
        Hugging Face cache directory.

    Attributes
    ----------
    tokenizer_ : transformers.PreTrainedTokenizerBase
        The tokenizer.
    vocabulary_size_ : int
        Number of token ids (``len(tokenizer_)``): the block's vocabulary, read by
        ``ModalityFusion`` to declare the block as token ids.
    pad_token_id_ : int
        The model's padding id that block id 0 stands for (its padding token, else its
        end-of-sequence token, else 0).
    max_length_ : int
        Tokens per row.

    See Also
    --------
    sklearn_mtml.nn.pretrained.PretrainedEncoder : The model as a block encoder.
    PretrainedFeatures : The frozen model's embeddings of the ids.

    Examples
    --------
    >>> from transformers import BertTokenizerFast
    >>> import tempfile, os
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\n".join(
    ...     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "lovely", "dress"]))
    >>> tok = PretrainedTokenizer(BertTokenizerFast(vocab), max_length=6)
    >>> tok.fit_transform(["a lovely dress", None])
    array([[2, 5, 6, 7, 3, 0],
           [0, 0, 0, 0, 0, 0]])
    """

    _parameter_constraints: dict = {
        "model": "no_validation",
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "detect_empty": ["boolean"],
        "local_files_only": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(self, model: Any, max_length: int | None = 128, *, detect_empty: bool = True,
                 local_files_only: bool = True, cache_dir: str | None = None) -> None:
        self.model = model
        self.max_length = max_length
        self.detect_empty = detect_empty
        self.local_files_only = local_files_only
        self.cache_dir = cache_dir

    def _tokenizer(self) -> Any:
        transformers = _transformers("PretrainedTokenizer")
        if isinstance(self.model, (str, os.PathLike)):
            return _from_pretrained(transformers.AutoTokenizer, os.fspath(self.model),
                                    "tokenizer", self.local_files_only, self.cache_dir)
        if isinstance(self.model, transformers.PreTrainedTokenizerBase):
            return self.model
        raise TypeError("PretrainedTokenizer: model must be a Hugging Face model name, a "
                        "local directory or a transformers tokenizer, got "
                        f"{type(self.model).__name__}.")

    def _no_signal(self, row: int, item: Any) -> bool:
        return _is_blank(item)

    def _texts(self, X: Any, *, drop_blank: bool = False) -> tuple[list[str], np.ndarray, int]:
        items = self._items(X)
        drop_blank = drop_blank and self.detect_empty
        texts, rows = [], []
        for i, item in enumerate(items):
            if is_missing(item) or (drop_blank and _is_blank(item)):
                continue
            if not isinstance(item, str):
                raise row_error(TypeError, i, "expected a string (or None/NaN for a missing "
                                f"text), got {type(item).__name__} {item!r:.40}",
                                name=self._name)
            texts.append(item)
            rows.append(i)
        return texts, np.asarray(rows, dtype=np.int64), len(items)

    def _encode(self, texts: list[str], max_length: int | None) -> list[list[int]]:
        if not texts:
            return []
        kwargs = {"truncation": True, "max_length": max_length} if max_length else {}
        return list(self.tokenizer_(texts, add_special_tokens=True, padding=False,
                                    **kwargs)["input_ids"])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> PretrainedTokenizer:
        """Load the tokenizer (and find the sequence length when ``max_length=None``).

        Parameters
        ----------
        X : column of str
            The texts; missing rows (None/NaN) are allowed, but not all of them.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedTokenizer
            The fitted transformer.
        """
        texts, rows, n = self._texts(X)
        mask = np.ones(n, dtype=bool)
        mask[rows] = False
        check_not_all_missing(mask, self._name)
        self.tokenizer_ = self._tokenizer()
        self.vocabulary_size_ = int(len(self.tokenizer_))
        self.pad_token_id_ = padding_id(self.tokenizer_)
        if self.max_length is None:
            limit = getattr(self.tokenizer_, "model_max_length", None)
            limit = int(limit) if isinstance(limit, int) and limit < 1_000_000 else None
            longest = max((len(ids) for ids in self._encode(texts, limit)), default=1)
            self.max_length_ = max(int(longest), 1)
        else:
            self.max_length_ = int(self.max_length)
        return self

    def _transform(self, X: Any) -> np.ndarray:
        texts, rows, n = self._texts(X, drop_blank=True)
        out = np.zeros((n, self.max_length_), dtype=np.int64)
        for i, ids in zip(rows, self._encode(texts, self.max_length_)):
            row = np.asarray(ids[: self.max_length_], dtype=np.int64)
            out[i, : len(row)] = model_to_block_ids(row, self.pad_token_id_)
        return out

    def _feature_names(self) -> list[str]:
        return [f"token{t}" for t in range(self.max_length_)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True  # NaN rows are missing texts
        tags.input_tags.two_d_array = True  # a one-column 2-D array of strings is accepted
        return tags


class PretrainedFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Frozen embeddings of a pretrained Hugging Face model, for any scikit-learn estimator.

    Images ``(n, C, H, W)`` (``ImageFeatures(output="tensor")``) or token ids ``(n, L)``
    (:class:`PretrainedTokenizer`) go through the model in batches, without gradients, and
    come out as one float32 vector per row: the model's ``pooler_output``, or the mean of its
    last hidden states (see :class:`~sklearn_mtml.nn.pretrained.PretrainedEncoder`, which
    this transformer runs frozen). Rows whose input is all zeros (a missing image, an
    all-padding text) give all-zero rows. ``fit`` loads the model; it learns nothing from
    the data.

    Parameters
    ----------
    model : str, os.PathLike, transformers.PretrainedConfig or transformers.PreTrainedModel
        A Hugging Face name or local directory (loaded at fit, from the local cache only by
        default), a configuration (random weights) or a model instance (copied).
    pooling : {"auto", "pooler", "mean", "cls"}, default="auto"
        How the hidden states become one vector (see ``PretrainedEncoder``).
    image_size : "auto", int, (int, int) or None, default="auto"
        Size the images are resized to (``"auto"``: the configuration's ``image_size``
        when it has one).
    normalize : "auto", None or (sequence of float, sequence of float), default="auto"
        Per-channel normalisation of the images: ``"auto"`` uses the model's image processor
        statistics (ImageNet's when it has none), for images in [0, 1]; ``None`` leaves them.
    batch_size : int, default=32
        Rows per forward pass.
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present). A pickled
        transformer is loaded on the CPU when CUDA is missing.
    local_files_only : bool, default=True
        Load a name from the local Hugging Face cache only (never download).
    cache_dir : str or None, default=None
        Hugging Face cache directory.

    Attributes
    ----------
    encoder_ : PretrainedModule
        The frozen model with its pooling.
    input_kind_ : {"image", "tokens"}
        What the input holds.
    input_shape_ : tuple of int
        Per-row shape of the input at fit.
    n_features_in_ : int
        ``X.shape[1]``: channels of images, tokens per row of ids.
    device_ : torch.device
        Where the model runs.

    See Also
    --------
    sklearn_mtml.nn.pretrained.PretrainedEncoder : The model inside a ``MultiTaskNet``,
        frozen or fine-tuned.

    Examples
    --------
    >>> import numpy as np
    >>> from transformers import ResNetConfig
    >>> feats = PretrainedFeatures(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16],
    ...                                         depths=[1, 1]))
    >>> feats.fit_transform(np.random.rand(5, 3, 32, 32).astype("float32")).shape
    (5, 16)
    """

    _parameter_constraints: dict = {
        "model": "no_validation",
        "pooling": [StrOptions({"auto", "pooler", "mean", "cls"})],
        "image_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"),
                       tuple, list, None],
        "normalize": [StrOptions({"auto"}), tuple, list, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "local_files_only": ["boolean"],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(self, model: Any, *, pooling: str = "auto", image_size: Any = "auto",
                 normalize: Any = "auto", batch_size: int = 32, device: str = "cpu",
                 local_files_only: bool = True, cache_dir: str | None = None) -> None:
        self.model = model
        self.pooling = pooling
        self.image_size = image_size
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.local_files_only = local_files_only
        self.cache_dir = cache_dir

    def _factory(self) -> PretrainedEncoder:
        return PretrainedEncoder(self.model, freeze=True, pooling=self.pooling,
                                 image_size=self.image_size, normalize=self.normalize,
                                 local_files_only=self.local_files_only,
                                 cache_dir=self.cache_dir)

    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=None,
                          ensure_min_features=1)
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"PretrainedFeatures: expected numbers (images or token ids), got "
                            f"dtype {X.dtype}.")
        if X.ndim == 2:
            whole = X.dtype.kind in "biu" or bool(np.all(np.mod(X, 1) == 0))
            if not whole or (X.size and X.min() < 0):
                raise ValueError(
                    "PretrainedFeatures: a 2-D input is read as token ids (n, L), which must "
                    "be non-negative whole numbers (0 is padding): tokenize texts with "
                    "PretrainedTokenizer; images must be 4-D (n, C, H, W) "
                    "(ImageFeatures(output='tensor')).")
            return X.astype(np.int64, copy=False)
        if X.ndim == 4:
            return X.astype(np.float32, copy=False)
        raise ValueError(f"PretrainedFeatures: expected images (n, C, H, W) or token ids "
                         f"(n, L), got an array of shape {X.shape}.")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> PretrainedFeatures:
        """Load the model and check that it reads ``X``.

        Parameters
        ----------
        X : ndarray of shape (n, C, H, W) or (n, L)
            Images or token ids.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatures
            The fitted transformer.
        """
        X = self._validate(X, reset=True)
        factory = self._factory()
        tokens = X.ndim == 2
        vocab = int(X.max()) + 1 if tokens and X.size else (1 if tokens else None)
        self.encoder_ = factory.make_encoder(X.shape[1:], None, vocab)
        self.input_kind_ = self.encoder_.kind
        self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        self.device_ = resolve_device(str(self.device))
        self.encoder_.to(self.device_).eval()
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Embed the rows of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n, C, H, W) or (n, L)
            Images or token ids, of the per-row shape seen at fit (images may differ in
            size when the model resizes them).

        Returns
        -------
        ndarray of float32 of shape (n, d)
            One embedding per row; all-zero input rows give all-zero rows.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if (X.ndim == 2) != (self.input_kind_ == "tokens") or (
                X.ndim == 2 and X.shape[1:] != self.input_shape_):
            raise ValueError(f"PretrainedFeatures: X has per-row shape {X.shape[1:]}, but "
                             f"the transformer was fitted on {self.input_shape_}.")
        if self.input_kind_ == "tokens":
            vocab = getattr(self.encoder_.backbone.config, "vocab_size", None)
            if vocab is not None and X.size and int(X.max()) >= vocab:
                raise ValueError(f"PretrainedFeatures: token id {int(X.max())} is beyond the "
                                 f"model's vocabulary ({vocab} ids).")
        out = np.zeros((X.shape[0], self.encoder_.out_features), dtype=np.float32)
        self.encoder_.eval()
        with torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                batch = torch.as_tensor(X[start:start + self.batch_size]).to(self.device_)
                out[start:start + len(batch)] = self.encoder_(batch).cpu().numpy()
        empty = ~X.reshape(X.shape[0], -1).any(axis=1)
        out[empty] = 0.0
        return out

    @property
    def _n_features_out(self) -> int:
        """Number of output features (the embedding width)."""
        return int(self.encoder_.out_features)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        encoder = state.get("encoder_")
        if encoder is not None and self.device_.type != "cpu":
            state = dict(state)
            state["encoder_"] = copy.deepcopy(encoder).cpu()  # loads without a GPU
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        device = getattr(self, "device_", None)
        if device is not None and device.type != "cpu":
            if device.type == "cuda" and not torch.cuda.is_available():
                self.device_ = torch.device("cpu")
            self.encoder_.to(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = []  # float32 out, whatever the input
        tags.input_tags.allow_nan = False
        return tags
