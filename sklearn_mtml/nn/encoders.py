"""Per-modality encoders: one block of inputs → one embedding per row.

The encoder of a block is chosen from the block's per-row shape:

- ``(d,)`` feature vectors: :class:`FeatureEncoder` (identity, or an MLP to ``embed_dim``);
- ``(T, F)`` frame sequences: :class:`SequenceEncoder` (1-D convolutions, masked mean pooling;
  all-zero frames are padding), or :class:`GRUEncoder` on request (``encoders={"audio":
  "gru"}``);
- ``(C, H, W)`` images: :class:`ImageEncoder` (a small CNN with global average pooling);
- ``(L,)`` token ids (blocks declared as tokens, e.g. from ``TextFeatures(output="sequence")``):
  :class:`TokenEncoder` (an embedding table, then mean pooling, a bidirectional GRU/LSTM or a
  small Transformer).

Every encoder maps ``(n, *shape)`` to ``(n, out_features)``. A new encoder is one class
registered with :func:`register_encoder`; any ``nn.Module`` subclass whose constructor takes
``(shape, embed_dim, **params)`` and sets ``out_features`` can also be passed as a class, and
any ``nn.Module`` *instance* (a torchvision or timm model, a pretrained network) as the
encoder itself (:class:`ModuleEncoder`: its output is flattened and its width inferred).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._registry import build, registrar
from ..blocks import CategoryVocabulary
from .layers import make_activation, masked_mean, mlp

__all__ = [
    "CATEGORICAL_TOKEN_PARAMS",
    "ENCODERS",
    "FeatureEncoder",
    "GRUEncoder",
    "ImageEncoder",
    "ModuleEncoder",
    "SequenceEncoder",
    "TokenEncoder",
    "default_encoder_kind",
    "make_encoder",
    "reads_tokens",
    "register_encoder",
]

#: Registry of encoders: name -> class ``(shape, embed_dim, **params) -> nn.Module``.
ENCODERS: dict[str, type[nn.Module]] = {}
#: Class decorator registering an encoder under a name (``@register_encoder("mine")``).
register_encoder = registrar(ENCODERS)

#: Default :class:`TokenEncoder` settings of a block of categorical ids (one id per column,
#: declared by a :class:`~sklearn_mtml.blocks.CategoryVocabulary`, as
#: :class:`~sklearn_mtml.features.CategoricalFeatures` does): the sum of the columns'
#: embeddings, initialised as a linear layer over their one-hot columns, without dropout.
#: Measured on the training part of the reviews benchmark (inner 80/20 split, seeds 0-2):
#: department accuracy 0.951 ± 0.003 from Clothing ID and Division, against 0.884 ± 0.005 with
#: the text settings (mean, N(0, 1) initialisation, dropout 0.3). ``encoder_params`` of the
#: block override them.
CATEGORICAL_TOKEN_PARAMS: dict[str, object] = {"pooling": "sum", "init": "linear",
                                               "dropout": 0.0}


@register_encoder("features")
class FeatureEncoder(nn.Module):
    """Encoder of a 2-D feature block: identity when ``embed_dim`` is ``None``, else an MLP.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(d,)``.
    embed_dim : int or None
        Output width; ``None`` passes the features through unchanged.
    activation : str, default="relu"
        Non-linearity of the MLP.
    dropout : float, default=0.0
        Dropout of the MLP.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        (d,) = shape
        self.net = nn.Identity() if embed_dim is None else mlp(
            d, [embed_dim], activation=activation, dropout=dropout)
        self.out_features = int(d if embed_dim is None else embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)


@register_encoder("sequence")
class SequenceEncoder(nn.Module):
    """Encoder of ``(n, T, F)`` frame sequences: two 1-D convolutions and masked mean pooling.

    Frames that are entirely zero are padding and do not enter the pooled mean.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(T, F)``.
    embed_dim : int or None
        Output width (``None``: 64).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout before pooling.
    kernel_size : int, default=5
        Convolution width in frames.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0, kernel_size: int = 5):
        super().__init__()
        _, f = shape
        width = int(embed_dim or 64)
        pad = kernel_size // 2
        self.conv = nn.Sequential(
            nn.Conv1d(f, width, kernel_size, padding=pad), make_activation(activation),
            nn.Conv1d(width, width, kernel_size, padding=pad), make_activation(activation),
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        frame_mask = x.abs().sum(-1) > 0  # (n, T)
        z = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (n, T, width)
        return masked_mean(self.dropout(z), frame_mask, dim=1)


def _padded_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Per-row length up to the last present position (padding is at the end); at least 1."""
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return (mask * positions).amax(1).clamp_min(1)


