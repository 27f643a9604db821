"""Multi-task architectures: how the fused representation is shared between tasks.

Every architecture is an ``nn.Module`` with one contract:

``forward(h, tokens=None, token_mask=None) -> list[Tensor]``
    ``h`` is the fused input representation of shape ``(n, in_features)``; ``tokens`` an
    optional ``(n, M, token_dim)`` sequence of modality embeddings with its presence mask
    ``(n, M)`` (used by attention-based architectures). The result holds one ``(n, d_t)``
    representation per task, ``d_t = out_features[t]``, which a linear head turns into that
    task's outputs.

and three introspection methods used by the loss-weighting strategies:
:meth:`MultiTaskArchitecture.shared_parameters` (parameters every task's loss reaches) and
:meth:`MultiTaskArchitecture.last_shared_layer` (the layer GradNorm measures gradients on).

A new architecture is one subclass plus one :func:`register_architecture` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from .layers import last_linear, mlp

__all__ = [
    "ARCHITECTURES",
    "MultiTaskArchitecture",
    "SharedBottom",
    "make_architecture",
    "register_architecture",
]

#: Registry of architectures: name -> class.
ARCHITECTURES: dict[str, type[MultiTaskArchitecture]] = {}


def register_architecture(name: str) -> Callable[[type], type]:
    """Class decorator that adds an architecture to :data:`ARCHITECTURES` under ``name``."""

    def decorator(cls: type) -> type:
        ARCHITECTURES[name] = cls
        cls.registry_name = name
        return cls

    return decorator


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
        """Return the last layer shared by all tasks, or ``None`` when nothing is shared."""
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
    hidden_sizes : sequence of int, default=(256, 128)
        Widths of the shared trunk's layers.
    tower_sizes : sequence of int, default=(64,)
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
        hidden_sizes: Sequence[int] = (256, 128),
        tower_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__(in_features, n_tasks, token_dim)
        self.trunk = mlp(
            in_features, hidden_sizes, activation=activation, dropout=dropout,
            batch_norm=batch_norm,
        )
        width = self.trunk.out_features
        self.towers = nn.ModuleList(
            mlp(width, tower_sizes, activation=activation, dropout=dropout)
            for _ in range(n_tasks)
        )
        self.out_features = [tower.out_features for tower in self.towers]

    def forward(self, h, tokens=None, token_mask=None):  # noqa: D102
        z = self.trunk(h)
        return [tower(z) for tower in self.towers]

    def shared_parameters(self):  # noqa: D102
        return self.trunk.parameters()

    def last_shared_layer(self):  # noqa: D102
        return last_linear(self.trunk)


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
    if isinstance(name, str):
        if name not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {name!r}; expected one of {sorted(ARCHITECTURES)} or a "
                "MultiTaskArchitecture subclass."
            )
        cls = ARCHITECTURES[name]
    elif isinstance(name, type) and issubclass(name, MultiTaskArchitecture):
        cls = name
    else:
        raise TypeError(
            f"architecture must be a name or a MultiTaskArchitecture subclass, got {name!r}."
        )
    try:
        return cls(in_features, n_tasks, token_dim, **params)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            import inspect

            accepted = [
                p for p in inspect.signature(cls.__init__).parameters
                if p not in {"self", "in_features", "n_tasks", "token_dim"}
            ]
            bad = sorted(set(params) - set(accepted))
            raise ValueError(
                f"architecture {getattr(cls, 'registry_name', cls.__name__)!r} does not take "
                f"{['module__' + b for b in bad]}; it accepts "
                f"{['module__' + a for a in accepted]}."
            ) from exc
        raise
