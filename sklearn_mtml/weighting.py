"""Loss-weighting strategies: per-task losses in, one backward pass out.

Every strategy is a :class:`Weighting` (an ``nn.Module``, so learnable weights such as the
log-variances of uncertainty weighting are trained by the net's optimizer and saved with it)
behind the :data:`WEIGHTINGS` registry. The estimator calls, per training batch::

    total = weighting.backward(losses, present, model)

with ``losses`` the ``(T,)`` vector of masked mean task losses, ``present`` a boolean ``(T,)``
vector (``False`` for a task with no label in the batch: its loss is 0 and must not move
adaptive weights), and ``model`` the :class:`~sklearn_mtml.nn.model.MultiTaskModule` (for
``shared_parameters()`` and ``last_shared_layer()``). The strategy must leave the gradients of
all parameters in ``.grad`` and return the scalar objective it optimised (detached), and
:meth:`Weighting.task_weights` must return the ``(T,)`` weights in force (recorded in the
history every epoch). After every epoch :meth:`Weighting.epoch_end` receives the epoch's mean
training loss per task (used by DWA).

Static per-task ``loss_weights`` are given to every strategy as ``base_weights``: the fixed
strategy uses them as they are; adaptive strategies multiply them in as priors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import nn

__all__ = ["WEIGHTINGS", "FixedWeighting", "Weighting", "make_weighting", "register_weighting"]

#: Registry of weighting strategies: name -> class.
WEIGHTINGS: dict[str, type[Weighting]] = {}


def register_weighting(name: str) -> Callable[[type], type]:
    """Class decorator that adds a strategy to :data:`WEIGHTINGS` under ``name``."""

    def decorator(cls: type) -> type:
        WEIGHTINGS[name] = cls
        cls.registry_name = name
        return cls

    return decorator


class Weighting(nn.Module):
    """Base class of loss-weighting strategies.

    Parameters
    ----------
    base_weights : sequence of float
        The user's static per-task weights (``loss_weights``), in task order.
    task_kinds : sequence of str
        Kind of each task (``"binary"``, ``"multiclass"``, ``"regression"``).
    """

    registry_name: ClassVar[str] = ""

    def __init__(self, base_weights: Sequence[float], task_kinds: Sequence[str]):
        super().__init__()
        self.register_buffer("base_weights",
                             torch.as_tensor(list(base_weights), dtype=torch.float32))
        self.task_kinds = list(task_kinds)

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return int(self.base_weights.numel())

    def task_weights(self) -> torch.Tensor:
        """The ``(T,)`` task weights currently in force."""
        return self.base_weights

    def combine(self, losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """The scalar objective for ``losses`` (strategies that only reweight override this)."""
        return (self.task_weights() * losses).sum()

    def backward(self, losses: torch.Tensor, present: torch.Tensor, model: nn.Module
                 ) -> torch.Tensor:
        """Backpropagate the combined objective and return it, detached.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            Masked mean loss of each task on the batch.
        present : Tensor of bool, shape (T,)
            Whether each task had at least one label in the batch.
        model : MultiTaskModule
            The network (for its shared parameters).

        Returns
        -------
        objective : Tensor
            The scalar that was optimised.
        """
        objective = self.combine(losses, present)
        objective.backward()
        return objective.detach()

    def epoch_end(self, epoch_losses: torch.Tensor) -> None:
        """Receive the epoch's mean training loss per task (no-op by default)."""


@register_weighting("fixed")
class FixedWeighting(Weighting):
    """Static weights: the objective is ``Σ_t w_t L_t`` with ``w = loss_weights``."""


def make_weighting(
    weighting: str | type[Weighting] | Weighting,
    base_weights: Sequence[float],
    task_kinds: Sequence[str],
    **params,
) -> Weighting:
    """Instantiate a strategy by registry name or class with its hyperparameters.

    Raises
    ------
    ValueError
        For an unknown name or a hyperparameter the strategy does not take.
    """
    if isinstance(weighting, str):
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"Unknown weighting {weighting!r}; expected one of {sorted(WEIGHTINGS)} or a "
                "Weighting subclass."
            )
        cls = WEIGHTINGS[weighting]
    elif isinstance(weighting, type) and issubclass(weighting, Weighting):
        cls = weighting
    else:
        raise TypeError(f"weighting must be a name or a Weighting subclass, got {weighting!r}.")
    try:
        return cls(base_weights, task_kinds, **params)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ValueError(
                f"weighting {getattr(cls, 'registry_name', cls.__name__)!r} does not take the "
                f"parameters {['weighting__' + k for k in params]}: {exc}"
            ) from exc
        raise