@register_encoder("gru")
class GRUEncoder(nn.Module):
    """Encoder of ``(n, T, F)`` frame sequences: a bidirectional GRU and masked mean pooling.

    All-zero frames at the end of a row are padding: the GRU runs over each row's own frames
    only (packed sequences), and the pooled mean skips the padding.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(T, F)``.
    embed_dim : int or None
        Output width (``None``: 64); each direction has ``embed_dim // 2`` units.
    activation : str, default="relu"
        Unused (accepted for a uniform constructor).
    dropout : float, default=0.0
        Dropout before pooling.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        _, f = shape
        width = int(embed_dim or 64)
        self.gru = nn.GRU(f, max(width // 2, 1), batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out_features = 2 * max(width // 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        frame_mask = x.abs().sum(-1) > 0
        packed = nn.utils.rnn.pack_padded_sequence(x, _padded_lengths(frame_mask).cpu(),
                                                   batch_first=True, enforce_sorted=False)
        z, _ = self.gru(packed)
        z, _ = nn.utils.rnn.pad_packed_sequence(z, batch_first=True, total_length=x.shape[1])
        return masked_mean(self.dropout(z), frame_mask, dim=1)


def _groups(channels: int, per_group: int = 8) -> int:
    """Number of GroupNorm groups: about ``per_group`` channels each, dividing ``channels``."""
    groups = max(channels // per_group, 1)
    while channels % groups:
        groups -= 1
    return groups


@register_encoder("image")
class ImageEncoder(nn.Module):
    """Encoder of ``(n, C, H, W)`` images: three conv blocks and a pooled spatial grid.

    Each block is a 3×3 convolution, group normalisation (statistics per image, so training
    on a hundred images in small batches is as stable as on many) and the activation, with
    2×2 max pooling between blocks.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(C, H, W)``.
    embed_dim : int or None
        Output width (``None``: 64).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout before the output projection.
    channels : sequence of int, default=(16, 32, 64)
        Channels of the conv blocks.
    pool_size : int, default=3
        The last block's maps are average-pooled to a ``pool_size × pool_size`` grid (not to
        one value per channel), so the projection sees where features are.
    max_side : int or None, default=64
        Images whose longer side exceeds it are first average-pooled to that size (aspect
        ratio kept), which keeps an epoch cheap; ``None`` keeps the full resolution.
    channels_last : bool or "auto", default="auto"
        Hold the convolution weights and the images in the ``torch.channels_last`` memory
        format (NHWC, what tensor cores and cuDNN's fastest kernels read). ``"auto"``: on a
        CUDA device (the weights are converted when the module moves there); ``True``:
        everywhere; ``False``: never. The outputs are the same up to float rounding.
    """

    def __init__(self, shape: Sequence[int], embed_dim: int | None, activation: str = "relu",
                 dropout: float = 0.0, channels: Sequence[int] = (16, 32, 64),
                 pool_size: int = 3, max_side: int | None = 64,
                 channels_last: bool | str = "auto"):
        super().__init__()
        if not (channels_last in (True, False) or channels_last == "auto"):
            raise ValueError("channels_last must be True, False or 'auto', got "
                             f"{channels_last!r}.")
        self.channels_last = channels_last
        c, h, w = (int(v) for v in shape)
        layers: list[nn.Module] = []
        if max_side is not None and max(h, w) > max_side:
            # large images are averaged down first: an epoch stays cheap on a CPU, and a few
            # hundred images cannot train a CNN at full resolution anyway
            ratio = max_side / max(h, w)
            layers.append(nn.AdaptiveAvgPool2d((max(round(h * ratio), 1),
                                                max(round(w * ratio), 1))))
        for i, out in enumerate(channels):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.GroupNorm(_groups(out), out),
                       make_activation(activation)]
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c = out
        self.features = nn.Sequential(*layers)
        # a coarse spatial grid rather than one global average: where a stroke is matters
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        width = int(embed_dim or 64)
        self.proj = nn.Sequential(nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(c * pool_size * pool_size, width),
                                  make_activation(activation))
        self.out_features = width
        self._apply_memory_format()

    def uses_channels_last(self, device: torch.device) -> bool:
        """Whether images and weights on ``device`` use ``torch.channels_last``."""
        if self.channels_last == "auto":
            return device.type == "cuda"
        return bool(self.channels_last)

    def _apply_memory_format(self) -> None:
        """Put the 4-D convolution weights in the memory format this device calls for."""
        for conv in self.features.modules():
            if isinstance(conv, nn.Conv2d):
                weight = conv.weight
                fmt = (torch.channels_last if self.uses_channels_last(weight.device)
                       else torch.contiguous_format)
                if not weight.is_contiguous(memory_format=fmt):
                    # in place of the data: the Parameter (and an optimizer's hold on it) stay
                    weight.data = weight.data.contiguous(memory_format=fmt)

    def _apply(self, fn: Any, recurse: bool = True) -> ImageEncoder:
        # ``.to(device)``, ``.cuda()``, ``.float()`` ... then the memory format of the device
        super()._apply(fn, recurse)
        self._apply_memory_format()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.uses_channels_last(x.device):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(self.pool(self.features(x)))


@register_encoder("tokens")
class TokenEncoder(nn.Module):
    """Encoder of ``(n, L)`` token ids: an embedding table, then a pooling over the tokens.

    Id 0 is padding: its embedding is zero and it never enters a pooled mean (an all-padding
    row, such as a missing text, encodes to zeros).

    Parameters
    ----------
    shape : tuple of int
        Per-row shape ``(L,)``.
    embed_dim : int or None
        Width of the token embeddings and of the output (``None``: 64).
    vocab_size : int
        Number of token ids (``TextFeatures.vocabulary_size_``).
    pooling : {"mean", "sum", "gru", "lstm", "transformer"}, default="mean"
        ``"mean"``: the mean of the token embeddings (a bag of words, fast and strong on small
        data); ``"sum"``: their sum (for categorical ids, one per column: a linear layer over
        the columns' one-hot indicators); ``"gru"`` / ``"lstm"``: a bidirectional recurrent
        layer over each row's own tokens (packed sequences), then the mean of its outputs;
        ``"transformer"``: learned positions and a pre-norm Transformer encoder with a padding
        mask, then the mean. Padding (id 0) never counts.
    activation : str, default="relu"
        Non-linearity of the Transformer's feed-forward layers (``"relu"`` or ``"gelu"``).
    dropout : float, default=0.3
        Dropout on the token embeddings (and inside the Transformer). The table has a row
        per word, which a few thousand texts overfit quickly: on the bundled reviews 0.3
        raised the mean test score of mean pooling from 0.648 to 0.669
        (``benchmarks/bench_text_encoders.py``).
    num_layers : int, default=1
        Recurrent or Transformer layers.
    num_heads : int, default=4
        Attention heads of the Transformer (must divide the width).
    init : {"normal", "linear"}, default="normal"
        Initial embeddings: ``"normal"``, N(0, 1) (PyTorch's ``nn.Embedding``); ``"linear"``,
        uniform in ``±1/sqrt(vocab_size)``, as ``nn.Linear`` initialises a layer over
        ``vocab_size`` one-hot inputs. Padding starts (and stays) at zero.

    Examples
    --------
    >>> import torch
    >>> enc = TokenEncoder((5,), 8, vocab_size=20, pooling="gru")
    >>> enc(torch.tensor([[2, 3, 4, 0, 0], [0, 0, 0, 0, 0]])).shape
    torch.Size([2, 8])
    """

    reads_tokens = True
    poolings = ("mean", "sum", "gru", "lstm", "transformer")

    def __init__(self, shape: Sequence[int], embed_dim: int | None, vocab_size: int,
                 pooling: str = "mean", activation: str = "relu", dropout: float = 0.3,
                 num_layers: int = 1, num_heads: int = 4, init: str = "normal"):
        super().__init__()
        (length,) = shape
        if pooling not in self.poolings:
            raise ValueError(f"Unknown token pooling {pooling!r}; expected one of "
                             f"{list(self.poolings)}.")
        if init not in ("normal", "linear"):
            raise ValueError(f"Unknown token embedding init {init!r}; expected 'normal' or "
                             "'linear'.")
        width = int(embed_dim or 64)
        self.pooling = pooling
        self.embedding = nn.Embedding(int(vocab_size), width, padding_idx=0)
        if init == "linear":
            bound = 1.0 / math.sqrt(int(vocab_size))
            with torch.no_grad():
                nn.init.uniform_(self.embedding.weight, -bound, bound)
                self.embedding.weight[0].zero_()
        self.dropout = nn.Dropout(dropout)
        self.out_features = width
        if pooling in ("gru", "lstm"):
            hidden = max(width // 2, 1)
            rnn = nn.GRU if pooling == "gru" else nn.LSTM
            self.rnn = rnn(width, hidden, num_layers=num_layers, batch_first=True,
                           bidirectional=True)
            self.out_features = 2 * hidden
        elif pooling == "transformer":
            if width % num_heads:
                raise ValueError(f"The token width ({width}) must be a multiple of num_heads "
                                 f"({num_heads}); change embed_dim or num_heads.")
            if activation not in ("relu", "gelu"):
                raise ValueError("The Transformer's activation must be 'relu' or 'gelu', got "
                                 f"{activation!r}.")
            self.position = nn.Embedding(int(length), width)
            layer = nn.TransformerEncoderLayer(width, num_heads, dim_feedforward=2 * width,
                                               dropout=dropout, activation=activation,
                                               batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, num_layers,
                                                     enable_nested_tensor=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ids = ids.long()
        mask = ids != 0
        z = self.dropout(self.embedding(ids))
        if self.pooling in ("gru", "lstm"):
            packed = nn.utils.rnn.pack_padded_sequence(z, _padded_lengths(mask).cpu(),
                                                       batch_first=True, enforce_sorted=False)
            z, _ = self.rnn(packed)
            z, _ = nn.utils.rnn.pad_packed_sequence(z, batch_first=True,
                                                    total_length=ids.shape[1])
        elif self.pooling == "transformer":
            positions = torch.arange(ids.shape[1], device=ids.device)
            z = z + self.position(positions)
            # a row of padding only attends to its first position (never to nothing: NaN)
            padding = ~mask & ((positions > 0) | mask.any(1, keepdim=True))
            z = self.transformer(z, src_key_padding_mask=padding)
        elif self.pooling == "sum":
            return (z * mask.unsqueeze(-1).to(z.dtype)).sum(1)  # padding never counts
        return masked_mean(z, mask, dim=1)


def _first_tensor(out: object) -> torch.Tensor:
    """Return the embedding in a module's output.

    That is the tensor itself, the first element of a tuple, or a Hugging Face model output's
    ``pooler_output`` (else ``last_hidden_state``).
    """
    for key in ("pooler_output", "last_hidden_state"):
        value = getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, (tuple, list)) and out:
        return _first_tensor(out[0])
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"An encoder module must return a tensor, got {type(out).__name__}.")
    return out


class ModuleEncoder(nn.Module):
    """Any ``nn.Module`` as a block encoder: its output flattened to ``(n, out_features)``.

    The width is inferred by running the module once on two rows of zeros (padding ids for
    a token block). A tuple output gives its first element; a Hugging Face model output its
    ``pooler_output`` (else ``last_hidden_state``). Outputs with more than two dimensions are
    flattened, so a module that returns feature maps should end with a pooling layer.

    Parameters
    ----------
    module : nn.Module
        The encoder; it is used as given (``make_encoder`` passes a copy, so that every fit
        starts from the same weights).
    shape : tuple of int
        Per-row shape of the block.
    tokens : bool, default=False
        The block holds token ids (the dry run uses int64 zeros).

    Examples
    --------
    >>> from torch import nn
    >>> enc = ModuleEncoder(nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(2)),
    ...                     (3, 16, 16))
    >>> enc.out_features
    16
    """

    def __init__(self, module: nn.Module, shape: Sequence[int], tokens: bool = False):
        super().__init__()
        self.module = module
        probe = torch.zeros((2, *shape), dtype=torch.long if tokens else torch.float32)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = self.forward(probe)
        except Exception as exc:
            raise ValueError(f"The encoder module {type(module).__name__} failed on a batch of "
                             f"shape {(2, *shape)}: {exc}") from exc
        finally:
            module.train(was_training)
        self.out_features = int(out.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return _first_tensor(self.module(x)).flatten(1)


def reads_tokens(kind: object) -> bool:
    """Whether an encoder (a registry name, a class or an instance) reads token ids."""
    cls = ENCODERS.get(kind) if isinstance(kind, str) else kind
    return bool(getattr(cls, "reads_tokens", False))


def default_encoder_kind(shape: Sequence[int], tokens: bool = False) -> str:
    """Encoder name for a block of per-row ``shape``: by its number of dimensions.

    ``tokens`` marks a 2-D block of token ids (``"tokens"``).
    """
    if tokens:
        return "tokens"
    kinds = {1: "features", 2: "sequence", 3: "image"}
    if len(shape) not in kinds:
        raise ValueError(
            f"cannot encode blocks with per-row shape {tuple(shape)}: expected (d,), (T, F) "
            "or (C, H, W)."
        )
    return kinds[len(shape)]


def make_encoder(shape: Sequence[int], embed_dim: int | None,
                 kind: str | type[nn.Module] | None = None, vocab_size: int | None = None,
                 block: str = "", **params) -> nn.Module:
    """Build the encoder of one block.

    Parameters
    ----------
    shape : tuple of int
        Per-row shape of the block.
    embed_dim : int or None
        Output width (``None`` keeps 2-D features as they are).
    kind : str, nn.Module subclass, nn.Module, encoder factory or None
        A key of :data:`ENCODERS` or an encoder class; an ``nn.Module`` instance (a copy
        becomes the encoder through :class:`ModuleEncoder`); an object with a method
        ``make_encoder(shape, embed_dim, vocab_size, **params)`` (e.g.
        :class:`~sklearn_mtml.nn.pretrained.PretrainedEncoder`); ``None`` chooses from
        ``shape``.
    vocab_size : int or None, default=None
        For a block of token ids: its vocabulary size (the encoder must read tokens).
    block : str, default=""
        The block's name, for messages.
    **params
        Passed to the encoder.

    Returns
    -------
    encoder : nn.Module
        With an ``out_features`` attribute.
    """
    tokens = vocab_size is not None
    kind = kind if kind is not None else default_encoder_kind(shape, tokens)
    label = f"encoder of block {block!r}" if block else "encoder"
    if isinstance(kind, nn.Module):
        if params:
            raise ValueError(f"The {label} is a module instance; it takes no encoder_params "
                             f"(got {sorted(params)}).")
        return ModuleEncoder(copy.deepcopy(kind), shape, tokens=tokens)
    if hasattr(kind, "make_encoder") and not isinstance(kind, type):
        encoder = kind.make_encoder(tuple(shape), embed_dim, vocab_size, **params)
        return _checked(encoder, label)
    explicit_reader = isinstance(kind, type) or hasattr(kind, "reads_tokens")
    if tokens != reads_tokens(kind) and (explicit_reader or kind in ENCODERS):
        name = kind if isinstance(kind, str) else kind.__name__
        if tokens:
            problem, advice = "token ids", "its encoder must read tokens (e.g. 'tokens')"
        else:
            problem, advice = "numbers", ("declare its vocabulary with "
                                          "ModalityBlocks(vocab_sizes=...) or use another "
                                          "encoder")
        raise ValueError(f"Block {block!r} holds {problem}, but the {label} {name!r} does not "
                         f"read them; {advice}.")
    if vocab_size is not None:  # tokens
        if isinstance(vocab_size, CategoryVocabulary) and (
                kind == "tokens" or kind is TokenEncoder):
            params = {**CATEGORICAL_TOKEN_PARAMS, **params}
        params = {"vocab_size": int(vocab_size), **params}
    encoder = build(ENCODERS, nn.Module, kind, tuple(shape), embed_dim, what=label,
                    prefix="module__encoder_params", **params)
    return _checked(encoder, label)


def _checked(encoder: nn.Module, label: str) -> nn.Module:
    if not isinstance(getattr(encoder, "out_features", None), int):
        raise TypeError(f"The {label} {type(encoder).__name__} must set an int "
                        "`out_features` (its output width).")
    return encoder
