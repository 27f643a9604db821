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

import warnings
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import nn

from ._registry import build, registrar

__all__ = [
    "WEIGHTINGS",
    "DynamicWeightAverage",
    "FixedWeighting",
    "GradNorm",
    "PCGrad",
    "RandomLossWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "make_weighting",
    "project_conflicting",
    "register_weighting",
]

#: Registry of weighting strategies: name -> class.
WEIGHTINGS: dict[str, type[Weighting]] = {}


#: Class decorator ``@register_weighting(name)`` adding a strategy to :data:`WEIGHTINGS`.
register_weighting = registrar(WEIGHTINGS)


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
    base_weights: torch.Tensor  # buffers (nn.Module.__getattr__ returns Tensor | Module)

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

    def backward(self, losses: torch.Tensor, present: torch.Tensor, model: nn.Module,
                 scale: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Backpropagate the combined objective and return it, detached.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            Masked mean loss of each task on the batch.
        present : Tensor of bool, shape (T,)
            Whether each task had at least one label in the batch.
        model : MultiTaskModule
            The network (for its shared parameters).
        scale : callable, optional
            Applied to the objective before ``backward`` (a gradient scaler's ``scale`` for
            float16 training). Strategies that compute per-task gradients themselves
            (GradNorm, PCGrad) do not take it.

        Returns
        -------
        objective : Tensor
            The scalar that was optimised (unscaled).
        """
        objective = self.combine(losses, present)
        (objective if scale is None else scale(objective)).backward()
        return objective.detach()

    def epoch_end(self, epoch_losses: torch.Tensor) -> None:
        """Receive the epoch's mean training loss per task (no-op by default)."""


@register_weighting("fixed")
class FixedWeighting(Weighting):
    """Static weights: the objective is ``Σ_t w_t L_t`` with ``w = loss_weights``."""


def _kind_factors(task_kinds: Sequence[str]) -> torch.Tensor:
    """``c_t`` of uncertainty weighting: 1/2 for regression, 1 for classification."""
    return torch.tensor([0.5 if k == "regression" else 1.0 for k in task_kinds],
                        dtype=torch.float32)


@register_weighting("uncertainty")
class UncertaintyWeighting(Weighting):
    r"""Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

    Each task has a learned log-variance ``s_t = log σ_t²`` (an ``nn.Parameter``, trained by
    the net's optimizer together with the network). The objective is

    .. math::

        \sum_t b_t \, m_t \left( c_t \, e^{-s_t} L_t + \frac{s_t}{2} \right)

    with ``b_t`` the base weights (``loss_weights``), ``m_t`` = 1 when task ``t`` has labels in
    the batch (else 0: a task without labels does not move its ``s_t``), ``c_t = 1/2`` for
    regression (Gaussian likelihood) and ``c_t = 1`` for classification (softmax likelihood).
    The task weights in force are ``b_t c_t e^{-s_t}``.

    Parameters
    ----------
    base_weights : sequence of float
        Static per-task weights.
    task_kinds : sequence of str
        Kind of each task.
    init_log_var : float, default=0.0
        Initial ``s_t``.

    Attributes
    ----------
    log_vars : nn.Parameter of shape (T,)
        The learned ``s_t``.

    Notes
    -----
    The net's optimizer applies its weight decay (AdamW's default 0.01) to ``log_vars`` too,
    which pulls them slightly toward zero.
    """

    factors: torch.Tensor

    def __init__(self, base_weights: Sequence[float], task_kinds: Sequence[str], *,
                 init_log_var: float = 0.0):
        super().__init__(base_weights, task_kinds)
        self.log_vars = nn.Parameter(torch.full((self.n_tasks,), float(init_log_var)))
        self.register_buffer("factors", _kind_factors(self.task_kinds))

    def task_weights(self) -> torch.Tensor:  # noqa: D102
        return self.base_weights * self.factors * torch.exp(-self.log_vars.detach())

    def combine(self, losses, present):  # noqa: D102
        s = self.log_vars
        terms = self.factors * torch.exp(-s) * losses + 0.5 * s
        return (self.base_weights * present.to(terms.dtype) * terms).sum()


@register_weighting("dwa")
class DynamicWeightAverage(Weighting):
    r"""Dynamic weight averaging (Liu, Johns & Davison, CVPR 2019).

    With ``L_t(e)`` the mean training loss of task ``t`` in epoch ``e``, the weights of epoch
    ``e`` are

    .. math::

        λ_t(e) = b_t \, T \, \mathrm{softmax}_t\!\left(r_t(e-1) / \tau\right), \qquad
        r_t(e-1) = L_t(e-1) / L_t(e-2),

    and ``λ_t = b_t`` for the first two epochs. A task whose loss decreases slowly gets a
    larger weight.

    Parameters
    ----------
    base_weights : sequence of float
        Static per-task weights.
    task_kinds : sequence of str
        Kind of each task.
    temperature : float, default=2.0
        Softmax temperature ``τ`` (larger: weights closer to uniform).
    """

    loss_history: torch.Tensor
    n_epochs: torch.Tensor
    lambdas: torch.Tensor

    def __init__(self, base_weights: Sequence[float], task_kinds: Sequence[str], *,
                 temperature: float = 2.0):
        super().__init__(base_weights, task_kinds)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}.")
        self.temperature = float(temperature)
        self.register_buffer("loss_history", torch.zeros(2, self.n_tasks))
        self.register_buffer("n_epochs", torch.zeros((), dtype=torch.long))
        self.register_buffer("lambdas", torch.ones(self.n_tasks))

    def task_weights(self) -> torch.Tensor:  # noqa: D102
        return self.base_weights * self.lambdas

    def epoch_end(self, epoch_losses: torch.Tensor) -> None:  # noqa: D102
        losses = torch.as_tensor(epoch_losses, dtype=self.loss_history.dtype,
                                 device=self.loss_history.device)
        self.loss_history.copy_(torch.stack([self.loss_history[1], losses]))
        self.n_epochs += 1
        if int(self.n_epochs) >= 2:
            ratio = self.loss_history[1] / self.loss_history[0].clamp_min(1e-12)
            self.lambdas.copy_(self.n_tasks * torch.softmax(ratio / self.temperature, dim=0))


