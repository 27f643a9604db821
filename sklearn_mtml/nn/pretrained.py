"""Pretrained Hugging Face models as block encoders (``transformers``, optional).

:class:`PretrainedEncoder` is an *encoder factory*: pass it as the encoder of an image block
or a token-id block and the network built at fit contains the pretrained backbone::

    MultiTaskNet(module__encoders={"image": PretrainedEncoder("microsoft/resnet-18")})

The model is a Hugging Face name or a local directory (loaded with
``transformers.AutoModel.from_pretrained`` when the network is built, from the local cache
only by default), a ``transformers.PretrainedConfig`` (random weights: tiny models for tests)
or a ``transformers.PreTrainedModel`` instance (copied). Image blocks ``(n, C, H, W)`` are fed
as ``pixel_values``, token-id blocks ``(n, L)`` as ``input_ids`` with ``attention_mask = ids
!= 0``, waveform blocks ``(n, n_samples)`` (zero-padded at the end) as ``input_values``
(wav2vec 2.0, HuBERT, WavLM; unscaled by the network, normalised per clip), and log-mel
spectrogram blocks ``(n, frames, mel bins)`` of the Audio Spectrogram Transformer (AST) as
its ``input_values``, as they come. The output is
the model's ``pooler_output`` when it has one, else the mean of its last hidden states over the
tokens or frames (padding excluded) or over the image positions.

Token ids follow the package's convention: **0 is padding**. For a model whose own padding id
``p`` is not 0 (RoBERTa: ``p = 1``, and its id 0 is the ``<s>`` token every text starts with)
the ids 0 and ``p`` are swapped between the block and the model: the block holds 0 where the
model's padding goes and ``p`` where the model's token 0 goes.
:class:`~sklearn_mtml.features.PretrainedTokenizer` writes blocks that way, and
:func:`model_to_block_ids` converts ids from any other tokenisation. A model without a padding
token (GPT-2) uses its end-of-sequence token as ``p``, as Hugging Face pipelines do.

The backbone is frozen by default (no gradients, always in eval mode, run under
``torch.no_grad()``); ``freeze=False`` fine-tunes it, usually with a smaller learning rate in
its own parameter group (``optimizer__param_groups=[("encoders.image.backbone.*", {"lr":
1e-5})]``).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._optional import require
from .layers import masked_mean

__all__ = [
    "PretrainedEncoder",
    "PretrainedModule",
    "block_to_model_ids",
    "load_pretrained",
    "model_to_block_ids",
    "padding_id",
]

#: Per-channel mean and standard deviation of ImageNet, the normalisation most vision models
#: were pretrained with (used by ``normalize="auto"`` when the model has no image processor).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_POOLINGS = ("auto", "pooler", "mean", "cls")
#: What a backbone reads: images (``pixel_values``), token ids (``input_ids``) or waveforms
#: (``input_values``: wav2vec 2.0, HuBERT, WavLM, ...).
_KINDS = ("image", "tokens", "audio")
_INPUT_KINDS = {"pixel_values": "image", "input_ids": "tokens", "input_values": "audio"}
#: Memory that a frozen encoder's feature cache may use (bytes).
_CACHE_BYTES = 512 * 2**20


def _transformers():
    return require("transformers", needed_by="PretrainedEncoder", extra="pretrained")


def _looks_like_path(name: str) -> bool:
    """Whether ``name`` is a directory path rather than a Hub name (``"org/model"``)."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name
            or name.strip("/").count("/") > 1)


def _missing_weights_error(name: str, what: str, local_files_only: bool, cache_dir: Any,
                           exc: BaseException) -> OSError:
    """An OSError that says how to obtain the files of ``name``."""
    if _looks_like_path(name) and not os.path.isdir(os.path.expanduser(name)):
        return OSError(
            f"Could not load the pretrained {what} from {name!r}: no such directory. Pass the "
            "directory written by `save_pretrained(path)` (it holds config.json and the "
            f"weights), or a Hugging Face model name. ({exc})")
    where = (f"the Hugging Face cache (cache_dir={cache_dir!r})" if cache_dir is not None
             else "the local Hugging Face cache (~/.cache/huggingface/hub, or $HF_HOME/hub)")
    if local_files_only:
        advice = (
            f"Its files are not in {where}, and local_files_only=True forbids downloading "
            f"them. On a machine with internet access run `hf download {name}` (or "
            f"`huggingface-cli download {name}`) and copy the cache to this machine, or save "
            f"the model there with `AutoModel.from_pretrained({name!r}).save_pretrained(path)`"
            f" (and its tokenizer or image processor alike) and pass the directory `path` "
            f"instead of the name; or pass local_files_only=False to let transformers "
            f"download it.")
    else:
        advice = (f"It could not be downloaded either (no connection, or no such model on the "
                  f"Hugging Face Hub); check the name, or run `hf download {name}` on a "
                  f"connected machine and copy the cache, or pass a local directory.")
    return OSError(f"Could not load the pretrained {what} {name!r}. {advice} "
                   f"(transformers said: {exc})")


