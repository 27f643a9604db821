"""Multi-task architectures: how the fused representation is shared between tasks.

Every architecture is an ``nn.Module`` with one contract:

``forward(h, tokens=None, token_mask=None) -> list[Tensor]``
    ``h`` is the fused input representation of shape ``(n, in_features)``; ``tokens`` an
    optional ``(n, M, token_dim)`` sequence of modality embeddings with its presence mask
    ``(n, M)`` (used by attention-based architectures). The result holds one ``(n, d_t)``
    representation per task, ``d_t = out_features[t]``, which a linear head turns into that
    task's outputs.

and two introspection methods used by the loss-weighting strategies:
:meth:`MultiTaskArchitecture.shared_parameters` (parameters every task's loss reaches) and
:meth:`MultiTaskArchitecture.last_shared_layer` (a module whose parameters GradNorm measures
gradient norms on; it may group several layers, e.g. the last layer of every expert).
An architecture whose class attribute ``uses_tokens`` is true receives the modality tokens
when the input has several blocks.

Registered: ``"shared_bottom"`` (:class:`SharedBottom`), ``"mmoe"`` (:class:`MMoE`),
``"ple"`` (:class:`PLE`), ``"cross_stitch"`` (:class:`CrossStitch`) and
``"task_attention"`` (:class:`TaskAttention`).

A new architecture is one subclass plus one :func:`register_architecture` entry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import cast

import torch
from torch import nn

from .._registry import build, registrar
from .layers import last_linear, make_activation, mlp

__all__ = [
    "ARCHITECTURES",
    "MMoE",
    "PLE",
    "CrossStitch",
    "CrossStitchUnit",
    "MultiTaskArchitecture",
    "SharedBottom",
    "TaskAttention",
    "make_architecture",
    "register_architecture",
]

#: Registry of architectures: name -> class.
ARCHITECTURES: dict[str, type[MultiTaskArchitecture]] = {}


#: Class decorator ``@register_architecture(name)`` adding a class to :data:`ARCHITECTURES`.
register_architecture = registrar(ARCHITECTURES)


class MultiTaskArchitecture(nn.Module):
    """Base class of multi-task architectures.

    Parameters
    ----------
    in_features : int
        Width of the fused representation ``h``.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Width of the modality tokens when the input has several modalities.

    Attributes
    ----------
    out_features : list of int
        Width of each task's representation.
    """

    registry_name: str = ""
    #: Whether the architecture wants the modality tokens (see the module docstring).
    uses_tokens: bool = False

    def __init__(self, in_features: int, n_tasks: int, token_dim: int | None = None):
        super().__init__()
        if n_tasks < 1:
            raise ValueError(f"an architecture needs at least one task, got n_tasks={n_tasks}.")
        self.in_features = int(in_features)
        self.n_tasks = int(n_tasks)
        self.token_dim = token_dim
        self.out_features: list[int] = []

    def forward(
        self,
        h: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Return one representation per task (see the module docstring)."""
        raise NotImplementedError

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Yield the parameters shared by all tasks (default: none)."""
        return iter(())

    def last_shared_layer(self) -> nn.Module | None:
        """Return the last layer shared by all tasks, or ``None`` when nothing is shared.

        GradNorm measures gradient norms on all parameters of the returned module, which may
        be a container grouping several layers (it is not registered as a submodule).
        """
        return None


@register_architecture("shared_bottom")
class SharedBottom(MultiTaskArchitecture):
    """Hard parameter sharing: a shared MLP trunk, then one MLP tower per task.

    Shapes: ``h (n, in_features)`` → trunk ``(n, hidden_sizes[-1])`` → tower ``t``
    ``(n, tower_sizes[-1])``.

    Parameters
    ----------
    in_features : int
        Input width.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Unused (accepted for a uniform constructor).
    hidden_sizes : sequence of int, default=(128,)
        Widths of the shared trunk's layers. The default was chosen on the quality benchmark
        (``docs/quality.md``): one layer of 128 beat (256, 128) on small tabular sets and on a
        CNN over 600 images; widen it for large data.
    tower_sizes : sequence of int, default=(32,)
        Widths of each task tower's layers (empty: heads sit on the trunk).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout after each layer.
    batch_norm : bool, default=False
        Batch normalisation in the trunk.
    """

    def __init__(
        self,
        in_features: int,
        n_tasks: int,
        token_dim: int | None = None,
        *,
        hidden_sizes: Sequence[int] = (128,),
        tower_sizes: Sequence[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        self.trunk = mlp(
            in_features, hidden_sizes, activation=activation, dropout=dropout,
            batch_norm=batch_norm,
        )
        width = _width(self.trunk)
        self.towers = nn.ModuleList(
            mlp(width, tower_sizes, activation=activation, dropout=dropout)
            for _ in range(n_tasks)
        )
        self.out_features = [_width(tower) for tower in self.towers]

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        z = self.trunk(h)
        return [tower(z) for tower in self.towers]

    def shared_parameters(self):  # noqa: D102
        return self.trunk.parameters()

    def last_shared_layer(self):  # noqa: D102
        return last_linear(self.trunk)


# ------------------------------------------------------------------------------------------
# helpers shared by the architectures below
# ------------------------------------------------------------------------------------------
def _check_sizes(name: str, sizes: Sequence[int], allow_empty: bool = False) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if not allow_empty and not sizes:
        raise ValueError(f"{name} must hold at least one layer size, got {sizes}.")
    if any(s <= 0 for s in sizes):
        raise ValueError(f"{name} must hold positive integers, got {sizes}.")
    return sizes


def _check_positive(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _width(module: nn.Module) -> int:
    """Output width of an :func:`~sklearn_mtml.nn.layers.mlp` (its ``out_features``)."""
    return cast(int, module.out_features)


def _towers(width: int, n_tasks: int, tower_sizes: Sequence[int], activation: str,
            dropout: float) -> nn.ModuleList:
    return nn.ModuleList(
        mlp(width, tower_sizes, activation=activation, dropout=dropout) for _ in range(n_tasks)
    )


def _layer_group(layers: Sequence[nn.Module | None]) -> nn.Module | None:
    """Wrap several layers into one (unregistered) container whose parameters are theirs."""
    present = [layer for layer in layers if layer is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else nn.ModuleList(present)


class _Experts(nn.Module):
    """``K`` MLP experts applied to the same input; output ``(n, K, d)``."""

    def __init__(self, in_features: int, n_experts: int, sizes: Sequence[int], activation: str,
                 dropout: float):
        super().__init__()
        self.experts = nn.ModuleList(
            mlp(in_features, sizes, activation=activation, dropout=dropout)
            for _ in range(n_experts)
        )
        self.out_features = int(sizes[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.stack([expert(x) for expert in self.experts], dim=1)

    def last_layers(self) -> list[nn.Module | None]:
        return [last_linear(expert) for expert in self.experts]


def _gate(gate: nn.Linear, x: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
    """Mix ``experts (n, K, d)`` with the softmax gate computed from ``x``: ``(n, d)``."""
    weights = torch.softmax(gate(x), dim=-1)  # (n, K)
    return torch.einsum("nk,nkd->nd", weights, experts)


@register_architecture("mmoe")
class MMoE(MultiTaskArchitecture):
    """Multi-gate mixture of experts (Ma et al., KDD 2018).

    ``K = n_experts`` MLP experts read the input; each task ``t`` owns a softmax gate
    ``g_t(h) = softmax(W_t h)`` over the experts and a tower::

        h (n, in_features) → experts (n, K, expert_sizes[-1])
          → task t: Σ_k g_t(h)_k · expert_k(h)  (n, expert_sizes[-1])
          → tower t                             (n, tower_sizes[-1])

    Shared parameters are the experts (the gates and towers belong to their task). For
    GradNorm, :meth:`last_shared_layer` returns a container of the *last linear layer of every
    expert*: the gradient norm is measured on all of them together, since no single expert is
    "the" shared layer.

    Parameters
    ----------
    in_features : int
        Input width.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Unused (accepted for a uniform constructor).
    n_experts : int, default=4
        Number of experts.
    expert_sizes : sequence of int, default=(128, 64)
        Layer widths of each expert (at least one layer).
    tower_sizes : sequence of int, default=(32,)
        Layer widths of each task tower (empty: the head sits on the gated mixture).
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout after each layer.

    Examples
    --------
    >>> import torch
    >>> arch = MMoE(10, 3, n_experts=2, expert_sizes=(8,), tower_sizes=(4,))
    >>> [tuple(r.shape) for r in arch(torch.randn(5, 10))]
    [(5, 4), (5, 4), (5, 4)]
    """

    def __init__(
        self,
        in_features: int,
        n_tasks: int,
        token_dim: int | None = None,
        *,
        n_experts: int = 4,
        expert_sizes: Sequence[int] = (128, 64),
        tower_sizes: Sequence[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        n_experts = _check_positive("n_experts", n_experts)
        expert_sizes = _check_sizes("expert_sizes", expert_sizes)
        tower_sizes = _check_sizes("tower_sizes", tower_sizes, allow_empty=True)
        self.experts = _Experts(in_features, n_experts, expert_sizes, activation, dropout)
        self.gates = nn.ModuleList(nn.Linear(in_features, n_experts) for _ in range(n_tasks))
        self.towers = _towers(self.experts.out_features, n_tasks, tower_sizes, activation,
                              dropout)
        self.out_features = [_width(tower) for tower in self.towers]

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        e = self.experts(h)
        return [tower(_gate(gate, h, e)) for gate, tower in zip(self.gates, self.towers)]

    def gate_weights(self, h: torch.Tensor) -> torch.Tensor:
        """Softmax gate weights of every task over the experts, shape ``(n, T, n_experts)``."""
        return torch.stack([torch.softmax(g(h), dim=-1) for g in self.gates], dim=1)

    def shared_parameters(self):  # noqa: D102
        return self.experts.parameters()

    def last_shared_layer(self):  # noqa: D102
        return _layer_group(self.experts.last_layers())


@register_architecture("ple")
class PLE(MultiTaskArchitecture):
    """Progressive layered extraction (Tang et al., RecSys 2020).

    ``n_levels`` stacked customised gate control (CGC) layers. Level ``l`` holds
    ``n_task_experts`` experts per task and ``n_shared_experts`` shared experts. The gate of
    task ``t`` mixes task ``t``'s experts and the shared experts; on every level but the last a
    shared gate mixes *all* experts into the input of the next level's shared experts::

        level 0 inputs: every branch reads h (n, in_features)
        level l: task t  → softmax gate over [experts_t, shared]   (n, d)
                 shared  → softmax gate over all experts (not on the last level)
        towers: task t's last-level output (n, d) → (n, tower_sizes[-1])

    with ``d = expert_sizes[-1]``.

    Shared parameters are those every task's loss reaches: the shared experts and shared gates
    of all levels, plus, with ``n_levels > 1``, the task experts of the non-final levels
    (they feed the shared gate; the task gates stay task-specific). :meth:`last_shared_layer`
    groups the last linear layer of every shared expert of the final level.

    Parameters
    ----------
    in_features : int
        Input width.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Unused (accepted for a uniform constructor).
    n_levels : int, default=2
        Number of CGC levels.
    n_task_experts : int, default=1
        Task-specific experts per task and level.
    n_shared_experts : int, default=2
        Shared experts per level.
    expert_sizes : sequence of int, default=(64,)
        Layer widths of each expert (at least one layer); the same on every level.
    tower_sizes : sequence of int, default=(32,)
        Layer widths of each task tower.
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout after each layer.

    Examples
    --------
    >>> import torch
    >>> arch = PLE(10, 2, n_levels=2, expert_sizes=(8,), tower_sizes=(4,))
    >>> [tuple(r.shape) for r in arch(torch.randn(5, 10))]
    [(5, 4), (5, 4)]
    """

    def __init__(
        self,
        in_features: int,
        n_tasks: int,
        token_dim: int | None = None,
        *,
        n_levels: int = 2,
        n_task_experts: int = 1,
        n_shared_experts: int = 2,
        expert_sizes: Sequence[int] = (64,),
        tower_sizes: Sequence[int] = (32,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        self.n_levels = _check_positive("n_levels", n_levels)
        n_task_experts = _check_positive("n_task_experts", n_task_experts)
        n_shared_experts = _check_positive("n_shared_experts", n_shared_experts)
        expert_sizes = _check_sizes("expert_sizes", expert_sizes)
        tower_sizes = _check_sizes("tower_sizes", tower_sizes, allow_empty=True)
        width = int(in_features)
        self.task_experts = nn.ModuleList()
        self.shared_experts = nn.ModuleList()
        self.task_gates = nn.ModuleList()
        self.shared_gates = nn.ModuleList()
        for level in range(self.n_levels):
            self.task_experts.append(nn.ModuleList(
                _Experts(width, n_task_experts, expert_sizes, activation, dropout)
                for _ in range(n_tasks)))
            self.shared_experts.append(
                _Experts(width, n_shared_experts, expert_sizes, activation, dropout))
            self.task_gates.append(nn.ModuleList(
                nn.Linear(width, n_task_experts + n_shared_experts) for _ in range(n_tasks)))
            if level < self.n_levels - 1:
                self.shared_gates.append(
                    nn.Linear(width, n_tasks * n_task_experts + n_shared_experts))
            width = expert_sizes[-1]
        self.towers = _towers(width, n_tasks, tower_sizes, activation, dropout)
        self.out_features = [_width(tower) for tower in self.towers]

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        task_in = [h] * self.n_tasks
        shared_in = h
        for level in range(self.n_levels):
            own = [experts(x) for experts, x in zip(self.task_experts[level], task_in)]
            shared = self.shared_experts[level](shared_in)
            task_out = [
                _gate(gate, x, torch.cat([e, shared], dim=1))
                for gate, x, e in zip(self.task_gates[level], task_in, own)
            ]
            if level < self.n_levels - 1:
                shared_in = _gate(self.shared_gates[level], shared_in,
                                  torch.cat([*own, shared], dim=1))
            task_in = task_out
        return [tower(x) for tower, x in zip(self.towers, task_in)]

    def shared_parameters(self):  # noqa: D102
        modules = [*self.shared_experts, *self.shared_gates]
        if self.n_levels > 1:
            modules += [*self.task_experts[:-1]]
        seen: set[int] = set()
        for module in modules:
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def last_shared_layer(self):  # noqa: D102
        return _layer_group(self.shared_experts[-1].last_layers())


class _TaskLinear(nn.Module):
    """``T`` independent linear maps applied at once: ``(T, n, d_in) → (T, n, d_out)``."""

    def __init__(self, n_tasks: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_tasks, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_tasks, 1, out_features))
        bound = 1.0 / in_features ** 0.5  # nn.Linear's default initialisation
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.dim() == 2:  # the same input for every column
            return torch.baddbmm(self.bias, x.unsqueeze(0).expand(self.weight.shape[0], -1, -1),
                                 self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class CrossStitchUnit(nn.Module):
    """A learned ``T × T`` mixing of ``T`` task columns: ``x'_t = Σ_s α_ts x_s``.

    Initialised near the identity: ``α_tt = self_weight`` and
    ``α_ts = (1 - self_weight) / (T - 1)`` (every row sums to one).

    Parameters
    ----------
    n_tasks : int
        Number of columns ``T``.
    self_weight : float, default=0.9
        Initial diagonal.
    """

    def __init__(self, n_tasks: int, self_weight: float = 0.9):
        super().__init__()
        if n_tasks == 1:
            init = torch.ones(1, 1)
        else:
            off = (1.0 - self_weight) / (n_tasks - 1)
            init = torch.full((n_tasks, n_tasks), off)
            init.fill_diagonal_(self_weight)
        self.alpha = nn.Parameter(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix ``x (T, n, d)`` into ``(T, n, d)``."""
        return torch.einsum("ts,snd->tnd", self.alpha, x)


