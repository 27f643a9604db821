"""Small building blocks shared by encoders, architectures and heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "make_activation", "mlp"]

#: Activation names accepted by every ``activation=`` parameter.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(activation: str | type[nn.Module] | nn.Module) -> nn.Module:
    """Return an activation module from a name, a module class or an instance.

    Parameters
    ----------
    activation : str, nn.Module class or nn.Module
        A key of :data:`ACTIVATIONS`, or a module.

    Returns
    -------
    module : nn.Module
    """
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]()
        except KeyError:
            raise ValueError(
                f"Unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)} "
                "or a torch.nn.Module class."
            ) from None
    if isinstance(activation, nn.Module):
        return activation
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    raise TypeError(f"activation must be a name or a torch.nn.Module, got {activation!r}.")


def mlp(
    in_features: int,
    hidden_sizes: Sequence[int],
    *,
    activation: str | type[nn.Module] = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """Build a multilayer perceptron ``Linear → [BatchNorm] → activation → [Dropout]`` per layer.

    Parameters
    ----------
    in_features : int
        Input width.
    hidden_sizes : sequence of int
        Width of each layer; empty gives an identity.
    activation : str or nn.Module class, default="relu"
        Non-linearity after each layer.
    dropout : float, default=0.0
        Dropout probability after each layer.
    batch_norm : bool, default=False
        Whether to add batch normalisation before the activation.

    Returns
    -------
    net : nn.Sequential
        Maps ``(n, in_features)`` to ``(n, hidden_sizes[-1])`` (or ``in_features``).
    """
    layers: list[nn.Module] = []
    width = int(in_features)
    for size in hidden_sizes:
        size = int(size)
        if size <= 0:
            raise ValueError(f"layer sizes must be positive integers, got {list(hidden_sizes)}.")
        layers.append(nn.Linear(width, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(make_activation(activation))
        if dropout:
            layers.append(nn.Dropout(float(dropout)))
        width = size
    net = nn.Sequential(*layers)
    net.out_features = width  # type: ignore[assignment]
    return net


def last_linear(module: nn.Module) -> nn.Linear | None:
    """Return the last ``nn.Linear`` inside ``module`` (``None`` when there is none)."""
    found = None
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            found = sub
    return found


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only positions where ``mask`` is true."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)