@register_weighting("gradnorm")
class GradNorm(Weighting):
    r"""GradNorm (Chen et al., ICML 2018): balance the training rates of the tasks.

    Task weights ``w_t`` (a buffer, *not* trained by the net's optimizer) are updated by this
    strategy's own Adam step (learning rate ``lr_weights``) on

    .. math::

        L_{grad} = \sum_t \left| G_t - \bar G \, r_t^{\alpha} \right|, \quad
        G_t = \lVert \nabla_W \, b_t w_t L_t \rVert_2, \quad
        r_t = \frac{L_t / L_t(0)}{\mathrm{mean}_s (L_s / L_s(0))},

    where ``W`` are the parameters of the model's ``last_shared_layer()`` (for
    mixture-of-experts architectures, the last layers of all shared experts), ``Ḡ`` the mean
    of the ``G_t`` (held constant) and ``L_t(0)`` the first loss seen for task ``t``. Then the
    weights are clipped at ``1e-3`` and renormalised to sum to ``T``. The network is trained on
    ``Σ_t b_t w_t L_t``. Only tasks with labels in the batch enter ``L_grad`` and have their
    weight updated. A task whose loss decreases more slowly than the others (larger
    ``r_t``) gets a larger weight.

    When the model has no shared layer (``last_shared_layer()`` is ``None``) the strategy warns
    once and keeps its weights fixed.

    Parameters
    ----------
    base_weights : sequence of float
        Static per-task weights ``b_t``.
    task_kinds : sequence of str
        Kind of each task.
    alpha : float, default=1.5
        Asymmetry: how strongly training rates are pulled together.
    lr_weights : float, default=0.025
        Learning rate of the Adam update of the task weights.

    Attributes
    ----------
    weights : Tensor of shape (T,)
        The learned ``w_t`` (a buffer; they sum to ``T``).
    initial_losses : Tensor of shape (T,)
        ``L_t(0)`` (``NaN`` until the task was seen).
    """

    weights: torch.Tensor
    initial_losses: torch.Tensor
    _exp_avg: torch.Tensor
    _exp_avg_sq: torch.Tensor
    _steps: torch.Tensor

    def __init__(self, base_weights: Sequence[float], task_kinds: Sequence[str], *,
                 alpha: float = 1.5, lr_weights: float = 0.025):
        super().__init__(base_weights, task_kinds)
        if not alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {alpha!r}.")
        if not lr_weights > 0:
            raise ValueError(f"lr_weights must be positive, got {lr_weights!r}.")
        self.alpha = float(alpha)
        self.lr_weights = float(lr_weights)
        t = self.n_tasks
        self.register_buffer("weights", torch.ones(t))
        self.register_buffer("initial_losses", torch.full((t,), float("nan")))
        # Adam state of the weights
        self.register_buffer("_exp_avg", torch.zeros(t))
        self.register_buffer("_exp_avg_sq", torch.zeros(t))
        self.register_buffer("_steps", torch.zeros(t))
        self._warned = False

    def task_weights(self) -> torch.Tensor:  # noqa: D102
        return self.base_weights * self.weights

    def backward(self, losses, present, model):  # noqa: D102
        layer = model.last_shared_layer() if hasattr(model, "last_shared_layer") else None
        params = [] if layer is None else [p for p in layer.parameters() if p.requires_grad]
        objective = (self.task_weights() * losses).sum()
        if not params:
            if not self._warned:
                warnings.warn(
                    "GradNorm: the model has no shared layer (last_shared_layer() is None), so "
                    "the task weights stay fixed.", UserWarning, stacklevel=2)
                self._warned = True
            objective.backward()
            return objective.detach()
        present = present.to(torch.bool)
        seen = present & torch.isnan(self.initial_losses)
        self.initial_losses.copy_(torch.where(seen, losses.detach(), self.initial_losses))
        grad_norms = torch.zeros_like(self.weights)
        for t in torch.nonzero(present).flatten().tolist():
            grads = torch.autograd.grad(losses[t], params, retain_graph=True,
                                        allow_unused=True)
            sq = sum((g.pow(2).sum() for g in grads if g is not None),
                     torch.zeros((), device=losses.device))
            grad_norms[t] = sq.sqrt()
        objective.backward()
        if int(present.sum()) >= 2:
            self._update(losses.detach(), grad_norms, present)
        return objective.detach()

    @torch.no_grad()
    def _update(self, losses: torch.Tensor, grad_norms: torch.Tensor, present: torch.Tensor
                ) -> None:
        with torch.enable_grad():
            w = self.weights.clone().requires_grad_(True)
            g = self.base_weights * w * grad_norms  # G_t
            # a task never seen yet has no L_t(0) (NaN): keep it out of the mean, not NaN·0
            ratio = torch.where(present, losses / self.initial_losses.clamp_min(1e-12),
                                torch.zeros_like(losses))
            p = present.to(g.dtype)
            rate = ratio / ((ratio * p).sum() / p.sum()).clamp_min(1e-12)
            target = ((g * p).sum() / p.sum() * rate.pow(self.alpha)).detach()
            l_grad = ((g - target).abs() * p).sum()
            (grad,) = torch.autograd.grad(l_grad, w)
        # one Adam step on the present tasks' weights
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self._steps += p
        self._exp_avg.copy_(torch.where(present, beta1 * self._exp_avg + (1 - beta1) * grad,
                                        self._exp_avg))
        self._exp_avg_sq.copy_(torch.where(
            present, beta2 * self._exp_avg_sq + (1 - beta2) * grad * grad, self._exp_avg_sq))
        steps = self._steps.clamp_min(1)
        m_hat = self._exp_avg / (1 - beta1 ** steps)
        v_hat = self._exp_avg_sq / (1 - beta2 ** steps)
        step = self.lr_weights * m_hat / (v_hat.sqrt() + eps)
        new = torch.where(present, self.weights - step, self.weights).clamp_min(1e-3)
        self.weights.copy_(new * self.n_tasks / new.sum())