@register_architecture("cross_stitch")
class CrossStitch(MultiTaskArchitecture):
    """Cross-stitch networks (Misra et al., CVPR 2016): one MLP column per task, mixed.

    Every task owns a column of ``len(hidden_sizes)`` layers; after each layer a learned
    :class:`CrossStitchUnit` (a ``T × T`` matrix initialised near the identity) mixes the
    columns, then a tower per task::

        h (n, in_features) → columns (T, n, hidden_sizes[0]) → stitch → ...
          → columns (T, n, hidden_sizes[-1]) → tower t (n, tower_sizes[-1])

    The columns run as one batched matrix product. Nothing but the cross-stitch units is
    shared: :meth:`shared_parameters` yields the units (task ``t``'s loss also reaches the
    other columns, but only through the units), and :meth:`last_shared_layer` is the last unit.

    Parameters
    ----------
    in_features : int
        Input width.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Unused (accepted for a uniform constructor).
    hidden_sizes : sequence of int, default=(128, 64)
        Layer widths of each column (at least one layer).
    tower_sizes : sequence of int, default=(32,)
        Layer widths of each task tower.
    self_weight : float, default=0.9
        Initial diagonal of the cross-stitch units.
    activation : str, default="relu"
        Non-linearity.
    dropout : float, default=0.0
        Dropout after each layer.

    Examples
    --------
    >>> import torch
    >>> arch = CrossStitch(10, 3, hidden_sizes=(8, 8), tower_sizes=(4,))
    >>> [tuple(r.shape) for r in arch(torch.randn(5, 10))]
    [(5, 4), (5, 4), (5, 4)]
    """

    def __init__(
        self,
        in_features: int,
        n_tasks: int,
        token_dim: int | None = None,
        *,
        hidden_sizes: Sequence[int] = (128, 64),
        tower_sizes: Sequence[int] = (32,),
        self_weight: float = 0.9,
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        hidden_sizes = _check_sizes("hidden_sizes", hidden_sizes)
        tower_sizes = _check_sizes("tower_sizes", tower_sizes, allow_empty=True)
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"self_weight must be in [0, 1], got {self_weight!r}.")
        widths = [int(in_features), *hidden_sizes]
        self.layers = nn.ModuleList(
            _TaskLinear(n_tasks, a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.stitches = nn.ModuleList(
            CrossStitchUnit(n_tasks, self_weight) for _ in hidden_sizes)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(float(dropout)) if dropout else nn.Identity()
        self.towers = _towers(hidden_sizes[-1], n_tasks, tower_sizes, activation, dropout)
        self.out_features = [_width(tower) for tower in self.towers]

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        x = h
        for layer, stitch in zip(self.layers, self.stitches):
            x = stitch(self.dropout(self.activation(layer(x))))
        return [tower(x[t]) for t, tower in enumerate(self.towers)]

    def shared_parameters(self):  # noqa: D102
        return self.stitches.parameters()

    def last_shared_layer(self):  # noqa: D102
        return self.stitches[-1]


@register_architecture("task_attention")
class TaskAttention(MultiTaskArchitecture):
    """Task queries attending over input tokens with multi-head attention.

    Every task owns ``n_queries`` learned query vectors that attend
    (:class:`torch.nn.MultiheadAttention`, ``n_heads`` heads) over a sequence of tokens:

    * with several modalities (``uses_tokens``): the modality embeddings
      ``tokens (n, M, token_dim)``, projected to ``d_model``; absent modalities
      (``token_mask`` false) are masked out, and a row with no present token gets a zero
      attention output;
    * with one input block (``token_dim=None``): ``n_groups`` *learned groups of the
      features*, a linear map of ``h (n, in_features)`` to ``(n, n_groups, d_model)``.

    Then ``LayerNorm(query + attention)`` of task ``t``'s queries, flattened to
    ``(n, n_queries · d_model)``, goes through task ``t``'s tower::

        tokens (n, S, d_model) ← tokens or feature groups
        queries (T · n_queries, d_model) → attention → (n, T, n_queries · d_model)
        → tower t → (n, tower_sizes[-1])

    All tasks' queries go through one attention call. Shared parameters: the token/group
    projection, the attention and its norm; the queries and towers belong to their task.
    :meth:`last_shared_layer` is the attention's output projection.

    Parameters
    ----------
    in_features : int
        Width of ``h``.
    n_tasks : int
        Number of tasks.
    token_dim : int or None, default=None
        Width of the modality tokens (``None``: the feature-group path is used).
    d_model : int, default=64
        Attention width (a multiple of ``n_heads``).
    n_heads : int, default=4
        Attention heads.
    n_queries : int, default=1
        Learned queries per task.
    n_groups : int, default=8
        Feature groups (tokens) built from ``h`` when no modality tokens are given.
    tower_sizes : sequence of int, default=(64,)
        Layer widths of each task tower.
    activation : str, default="relu"
        Non-linearity of the towers.
    dropout : float, default=0.0
        Dropout of the attention weights and after tower layers.

    Attributes
    ----------
    store_attention : bool
        When true, :meth:`forward` keeps the attention weights in ``last_attention_``.
    last_attention_ : Tensor of shape (n, T, S)
        Attention of each task over the ``S`` tokens (averaged over heads and the task's
        queries; rows sum to one, zero for rows with no present token), from the last forward
        with ``store_attention``.

    Examples
    --------
    >>> import torch
    >>> arch = TaskAttention(10, 2, d_model=8, n_heads=2, n_groups=4, tower_sizes=(4,))
    >>> [tuple(r.shape) for r in arch(torch.randn(5, 10))]
    [(5, 4), (5, 4)]
    >>> tuple(arch.attention_weights(torch.randn(5, 10)).shape)
    (5, 2, 4)
    """

    uses_tokens = True

    def __init__(
        self,
        in_features: int,
        n_tasks: int,
        token_dim: int | None = None,
        *,
        d_model: int = 64,
        n_heads: int = 4,
        n_queries: int = 1,
        n_groups: int = 8,
        tower_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        d_model = _check_positive("d_model", d_model)
        n_heads = _check_positive("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of n_heads={n_heads}.")
        self.d_model = d_model
        self.n_queries = _check_positive("n_queries", n_queries)
        self.n_groups = _check_positive("n_groups", n_groups)
        tower_sizes = _check_sizes("tower_sizes", tower_sizes, allow_empty=True)
        # one of the two token sources exists: modality tokens, or groups of the features
        self.group_proj = (nn.Linear(in_features, self.n_groups * d_model) if token_dim is None
                           else None)
        self.token_proj = (nn.Linear(int(token_dim), d_model) if token_dim is not None
                           else None)
        self.queries = nn.Parameter(torch.randn(n_tasks, self.n_queries, d_model) * 0.02)
        self.attention = nn.MultiheadAttention(d_model, n_heads, dropout=float(dropout),
                                               batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.towers = _towers(self.n_queries * d_model, n_tasks, tower_sizes, activation,
                              dropout)
        self.out_features = [_width(tower) for tower in self.towers]
        self.store_attention = False

    def _tokens(self, h, tokens, token_mask):
        if self.token_proj is None:
            if tokens is not None:
                raise ValueError("tokens were given but the architecture was built without "
                                 "token_dim.")
            return self.group_proj(h).view(h.shape[0], self.n_groups, self.d_model), None
        if tokens is None:
            raise ValueError(f"this architecture was built for modality tokens of width "
                             f"{self.token_dim}; call it with tokens (n, M, {self.token_dim}).")
        return self.token_proj(tokens), token_mask

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        keys, mask = self._tokens(h, tokens, token_mask)
        n = keys.shape[0]
        q = self.queries.reshape(1, -1, self.d_model).expand(n, -1, -1)  # (n, T·Q, d)
        padding = empty = None
        if mask is not None:
            mask = mask.to(torch.bool)
            empty = ~mask.any(1)  # rows without any present token: attend to all, then zero
            padding = ~mask & ~empty.unsqueeze(1)
        out, weights = self.attention(q, keys, keys, key_padding_mask=padding,
                                      need_weights=self.store_attention)
        if empty is not None:
            out = out.masked_fill(empty.view(-1, 1, 1), 0.0)
        z = self.norm(q + out).reshape(n, self.n_tasks, -1)
        if self.store_attention:
            w = weights.reshape(n, self.n_tasks, self.n_queries, -1).mean(2)
            if empty is not None:
                w = w.masked_fill(empty.view(-1, 1, 1), 0.0)
            self.last_attention_ = w.detach()
        return [tower(z[:, t]) for t, tower in enumerate(self.towers)]

    @contextlib.contextmanager
    def recording_attention(self) -> Iterator[None]:
        """Context manager: keep the attention weights of each forward in ``last_attention_``."""
        previous = self.store_attention
        self.store_attention = True
        try:
            yield
        finally:
            self.store_attention = previous

    @torch.no_grad()
    def attention_weights(
        self,
        h: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of every task over the tokens for an input (no gradient).

        Parameters
        ----------
        h : Tensor of shape (n, in_features)
            Fused representation.
        tokens : Tensor of shape (n, M, token_dim), optional
            Modality embeddings (else the ``n_groups`` feature groups of ``h`` are used).
        token_mask : Tensor of bool, shape (n, M), optional
            Presence of each modality.

        Returns
        -------
        weights : Tensor of shape (n, T, S)
            ``S = M`` with tokens, else ``n_groups``; rows sum to one over present tokens.
        """
        with self.recording_attention():
            self(h, tokens, token_mask)
        return self.last_attention_

    def shared_parameters(self):  # noqa: D102
        proj = self.group_proj if self.token_proj is None else self.token_proj
        for module in (proj, self.attention, self.norm):
            yield from module.parameters()

    def last_shared_layer(self):  # noqa: D102
        return self.attention.out_proj


def make_architecture(
    name: str | type[MultiTaskArchitecture],
    in_features: int,
    n_tasks: int,
    token_dim: int | None = None,
    **params,
) -> MultiTaskArchitecture:
    """Instantiate an architecture by registry name (or class) with its hyperparameters.

    Raises
    ------
    ValueError
        For an unknown name, or a hyperparameter the architecture does not take (named as the
        ``module__<param>`` the user passed).
    """
    return build(ARCHITECTURES, MultiTaskArchitecture, name, in_features, n_tasks, token_dim,
                 what="architecture", prefix="module", **params)