def _from_pretrained(cls: Any, name: str, what: str, local_files_only: bool, cache_dir: Any,
                     **kwargs: Any) -> Any:
    """``cls.from_pretrained(name, ...)`` with a helpful error when the files are missing."""
    try:
        return cls.from_pretrained(os.path.expanduser(name), local_files_only=local_files_only,
                                   cache_dir=cache_dir, **kwargs)
    except OSError as exc:
        raise _missing_weights_error(name, what, local_files_only, cache_dir, exc) from exc


def _config_of(model: Any, local_files_only: bool = True, cache_dir: Any = None) -> Any:
    """The ``PretrainedConfig`` of a model name/path, config or model instance."""
    transformers = _transformers()
    if isinstance(model, transformers.PretrainedConfig):
        return model
    if isinstance(model, transformers.PreTrainedModel):
        return model.config
    if isinstance(model, (str, os.PathLike)):
        return _from_pretrained(transformers.AutoConfig, os.fspath(model), "model configuration",
                                local_files_only, cache_dir)
    raise TypeError("model must be a Hugging Face model name or local directory, a "
                    "transformers.PretrainedConfig or a transformers.PreTrainedModel, got "
                    f"{type(model).__name__}. Any other nn.Module can be passed as the encoder "
                    "itself (module__encoders={'block': module}).")


def _input_name(model: Any, config: Any) -> str:
    """The model's main input: ``"pixel_values"``, ``"input_ids"``, ..."""
    transformers = _transformers()
    if isinstance(model, transformers.PreTrainedModel):
        return str(model.main_input_name)
    try:  # the class AutoModel would build for this config
        cls = transformers.AutoModel._model_mapping[type(config)]
        return str(cls.main_input_name)
    except (KeyError, AttributeError, ValueError):
        pass
    if hasattr(config, "num_channels"):
        return "pixel_values"
    return "input_ids" if hasattr(config, "vocab_size") else "unknown"


