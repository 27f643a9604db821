"""The complete multi-task network: encoders → fusion → architecture → task heads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from .._registry import build
from .architectures import ARCHITECTURES, MultiTaskArchitecture, make_architecture
from .encoders import make_encoder
from .fusion import FUSIONS
from .heads import TaskHeads, WideHeads
from .scaling import BlockScaler

__all__ = ["MultiTaskModule"]

_FUSION_CHOICES = sorted([*FUSIONS, "auto", "late"])

#: Modality dropout used by ``modality_dropout="auto"`` when there are several blocks.
AUTO_MODALITY_DROPOUT = 0.25
#: Block loss weight used by ``block_loss_weight="auto"`` with late fusion of several blocks.
AUTO_BLOCK_LOSS_WEIGHT = 1.0


class MultiTaskModule(nn.Module):
    """A multi-task network over one or several input blocks (modalities).

    Data flow for ``M`` blocks and ``T`` tasks::

        blocks {name: (n, *shape)}, mask (n, M)
          → per-block scaling (fitted stats) → scaled blocks
          → one encoder per block            → embeddings (n, d_m)
          → fusion (concat|attention|gated)  → h (n, d)           [+ tokens (n, M, e)]
          → architecture                     → T representations (n, d_t)
          → heads (+ wide linear path)       → T outputs (n, k_t)

    With ``fusion="late"`` every block has its own architecture and heads, and each task's
    outputs are averaged over the present blocks with learned, renormalised weights.

    Parameters
    ----------
    block_shapes : mapping of str to tuple of int
        Per-row shape of each input block, in input order.
    task_outputs : sequence of int
        Number of outputs of each task's head.
    architecture : str or MultiTaskArchitecture subclass, default="shared_bottom"
        A key of :data:`~sklearn_mtml.nn.architectures.ARCHITECTURES`.
    fusion : {"auto", "concat", "attention", "gated", "late"} or nn.Module subclass, \
            default="auto"
        How block embeddings are combined. ``"auto"``: ``"late"`` for several blocks (each
        modality keeps its own heads, so the fused model cannot fall far below its best
        single modality), ``"concat"`` for one block or for an architecture that attends
        over the modality tokens itself (``"task_attention"``). A class follows the contract
        of :mod:`sklearn_mtml.nn.fusion`.
    embed_dim : int, default=64
        Width of block embeddings where they are needed (several blocks with an attention or
        gated fusion, token-based architectures, sequence and image blocks).
    encoders : mapping of str to str or nn.Module subclass, optional
        Encoder per block name (a key of :data:`~sklearn_mtml.nn.encoders.ENCODERS` or a
        class), overriding the choice by shape and kind.
    encoder_params : mapping, optional
        Keyword arguments of the encoders. An entry whose key is a block name and whose
        value is a mapping goes to that block's encoder only
        (``{"audio": {"kernel_size": 3}}``); any other entry goes to every encoder
        (``{"dropout": 0.1}``). An encoder that does not take a parameter is an error.
    fusion_params : mapping, optional
        Keyword arguments of the fusion module (e.g. ``{"hidden": 32}`` for attention).
    vocab_sizes : mapping of str to int, optional
        Blocks of token ids with their vocabulary size: their default encoder is
        :class:`~sklearn_mtml.nn.encoders.TokenEncoder`, and the wide path reads them as a
        bag of words.
    modality_dropout : "auto", float or mapping of str to float, default="auto"
        During training, the probability of hiding each present block of a row (at least one
        present block per row is kept), so that the model learns to cope with missing ones.
        A mapping gives each block its own probability (``{"audio": 0.5}``: hide the audio
        often, so that the other blocks learn to stand alone; unlisted blocks: 0).
        ``"auto"``: 0.25 with several blocks, 0 with one.
    block_loss_weight : "auto" or float, default="auto"
        Late fusion only: weight of each block's own predictions in the training loss (deep
        supervision). Each block's towers then learn to predict on their own, so the model
        keeps the single-modality accuracy when the other blocks are missing. ``"auto"``:
        1.0 for late fusion of several blocks, else 0.
    input_stats : mapping of str to (array, array), optional
        Per-block ``(center, scale)`` from
        :func:`~sklearn_mtml.nn.scaling.block_statistics`: each listed block is scaled
        inside the network (see :class:`~sklearn_mtml.nn.scaling.BlockScaler`).
    input_clip : float or None, default=3.0
        Soft clip of the scaled inputs (see :class:`~sklearn_mtml.nn.scaling.BlockScaler`).
    wide : bool, default=True
        Add a linear path from every block's scaled inputs to every task's outputs (wide &
        deep, :class:`~sklearn_mtml.nn.heads.WideHeads`), so that the network contains the
        linear model.
    **architecture_params
        Hyperparameters of the architecture (``hidden_sizes``, ``tower_sizes``, ...).
    """

    modality_dropout: torch.Tensor  # a buffer
    fusion: nn.Module | None  # None for late fusion, which has no `architecture`
    architecture: MultiTaskArchitecture
    heads: nn.Module  # TaskHeads, or a ModuleList of them for late fusion

    def __init__(
        self,
        block_shapes: Mapping[str, Sequence[int]],
        task_outputs: Sequence[int],
        architecture: str = "shared_bottom",
        fusion: str = "auto",
        embed_dim: int = 64,
        encoders: Mapping[str, str | type[nn.Module]] | None = None,
        encoder_params: Mapping | None = None,
        fusion_params: Mapping | None = None,
        vocab_sizes: Mapping[str, int] | None = None,
        modality_dropout: str | float | Mapping[str, float] = "auto",
        block_loss_weight: str | float = "auto",
        input_stats: Mapping[str, tuple[Any, Any]] | None = None,
        input_clip: float | None = 3.0,
        wide: bool = True,
        **architecture_params,
    ):
        super().__init__()
        if isinstance(fusion, str) and fusion not in _FUSION_CHOICES:
            raise ValueError(f"Unknown fusion {fusion!r}; expected one of {_FUSION_CHOICES} "
                             "or a fusion class.")
        if not isinstance(fusion, str) and not (
                isinstance(fusion, type) and issubclass(fusion, nn.Module)):
            raise TypeError(f"fusion must be a name or an nn.Module subclass, got {fusion!r}.")
        self.block_names = list(block_shapes)
        n_blocks = len(self.block_names)
        arch_cls = ARCHITECTURES.get(architecture, architecture) if isinstance(
            architecture, str) else architecture
        uses_tokens = bool(getattr(arch_cls, "uses_tokens", False)) and n_blocks > 1
        if fusion == "auto":  # token-based architectures fuse the modalities themselves
            fusion = "late" if n_blocks > 1 and not uses_tokens else "concat"
        if isinstance(modality_dropout, str) and modality_dropout == "auto":
            modality_dropout = AUTO_MODALITY_DROPOUT if n_blocks > 1 else 0.0
        if isinstance(block_loss_weight, str) and block_loss_weight == "auto":
            block_loss_weight = AUTO_BLOCK_LOSS_WEIGHT if fusion == "late" and n_blocks > 1 \
                else 0.0
        self.fusion_name = fusion if isinstance(fusion, str) else fusion.__name__
        # "auto" is resolved above; another string fails the checks below
        block_loss_weight = cast(float, block_loss_weight)
        modality_dropout = cast("float | Mapping[str, float]", modality_dropout)
        if not (block_loss_weight >= 0 and float(block_loss_weight) < float("inf")):
            raise ValueError(f"block_loss_weight must be finite and >= 0, got "
                             f"{block_loss_weight!r}.")
        if block_loss_weight and fusion != "late":
            raise ValueError("block_loss_weight needs fusion='late' (the blocks' own "
                             f"predictions); got fusion={fusion!r}.")
        self.block_loss_weight = float(block_loss_weight)
        probs = self._dropout_probs(modality_dropout)
        self.register_buffer("modality_dropout", torch.tensor(probs), persistent=False)
        self._drops_modalities = len(probs) > 1 and any(p > 0 for p in probs)
        encoders = dict(encoders or {})
        unknown = sorted(set(encoders) - set(self.block_names))
        if unknown:
            raise ValueError(f"encoders names unknown blocks {unknown}; blocks are "
                             f"{self.block_names}.")
        vocab = dict(vocab_sizes or {})
        unknown = sorted(set(vocab) - set(self.block_names))
        if unknown:
            raise ValueError(f"vocab_sizes names unknown blocks {unknown}; blocks are "
                             f"{self.block_names}.")
        stats = dict(input_stats or {})
        unknown = sorted(set(stats) - set(self.block_names))
        if unknown:
            raise ValueError(f"input_stats names unknown blocks {unknown}; blocks are "
                             f"{self.block_names}.")
        self.scalers = nn.ModuleDict({
            name: BlockScaler(*stats[name], ndim=len(block_shapes[name]), clip=input_clip)
            for name in self.block_names if name in stats
        })
        fusion_cls = FUSIONS.get(fusion) if isinstance(fusion, str) else fusion
        equal_dims = uses_tokens or (
            fusion_cls is not None and getattr(fusion_cls, "needs_equal_dims", False)
            and n_blocks > 1)

        def embed_for(name, shape):
            if equal_dims or len(shape) > 1 or name in vocab:
                return embed_dim
            return None

        params, shared = self._encoder_params(encoder_params)
        self.encoders = nn.ModuleDict()
        for name, shape in block_shapes.items():
            try:
                self.encoders[name] = make_encoder(
                    shape, embed_for(name, shape), encoders.get(name), vocab.get(name),
                    block=name, **params[name])
            except ValueError as exc:
                if not shared or "does not take" not in str(exc):
                    raise
                raise ValueError(f"{exc} Parameters for one block go in "
                                 f"encoder_params={{{name!r}: {{...}}}}.") from exc
        self.token_dim = embed_dim if uses_tokens else None
        n_tasks = len(task_outputs)
        if fusion == "late":
            self.fusion = None
            self.architectures = nn.ModuleList(
                make_architecture(architecture, cast(int, enc.out_features), n_tasks, None,
                                  **architecture_params)
                for enc in self.encoders.values()
            )
            self.heads = nn.ModuleList(
                TaskHeads(cast(list[int], arch.out_features), task_outputs)
                for arch in self.architectures)
            self.late_logits = nn.Parameter(torch.zeros(n_tasks, n_blocks))
        else:
            widths = [enc.out_features for enc in self.encoders.values()]
            if n_blocks > 1:
                self.fusion = build(FUSIONS, nn.Module, fusion, widths, what="fusion",
                                    prefix="module__fusion_params", **dict(fusion_params or {}))
            else:
                self.fusion = FUSIONS["concat"](widths)
            self.architecture = make_architecture(
                architecture, cast(int, self.fusion.out_features), n_tasks, self.token_dim,
                **architecture_params)
            self.heads = TaskHeads(self.architecture.out_features, task_outputs)
        # blocks whose encoder reads them raw (waveforms) have no linear path: a linear map
        # of raw samples carries nothing useful
        raw = {n for n, enc in encoders.items() if getattr(enc, "reads_raw_input", False)}
        self.wide = WideHeads([tuple(block_shapes[n]) for n in self.block_names],
                              task_outputs, vocab_sizes=[vocab.get(n) for n in self.block_names],
                              skip=[n in raw for n in self.block_names]) if wide else None

    def _encoder_params(self, encoder_params: Mapping | None
                        ) -> tuple[dict[str, dict], dict]:
        """Each block's encoder keyword arguments, and those given for every block."""
        given = dict(encoder_params or {})
        per_block = {k: dict(v) for k, v in given.items()
                     if k in self.block_names and isinstance(v, Mapping)}
        shared = {k: v for k, v in given.items() if k not in per_block}
        return {name: {**shared, **per_block.get(name, {})} for name in self.block_names}, shared

    def _dropout_probs(self, modality_dropout: float | Mapping[str, float]) -> list[float]:
        if isinstance(modality_dropout, Mapping):
            unknown = sorted(set(modality_dropout) - set(self.block_names))
            if unknown:
                raise ValueError(f"modality_dropout names unknown blocks {unknown}; blocks are "
                                 f"{self.block_names}.")
            probs = [float(modality_dropout.get(name, 0.0)) for name in self.block_names]
        else:
            probs = [float(modality_dropout)] * len(self.block_names)
        for name, p in zip(self.block_names, probs):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"modality_dropout of block {name!r} must be in [0, 1), "
                                 f"got {p!r}.")
        return probs

    # -- introspection used by the weighting strategies ------------------------------------
    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters that every task's loss reaches: encoders, fusion, shared layers."""
        params = list(self.encoders.parameters())
        if self.fusion is not None:
            params += list(self.fusion.parameters())
            params += list(self.architecture.shared_parameters())
        else:
            for arch in self.architectures:
                params += list(cast(MultiTaskArchitecture, arch).shared_parameters())
        return params

    def last_shared_layer(self) -> nn.Module | None:
        """The last layer shared by all tasks (for GradNorm), or ``None``."""
        if self.fusion is not None:
            layer = self.architecture.last_shared_layer()
            if layer is not None:
                return layer
        from .layers import last_linear

        return last_linear(self.encoders)

    # -- forward ---------------------------------------------------------------------------
    def _drop_modalities(self, mask: torch.Tensor) -> torch.Tensor:
        drop = torch.rand(mask.shape, device=mask.device) < self.modality_dropout
        keep = mask & ~drop
        lost = ~keep.any(1, keepdim=True)
        return torch.where(lost, mask, keep)

    @torch.no_grad()
    def scale_inputs(self, blocks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Apply each block's fitted scaling (the first step of :meth:`forward`).

        A fit scales its training tensors once with this, then calls :meth:`forward` with
        ``prescaled=True`` for every batch, instead of scaling every batch of every epoch.

        Parameters
        ----------
        blocks : mapping of str to Tensor
            One tensor ``(n, *shape)`` per block.

        Returns
        -------
        scaled : dict of str to Tensor
        """
        return {name: self.scalers[name](x) if name in self.scalers else x
                for name, x in blocks.items()}

    @torch.no_grad()
    def warm_start_wide(self, blocks: Mapping[str, torch.Tensor], mask: torch.Tensor,
                        targets: torch.Tensor, weights: torch.Tensor, kinds: Sequence[str],
                        prescaled: bool = True, random_state: int = 0) -> list[float | None]:
        """Start the wide path at the cross-validated ridge solution of every task.

        See :meth:`~sklearn_mtml.nn.heads.WideHeads.warm_start`. The output layers of the
        deep path (the task heads) are set to zero, so that the network's outputs are exactly
        the linear model's until training moves them. Call it with the training rows only
        (never the rows that early stopping validates on), before training.

        Parameters
        ----------
        blocks : mapping of str to Tensor
            One tensor ``(n, *shape)`` per block.
        mask : Tensor of bool, shape (n, M)
            Presence of each block per row.
        targets : Tensor of shape (n, T)
            Encoded targets.
        weights : Tensor of shape (n, T)
            Label weight of each row and task (0 where the label is missing).
        kinds : sequence of str
            Kind of each task (``"regression"``, ``"binary"``, ``"multiclass"``).
        prescaled : bool, default=True
            The blocks already went through :meth:`scale_inputs`.
        random_state : int, default=0
            Seed of the row subsample of large data.

        Returns
        -------
        alphas : list of float or None
            The relative ridge penalty chosen for each task (``None`` where the wide path is
            off or the task was not warm-started).
        """
        if self.wide is None:
            return [None] * len(kinds)
        if not prescaled:
            blocks = self.scale_inputs(blocks)
        xs = [blocks[name] for name in self.block_names]
        for head in self.heads.modules():  # the deep path starts at zero output
            if isinstance(head, nn.Linear):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        return self.wide.warm_start(xs, mask, targets, weights, kinds,
                                    late=self.fusion is None, random_state=random_state)

    def forward(
        self,
        blocks: Mapping[str, torch.Tensor],
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
        return_blocks: bool = False,
        prescaled: bool = False,
    ):
        """Compute every task's outputs.

        Parameters
        ----------
        blocks : mapping of str to Tensor
            One tensor ``(n, *shape)`` per block.
        mask : Tensor of bool, shape (n, M), optional
            Presence of each block per row (default: all present).
        return_weights : bool, default=False
            Also return the ``(n, M)`` per-row modality weights (``None`` for concat fusion).
        return_blocks : bool, default=False
            Late fusion: also return each block's own outputs and the presence mask used
            (after modality dropout), for :attr:`block_loss_weight`.
        prescaled : bool, default=False
            The blocks already went through :meth:`scale_inputs`.

        Returns
        -------
        outputs : list of Tensor
            One ``(n, k_t)`` tensor per task; with ``return_weights`` a tuple
            ``(outputs, weights)``; with ``return_blocks`` a tuple
            ``(outputs, per_block_outputs, mask)`` (``per_block_outputs`` is ``None`` unless the
            fusion is late).
        """
        xs = [blocks[name] for name in self.block_names]
        if mask is None:
            mask = torch.ones(xs[0].shape[0], len(xs), dtype=torch.bool, device=xs[0].device)
        if self.training and self._drops_modalities:
            mask = self._drop_modalities(mask)
        if not prescaled:
            xs = [self.scalers[name](x) if name in self.scalers else x
                  for name, x in zip(self.block_names, xs)]
        embs = [enc(x) for enc, x in zip(self.encoders.values(), xs)]
        per_block = None
        if self.fusion is None:
            outputs, weights, per_block = self._late(embs, mask, xs)
        else:
            h, weights = self.fusion(embs, mask)
            tokens = torch.stack(embs, dim=1) if self.token_dim is not None else None
            reps = self.architecture(h, tokens, mask if tokens is not None else None)
            outputs = self.heads(reps)
            if self.wide is not None:
                outputs = [o + w for o, w in zip(outputs, self.wide(xs, mask))]
        if return_blocks:
            return outputs, per_block, mask
        return (outputs, weights) if return_weights else outputs

    def _late(self, embs, mask, xs):
        per_block = [heads(arch(e)) for arch, heads, e in
                     zip(self.architectures, self.heads, embs)]
        if self.wide is not None:
            per_block = [[o + w for o, w in zip(outs, wides)]
                         for outs, wides in zip(per_block, self.wide.per_block(xs))]
        logits = self.late_logits.unsqueeze(0).masked_fill(~mask.unsqueeze(1), float("-inf"))
        w = torch.nan_to_num(torch.softmax(logits, dim=2), nan=0.0)  # (n, T, M)
        outputs = [
            sum(w[:, t, m:m + 1] * per_block[m][t] for m in range(len(embs)))
            for t in range(w.shape[1])
        ]
        return outputs, w.mean(1), per_block