def project_conflicting(grads: torch.Tensor, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    r"""PCGrad's projection of conflicting task gradients.

    For every task ``i``, in turn over the other tasks ``j`` (in a random order): when
    ``g_i^{pc} · g_j < 0``, ``g_i^{pc} ← g_i^{pc} - (g_i^{pc} · g_j) / \lVert g_j \rVert^2 \, g_j``
    (``g_j`` the *original* gradient of task ``j``).

    Parameters
    ----------
    grads : Tensor of shape (T, P)
        One flattened gradient per task.
    generator : torch.Generator, optional
        Random source of the task orders (default: torch's global generator).

    Returns
    -------
    projected : Tensor of shape (T, P)
        The projected gradients ``g_i^{pc}`` (their sum is PCGrad's update).

    Examples
    --------
    >>> import torch
    >>> project_conflicting(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    tensor([[0.5000, 0.5000],
            [0.0000, 1.0000]])
    """
    n_tasks = grads.shape[0]
    projected = grads.clone()
    sq_norms = (grads * grads).sum(1)
    for i in range(n_tasks):
        order = torch.randperm(n_tasks, generator=generator).tolist()
        for j in order:
            if j == i or sq_norms[j] <= 0:
                continue
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / sq_norms[j] * grads[j]
    return projected


@register_weighting("pcgrad")
class PCGrad(Weighting):
    """Projecting conflicting gradients (Yu et al., NeurIPS 2020).

    The gradient of each present task's weighted loss ``b_t L_t`` with respect to the shared
    parameters (``model.shared_parameters()``) is computed separately; each is projected onto
    the normal plane of every other task gradient it conflicts with (negative dot product, in
    a random task order drawn from torch's RNG, so the net's ``random_state`` fixes it), see
    :func:`project_conflicting`; their sum becomes the shared parameters' gradient. The other
    (task-specific) parameters get the ordinary gradient of ``Σ_t b_t L_t``. Tasks without
    labels in the batch are skipped. The weights in force are the base weights.

    Costs one extra backward pass through the shared layers per task.

    Parameters
    ----------
    base_weights : sequence of float
        Static per-task weights ``b_t``.
    task_kinds : sequence of str
        Kind of each task.
    """

    def backward(self, losses, present, model):  # noqa: D102
        objective = (self.base_weights * losses).sum()
        shared = [p for p in model.shared_parameters() if p.requires_grad]
        present_idx = torch.nonzero(present).flatten().tolist()
        if not shared or len(present_idx) < 2:
            objective.backward()
            return objective.detach()
        shared_ids = {id(p) for p in shared}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in shared_ids]
        rows = []
        for t in present_idx:
            grads = torch.autograd.grad(self.base_weights[t] * losses[t], shared,
                                        retain_graph=True, allow_unused=True)
            rows.append(torch.cat([
                (torch.zeros_like(p) if g is None else g).reshape(-1)
                for p, g in zip(shared, grads)]))
        total = project_conflicting(torch.stack(rows)).sum(0)
        if others:
            objective.backward(inputs=others)
        offset = 0
        for p in shared:
            g = total[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
            p.grad = g.clone() if p.grad is None else p.grad + g
        return objective.detach()


@register_weighting("rlw")
class RandomLossWeighting(Weighting):
    r"""Random loss weighting (Lin et al., TMLR 2022).

    For every batch, ``λ = T · softmax(z)`` with ``z ~ N(0, I_T)`` drawn from torch's RNG;
    the objective is ``Σ_t b_t λ_t L_t``. The weights recorded in the history are those of the
    epoch's last batch.

    Parameters
    ----------
    base_weights : sequence of float
        Static per-task weights ``b_t``.
    task_kinds : sequence of str
        Kind of each task.
    """

    lambdas: torch.Tensor

    def __init__(self, base_weights: Sequence[float], task_kinds: Sequence[str]):
        super().__init__(base_weights, task_kinds)
        self.register_buffer("lambdas", torch.ones(self.n_tasks))

    def task_weights(self) -> torch.Tensor:  # noqa: D102
        return self.base_weights * self.lambdas

    def combine(self, losses, present):  # noqa: D102
        if self.training:
            z = torch.randn(self.n_tasks).to(losses.device)
            self.lambdas.copy_(self.n_tasks * torch.softmax(z, dim=0))
        return (self.task_weights() * losses).sum()


def make_weighting(
    weighting: str | type[Weighting],
    base_weights: Sequence[float],
    task_kinds: Sequence[str],
    **params,
) -> Weighting:
    """Instantiate a strategy by registry name or class with its hyperparameters.

    Raises
    ------
    ValueError
        For an unknown name or a hyperparameter the strategy does not take (named as the
        ``weighting__<param>`` the user passed).
    """
    return build(WEIGHTINGS, Weighting, weighting, base_weights, task_kinds,
                 what="weighting", prefix="weighting", **params)