def padding_id(config_or_tokenizer: Any) -> int:
    """The model id that a block's padding id 0 stands for.

    The model's padding token, else its end-of-sequence token (GPT-2 has no padding token),
    else 0. Works on a ``PretrainedConfig`` and on a tokenizer alike.

    Parameters
    ----------
    config_or_tokenizer : PretrainedConfig or tokenizer
        Anything with ``pad_token_id`` / ``eos_token_id`` attributes.

    Returns
    -------
    int
    """
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(config_or_tokenizer, attr, None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return 0


def model_to_block_ids(ids: Any, pad_id: int) -> Any:
    """Convert a model's token ids to block ids (0 = padding): swap 0 and ``pad_id``.

    Parameters
    ----------
    ids : ndarray or Tensor of int
        Token ids as the model's tokenizer writes them (padding = ``pad_id``).
    pad_id : int
        The model's padding id (:func:`padding_id`).

    Returns
    -------
    ndarray or Tensor
        The same ids with 0 and ``pad_id`` exchanged (unchanged when ``pad_id`` is 0). The
        swap is its own inverse: :func:`block_to_model_ids` is the same function.

    Examples
    --------
    >>> import numpy as np
    >>> model_to_block_ids(np.array([[0, 31, 2, 1, 1]]), pad_id=1)  # RoBERTa: <s> ... </s> pad
    array([[ 1, 31,  2,  0,  0]])
    """
    if not pad_id:
        return ids
    if isinstance(ids, torch.Tensor):
        return torch.where(ids == 0, pad_id, torch.where(ids == pad_id, 0, ids))
    ids = np.asarray(ids)
    return np.where(ids == 0, pad_id, np.where(ids == pad_id, 0, ids)).astype(ids.dtype)


#: Block ids to model ids: the same swap (it is its own inverse).
block_to_model_ids = model_to_block_ids


def load_pretrained(model: Any, local_files_only: bool = True, cache_dir: Any = None
                    ) -> nn.Module:
    """Return a fresh ``transformers`` backbone for ``model``.

    Parameters
    ----------
    model : str, os.PathLike, PretrainedConfig or PreTrainedModel
        A Hugging Face name or local directory (``AutoModel.from_pretrained``, in float32),
        a configuration (``AutoModel.from_config``: random weights) or a model instance
        (deep-copied; a model with a task head gives its base model).
    local_files_only : bool, default=True
        Never download: names are looked up in the local Hugging Face cache only.
    cache_dir : str or None, default=None
        Hugging Face cache directory (default: ``$HF_HOME/hub``).

    Returns
    -------
    nn.Module
        The base model (the encoder of an encoder-decoder model such as T5).

    Raises
    ------
    OSError
        When the files of a name or directory are missing, with how to obtain them.
    """
    transformers = _transformers()
    if isinstance(model, transformers.PreTrainedModel):
        backbone = copy.deepcopy(model.base_model)
    elif isinstance(model, transformers.PretrainedConfig):
        backbone = transformers.AutoModel.from_config(model)
    elif isinstance(model, (str, os.PathLike)):
        backbone = _from_pretrained(transformers.AutoModel, os.fspath(model), "model",
                                    local_files_only, cache_dir).float()
    else:
        _config_of(model)  # raises the TypeError
        raise AssertionError  # pragma: no cover
    if getattr(backbone.config, "is_encoder_decoder", False) and hasattr(backbone,
                                                                         "get_encoder"):
        backbone = backbone.get_encoder()
    return backbone


def _image_stats(model: Any, local_files_only: bool, cache_dir: Any
                 ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Mean and std of the model's image processor (ImageNet's when it has none).

    ``None`` when the processor says not to normalise.
    """
    transformers = _transformers()
    source = model
    if isinstance(model, transformers.PreTrainedModel):
        source = getattr(model, "name_or_path", "") or None
    if isinstance(source, (str, os.PathLike)):
        try:
            from transformers.image_processing_utils import ImageProcessingMixin

            found, _ = ImageProcessingMixin.get_image_processor_dict(
                os.path.expanduser(os.fspath(source)), local_files_only=local_files_only,
                cache_dir=cache_dir)
        except Exception:  # noqa: BLE001 - no processor saved: ImageNet's statistics
            found = {}
        if found.get("do_normalize") is False:
            return None
        if found.get("image_mean") is not None and found.get("image_std") is not None:
            return tuple(np.atleast_1d(found["image_mean"]).tolist()), tuple(
                np.atleast_1d(found["image_std"]).tolist())
    return IMAGENET_MEAN, IMAGENET_STD


class PretrainedModule(nn.Module):
    """A ``transformers`` backbone as a block encoder: ``(n, *shape) → (n, out_features)``.

    Built by :meth:`PretrainedEncoder.make_encoder`; see :class:`PretrainedEncoder` for the
    parameters.

    Parameters
    ----------
    backbone : transformers.PreTrainedModel
        The model (used as given).
    kind : {"image", "tokens"}
        What the block holds.
    shape : tuple of int
        Per-row shape of the block.
    freeze : bool, default=True
        Frozen backbone: no gradients, always in eval mode, run under ``torch.no_grad()``.
    pooling : {"auto", "pooler", "mean", "cls"}, default="auto"
        See :class:`PretrainedEncoder`.
    image_size : tuple of int or None, default=None
        Images are resized (bilinear) to this ``(height, width)``; ``None`` keeps their size.
    pixel_stats : (sequence of float, sequence of float) or None, default=None
        Per-channel mean and standard deviation applied to the images after resizing.
    pad_id : int, default=0
        The model's padding id (block id 0 stands for it, see :func:`model_to_block_ids`).
    out_dim : int or None, default=None
        Add a trainable linear projection of the pooled features to this width.
    cache_features : bool, default=False
        Frozen backbones only: remember the pooled features of every input row (keyed by a
        hash of its values), so that each distinct row runs through the backbone once.

    Attributes
    ----------
    out_features : int
        Output width (``out_dim``, else ``feature_dim``).
    feature_dim : int
        Width of the backbone's pooled features (before the projection): the model's
        ``hidden_size`` (``hidden_sizes[-1]`` for ResNet and ConvNeXt), found by running it
        once on one row when the module is built.
    """

    def __init__(self, backbone: nn.Module, kind: str, shape: Sequence[int],
                 freeze: bool = True, pooling: str = "auto",
                 image_size: tuple[int, int] | None = None,
                 pixel_stats: tuple[Sequence[float], Sequence[float]] | None = None,
                 pad_id: int = 0, out_dim: int | None = None, cache_features: bool = False):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {list(_KINDS)}, got {kind!r}.")
        if pooling not in _POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of {list(_POOLINGS)}.")
        if cache_features and not freeze:
            raise ValueError("cache_features=True needs a frozen backbone (freeze=True): a "
                             "fine-tuned backbone's features change at every step.")
        self.backbone = backbone
        self.kind = kind
        self.shape = tuple(int(s) for s in shape)
        self.freeze = bool(freeze)
        self.pooling = pooling
        self.image_size = None if image_size is None else tuple(int(s) for s in image_size)
        self.pad_id = int(pad_id)
        self.cache_features = bool(cache_features)
        self._cache: dict[bytes, torch.Tensor] = {}
        config = backbone.config
        self.channels = int(getattr(config, "num_channels", 3))
        if kind == "image":
            c = self.shape[0]
            if c != self.channels and 1 not in (c, self.channels):
                raise ValueError(f"The images have {c} channels but the model reads "
                                 f"{self.channels}; only 1 ↔ {self.channels} channels are "
                                 "converted (grey images are repeated).")
        if pixel_stats is not None:
            mean, std = (torch.as_tensor(np.asarray(v, dtype=np.float32), device=self._device()
                                         ).reshape(1, -1, 1, 1) for v in pixel_stats)
            if mean.shape[1] not in (1, self.channels) or std.shape[1] not in (1,
                                                                               self.channels):
                raise ValueError(f"normalize needs 1 or {self.channels} means and standard "
                                 f"deviations, got {mean.shape[1]} and {std.shape[1]}.")
            self.register_buffer("pixel_mean", mean)
            self.register_buffer("pixel_std", std)
        else:
            self.pixel_mean = self.pixel_std = None
        if freeze:
            backbone.requires_grad_(False)
            backbone.eval()
        self.feature_dim = self._width()
        self.proj = None if out_dim is None else nn.Linear(self.feature_dim, int(out_dim))
        self.out_features = int(self.feature_dim if out_dim is None else out_dim)

    # -- construction helpers ---------------------------------------------------------------
    def _width(self) -> int:
        """Width of the pooled features, from running the backbone once on one row.

        It is the configuration's ``hidden_size`` (``hidden_sizes[-1]`` for ResNet and
        ConvNeXt) for most models; the dry run also finds it where the configuration does not
        say it, and turns a block the model cannot read into a clear error now.
        """
        if self.kind == "tokens":
            probe = torch.ones((1, min(self.shape[0], 2)), dtype=torch.long)
        elif self.kind == "audio":
            probe = torch.ones((1, *self.shape), dtype=torch.float32)
        else:
            probe = torch.zeros((1, *self.shape), dtype=torch.float32)
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.no_grad():
                return int(self._features(probe.to(self._device())).shape[1])
        except Exception as exc:
            raise ValueError(f"The pretrained {type(self.backbone).__name__} failed on a "
                             f"block of per-row shape {self.shape}: {exc}") from exc
        finally:
            self.backbone.train(was_training and not self.freeze)

    def _device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    # -- training mode ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> PretrainedModule:
        """Set the training mode; a frozen backbone stays in eval mode (dropout, batch norm).

        Parameters
        ----------
        mode : bool, default=True
            Training (True) or evaluation (False) mode.

        Returns
        -------
        self
        """
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state["_cache"] = {}  # the feature cache never travels (pickles, deep copies)
        return state

    # -- forward ------------------------------------------------------------------------------
    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        c = x.shape[1]
        if c != self.channels:
            x = x.expand(-1, self.channels, -1, -1) if c == 1 else x.mean(1, keepdim=True)
        if self.image_size is not None and tuple(x.shape[-2:]) != self.image_size:
            shrink = x.shape[-2] > self.image_size[0] or x.shape[-1] > self.image_size[1]
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False,
                              antialias=shrink)
        if self.pixel_mean is not None:
            x = (x - self.pixel_mean) / self.pixel_std
        return x.to(next(self.backbone.parameters()).dtype)

    def _audio(self, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Run a waveform batch ``(n, T)``; return the output and the valid-frame mask.

        Each clip is the row up to its last non-zero sample (zero padding at the end, as
        ``AudioFeatures`` and most loaders pad); it is normalised to zero mean and unit
        variance over those samples, as wav2vec 2.0 feature extractors do. Models with
        layer-normalised convolutions (``feat_extract_norm="layer"``) also get the
        attention mask of the valid samples, so that padding does not change a clip's
        features; group-normalised ones (the base models) must not, as in Hugging Face's
        own processors, and see the padding. Pooling averages the valid frames only.
        """
        x = x.float().flatten(1)
        t = torch.arange(x.shape[1], device=x.device)
        nonzero = x != 0
        lengths = torch.where(nonzero.any(1), (t * nonzero).amax(1) + 1, torch.zeros_like(t[0]))
        valid = t.unsqueeze(0) < lengths.unsqueeze(1)
        v = valid.to(x.dtype)
        count = v.sum(1, keepdim=True).clamp_min(1.0)
        mean = (x * v).sum(1, keepdim=True) / count
        var = (((x - mean) * v) ** 2).sum(1, keepdim=True) / count
        x = (x - mean) / (var + 1e-7).sqrt() * v
        kwargs = {}
        if getattr(self.backbone.config, "feat_extract_norm", "group") == "layer":
            kwargs["attention_mask"] = valid.long()
        dtype = next(self.backbone.parameters()).dtype
        out = self.backbone(input_values=x.to(dtype), **kwargs)
        hidden = getattr(out, "last_hidden_state", None)
        frames = hidden.shape[1] if hidden is not None else 1
        lengths_out = getattr(self.backbone, "_get_feat_extract_output_lengths", None)
        if lengths_out is not None and hidden is not None:
            n_frames = lengths_out(lengths).clamp(0, frames)
        else:  # proportional, when the model does not say
            n_frames = torch.ceil(lengths.float() * frames / x.shape[1]).long()
        frame_mask = torch.arange(frames, device=x.device).unsqueeze(0) < n_frames.unsqueeze(1)
        return out, frame_mask

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features of a batch ``(n, *shape)``."""
        if self.kind == "tokens":
            ids = x.long()
            mask = ids != 0
            out = self.backbone(input_ids=block_to_model_ids(ids, self.pad_id),
                                attention_mask=mask.long())
        elif self.kind == "audio" and len(self.shape) == 2:  # spectrograms (AST)
            mask = None
            out = self.backbone(input_values=x.to(next(self.backbone.parameters()).dtype))
        elif self.kind == "audio":
            out, mask = self._audio(x)
        else:
            mask = None
            out = self.backbone(pixel_values=self._pixels(x))
        hidden = getattr(out, "last_hidden_state", None)
        pooled = getattr(out, "pooler_output", None)
        if hidden is None and pooled is None:
            hidden = out[0] if isinstance(out, (tuple, list)) else out
        if self.pooling == "pooler" or (self.pooling == "auto" and pooled is not None):
            if pooled is None:
                raise ValueError(f"pooling='pooler', but {type(self.backbone).__name__} "
                                 "returns no pooler_output; use pooling='mean'.")
            z = pooled.flatten(1)
        elif hidden is None:  # only a pooler_output
            raise ValueError(f"pooling={self.pooling!r}, but {type(self.backbone).__name__} "
                             "returns no hidden states; use pooling='pooler'.")
        elif self.pooling == "cls":
            if hidden.dim() != 3:
                raise ValueError("pooling='cls' needs a sequence of hidden states (a "
                                 f"Transformer); {type(self.backbone).__name__} returns maps "
                                 f"of shape {tuple(hidden.shape)}: use pooling='mean'.")
            z = hidden[:, 0]
        elif hidden.dim() == 4:  # convolutional maps (n, C, h, w)
            z = hidden.mean((2, 3))
        elif mask is not None:
            z = masked_mean(hidden, mask, dim=1)
        else:
            z = hidden.mean(1)
        z = z.float()
        if mask is not None:  # an all-padding row (a missing text) encodes to zeros
            z = z * mask.any(1, keepdim=True).to(z.dtype)
        return z

    def _cached_features(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.detach().cpu().contiguous().numpy()
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            idx = torch.as_tensor(todo, device=x.device)
            fresh = self._features(x.index_select(0, idx))
            room = _CACHE_BYTES // (4 * self.feature_dim) - len(self._cache)
            computed = dict(zip((keys[i] for i in todo), fresh))
            for key in list(computed)[:max(room, 0)]:
                self._cache[key] = computed[key].detach().cpu()
        else:
            computed = {}
        return torch.stack([computed[k] if k in computed else self._cache[k] for k in keys]
                           ).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.freeze:
            with torch.no_grad():
                z = self._cached_features(x) if self.cache_features else self._features(x)
        else:
            z = self._features(x)
        return z if self.proj is None else self.proj(z)


class PretrainedEncoder:
    """A pretrained Hugging Face model as the encoder of an image, token-id or waveform block.

    An encoder factory: give it as the encoder of a block
    (``MultiTaskNet(module__encoders={"image": PretrainedEncoder(...)})``); the backbone is
    loaded or copied each time a network is built (at fit), never when the factory is
    created. It deep-copies and pickles (a name or config is kept as it is; the fitted
    network holds the weights).

    Image blocks ``(n, C, H, W)`` reach the model as ``pixel_values`` (grey images repeated to
    3 channels when the model reads 3; resized to ``image_size``); token-id blocks
    ``(n, L)`` as ``input_ids`` with ``attention_mask = ids != 0`` (0 is padding: see
    :func:`model_to_block_ids` for models whose padding id is not 0; build text blocks with
    :class:`~sklearn_mtml.features.PretrainedTokenizer`). Waveform blocks ``(n, n_samples)``
    at the model's sampling rate (16 kHz for wav2vec 2.0 / HuBERT / WavLM), zero-padded at
    the end, as ``input_values``: the network does not scale them (``reads_raw_input``);
    each clip is normalised to zero mean and unit variance over its own samples and pooled
    over its own frames. An all-padding row (a missing text, a missing clip) encodes to
    zeros.

    Parameters
    ----------
    model : str, os.PathLike, transformers.PretrainedConfig or transformers.PreTrainedModel
        A Hugging Face model name (``"microsoft/resnet-18"``, looked up in the local cache)
        or a directory written by ``save_pretrained``: loaded with
        ``AutoModel.from_pretrained`` when the network is built. A configuration: a model
        with random weights (``AutoModel.from_config``; how tests build tiny models). A model
        instance: copied for every network (a model with a task head gives its base model).
        The encoder of an encoder-decoder model (T5) is used.
    freeze : bool, default=True
        ``True``: the backbone is a fixed feature extractor (its parameters have
        ``requires_grad=False``, it stays in eval mode during training, its forward runs
        under ``torch.no_grad()``); only the layers after it train. ``False``: it is
        fine-tuned with the rest of the network; give it a smaller learning rate with a
        parameter group, ``optimizer__param_groups=[("encoders.<block>.backbone.*",
        {"lr": 1e-5})]``.
    pooling : {"auto", "pooler", "mean", "cls"}, default="auto"
        One vector per row: ``"auto"`` takes the model's ``pooler_output`` when it has one
        (BERT, ViT, ResNet, ConvNeXt), else ``"mean"``. ``"mean"``: the mean of the last
        hidden states over the tokens (padding excluded) or over the image positions (patches
        or the final feature map). ``"cls"``: the first token's last hidden state.
    image_size : "auto", int, (int, int) or None, default="auto"
        Images are resized (bilinear, antialiased when shrinking) to this size before the
        model. ``"auto"``: the configuration's ``image_size`` when it has one (ViT, whose
        position embeddings need it; ConvNeXt, pretrained at it), else the images' own size
        (ResNet). ``None``: never resize.
    normalize : None, "auto" or (sequence of float, sequence of float), default=None
        Per-channel ``(x - mean) / std`` applied to the images before the model. ``None``:
        the images are used as they come; in :class:`~sklearn_mtml.MultiTaskNet` they are
        already standardised per channel by its ``input_scaling``, which stands in for the
        model's own normalisation. ``"auto"``: the mean and standard deviation of the model's
        image processor (``preprocessor_config.json`` next to the weights), else ImageNet's;
        use it with images in [0, 1] (``ImageFeatures(output="tensor")``) and
        ``input_scaling=None``. A pair gives them.
    project : bool, default=False
        Add a trainable linear projection of the pooled features to the network's
        ``embed_dim`` (needed by the attention and gated fusions and by token-based
        architectures, which want equal widths). ``False``: the encoder's width is the
        model's (``hidden_size``, or ``hidden_sizes[-1]`` for ResNet and ConvNeXt).
    cache_features : bool, default=False
        Frozen backbones only: remember the features of every input row (keyed by a hash of
        its values; up to 512 MiB), so that a fit runs each distinct row through the backbone
        once instead of once per epoch. The cache is not pickled.
    local_files_only : bool, default=True
        Load names from the local Hugging Face cache only (never download). ``False`` lets
        transformers download missing files.
    cache_dir : str or None, default=None
        Hugging Face cache directory (default: ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``).

    Attributes
    ----------
    reads_tokens : bool
        Whether the model reads token ids (a text model): blocks given this encoder are
        token-id blocks. Reading it loads a name's configuration.
    reads_raw_input : bool
        Whether the model reads waveforms, which the network passes unscaled.

    See Also
    --------
    sklearn_mtml.features.PretrainedTokenizer : Texts to the model's token ids.
    sklearn_mtml.features.PretrainedFeatures : The frozen embeddings as a transformer.

    Notes
    -----
    When the files of a name are missing (``local_files_only=True`` and not in the cache),
    building the network raises an ``OSError`` that says how to get them: ``hf download
    <name>`` (``huggingface-cli download <name>``) on a connected machine, then copy the
    cache; or ``save_pretrained`` a directory and pass its path.

    Examples
    --------
    >>> from transformers import ResNetConfig
    >>> enc = PretrainedEncoder(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16],
    ...                                      depths=[1, 1]))
    >>> module = enc.make_encoder((3, 32, 32), 64, None)
    >>> module.out_features, enc.reads_tokens
    (16, False)
    """

    def __init__(self, model: Any, freeze: bool = True, pooling: str = "auto",
                 image_size: Any = "auto", normalize: Any = None, project: bool = False,
                 cache_features: bool = False, local_files_only: bool = True,
                 cache_dir: str | None = None):
        self.model = model
        self.freeze = freeze
        self.pooling = pooling
        self.image_size = image_size
        self.normalize = normalize
        self.project = project
        self.cache_features = cache_features
        self.local_files_only = local_files_only
        self.cache_dir = cache_dir

    # -- parameters (as scikit-learn estimators have them) ----------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of the factory.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (no nested estimators).

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> PretrainedEncoder:
        """Set parameters of the factory.

        Parameters
        ----------
        **params
            Parameter values by name.

        Returns
        -------
        self
        """
        for name, value in params.items():
            if name not in self._param_names():
                raise ValueError(f"PretrainedEncoder has no parameter {name!r}; it has "
                                 f"{self._param_names()}.")
            setattr(self, name, value)
        self.__dict__.pop("_config", None)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        parts = [_short_repr(self.model)]
        for name in self._param_names()[1:]:
            value = getattr(self, name)
            if value is not defaults[name].default and value != defaults[name].default:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- what the model reads ---------------------------------------------------------------
    def _resolved_config(self) -> Any:
        cached = self.__dict__.get("_config")
        if cached is not None and cached[0] is self.model:
            return cached[1]
        config = _config_of(self.model, self.local_files_only, self.cache_dir)
        self.__dict__["_config"] = (self.model, config)
        return config

    def _kind(self) -> str:
        config = self._resolved_config()
        name = _input_name(self.model, config)
        if name in _INPUT_KINDS:
            return _INPUT_KINDS[name]
        raise ValueError(f"PretrainedEncoder reads images (pixel_values), token ids "
                         f"(input_ids) and waveforms (input_values); "
                         f"{type(config).__name__} models read {name!r}.")

    @property
    def reads_tokens(self) -> bool:
        """Whether the model reads token ids (a text model)."""
        return self._kind() == "tokens"

    @property
    def reads_raw_input(self) -> bool:
        """Whether the block must reach the model unscaled.

        True for audio models: the network's per-column input scaling would scale each
        sample position (waveforms) or frame (spectrograms, which the model's feature
        extractor normalises with its own constants) on its own.
        """
        return self._kind() == "audio"

    # -- the encoder ------------------------------------------------------------------------
    def make_encoder(self, shape: Sequence[int], embed_dim: int | None,
                     vocab_size: int | None = None, **params: Any) -> PretrainedModule:
        """Build the encoder module of a block.

        Parameters
        ----------
        shape : tuple of int
            Per-row shape of the block: ``(C, H, W)`` images or ``(L,)`` token ids.
        embed_dim : int or None
            The network's embedding width: the output width with ``project=True``, else
            unused.
        vocab_size : int or None, default=None
            Vocabulary size of a token-id block (``None`` for images).
        **params
            Overrides of this factory's parameters for this block (from
            ``module__encoder_params={"block": {"freeze": False}}``).

        Returns
        -------
        PretrainedModule
            The encoder, with ``out_features``.

        Raises
        ------
        ValueError
            When the block does not fit the model (images for a text model, ids beyond its
            vocabulary, more tokens than its positions) or a parameter is unknown.
        OSError
            When the model's files are missing (with how to obtain them).
        """
        unknown = sorted(set(params) - set(self._param_names()[1:]))
        if unknown:
            raise ValueError(f"PretrainedEncoder does not take {unknown}; its parameters are "
                             f"{self._param_names()[1:]}.")
        spec = copy.copy(self).set_params(**params) if params else self
        shape = tuple(int(s) for s in shape)
        kind = spec._kind()
        config = spec._resolved_config()
        name = type(config).__name__.removesuffix("Config") or "pretrained"
        if kind == "tokens":
            if vocab_size is None or len(shape) != 1:
                raise ValueError(f"The {name} model reads token ids, but the block holds "
                                 f"numbers of per-row shape {shape}; tokenize the texts with "
                                 "PretrainedTokenizer(model) (it declares the block as "
                                 "token ids).")
            model_vocab = getattr(config, "vocab_size", None)
            if model_vocab is not None and vocab_size > model_vocab:
                raise ValueError(f"The token block has ids up to {vocab_size - 1}, but the "
                                 f"{name} model knows {model_vocab} ids: tokenize the texts "
                                 "with the model's own tokenizer (PretrainedTokenizer).")
            positions = getattr(config, "max_position_embeddings", None)
            if isinstance(positions, int) and shape[0] > positions:
                raise ValueError(f"The token block has {shape[0]} tokens per row, but the "
                                 f"{name} model reads at most {positions}; lower max_length.")
        elif kind == "audio":
            spectrogram = getattr(config, "num_mel_bins", None)
            if vocab_size is not None or len(shape) not in (1, 2) or (
                    len(shape) == 2 and spectrogram is not None and shape[1] != spectrogram):
                expected = (f"spectrograms (n, frames, {spectrogram})" if spectrogram else
                            "waveforms (n, n_samples)")
                raise ValueError(f"The {name} model reads {expected}, but the block "
                                 f"{'holds token ids' if vocab_size is not None else 'has'}"
                                 f" per-row shape {shape}.")
        elif vocab_size is not None or len(shape) != 3:
            raise ValueError(f"The {name} model reads images (n, C, H, W), but the block "
                             f"{'holds token ids' if vocab_size is not None else 'has'} "
                             f"per-row shape {shape}.")
        size = spec.image_size
        if isinstance(size, str) and size == "auto":
            size = getattr(config, "image_size", None)
        if isinstance(size, int):
            size = (size, size)
        stats = spec.normalize
        if isinstance(stats, str):
            if stats != "auto":
                raise ValueError(f"normalize must be None, 'auto' or (mean, std), got "
                                 f"{stats!r}.")
            stats = _image_stats(spec.model, spec.local_files_only, spec.cache_dir)
        backbone = load_pretrained(spec.model, spec.local_files_only, spec.cache_dir)
        return PretrainedModule(
            backbone, kind, shape, freeze=bool(spec.freeze), pooling=spec.pooling,
            image_size=tuple(size) if kind == "image" and size is not None else None,
            pixel_stats=stats if kind == "image" else None,
            pad_id=padding_id(backbone.config) if kind == "tokens" else 0,
            out_dim=int(embed_dim or 64) if spec.project else None,
            cache_features=bool(spec.cache_features))


def _short_repr(model: Any) -> str:
    """A one-line repr of a model name, configuration or instance."""
    if isinstance(model, (str, os.PathLike)):
        return repr(os.fspath(model))
    path = getattr(model, "name_or_path", "") if isinstance(model, nn.Module) else ""
    return f"<{type(model).__name__}{f' {path!r}' if path else ''}>"
