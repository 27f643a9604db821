"""``MultiTaskNet`` under Hugging Face Accelerate (``accelerate launch``).

:class:`AcceleratedMultiTaskNet` is skorch's :class:`~skorch.hf.AccelerateMixin` on a
:class:`~sklearn_mtml.MultiTaskNet`. The accelerator places the network on its device,
wraps it for data-parallel training (``DistributedDataParallel``), runs its forward pass in
the mixed precision it was configured with, scales and accumulates gradients and steps the
optimizer; the net keeps its own row sharding, per-task statistics summed across
processes, and plain ``module_`` (checkpoints and pickles hold the unwrapped network).

Needs the ``accelerate`` package: ``pip install sklearn-mtml[distributed]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from skorch.hf import AccelerateMixin

from ._distributed import average_gradients, process_group
from ._optional import require
from .callbacks import print_sink
from .estimators import MultiTaskNet
from .weighting import Weighting

__all__ = ["AcceleratedMultiTaskNet"]

_NEEDED_BY = "AcceleratedMultiTaskNet"


def _silent(text: str) -> None:
    """The log sink of the processes that do not print (all but each machine's first)."""


def _accelerate() -> Any:
    """The ``accelerate`` module, or an ImportError that names the extra installing it."""
    return require("accelerate", needed_by=_NEEDED_BY, extra="distributed")


class AcceleratedMultiTaskNet(AccelerateMixin, MultiTaskNet):
    """A :class:`~sklearn_mtml.MultiTaskNet` trained through an ``accelerate.Accelerator``.

    Start the script with ``accelerate launch`` (or ``torchrun``): every process builds the
    same net with an ``Accelerator()`` and calls ``fit`` on the same data, as in the
    ``torchrun`` path of ``MultiTaskNet`` (``distributed="auto"``): each process trains on
    its share of the rows, the per-epoch losses and per-task validation metrics are summed
    across processes (every process records the same history and stops at the same
    epoch), and the processes end with the same network. What the accelerator brings:

    - the device (``accelerator.device``: one GPU per process, or the CPU) and the
      process group (NCCL on GPUs, gloo on CPUs), from ``accelerate config`` /
      ``accelerate launch`` options;
    - the ``DistributedDataParallel`` wrapper of the network (``MultiTaskNet`` does not wrap
      it a second time); unless the accelerator has its own ``DistributedDataParallelKwargs``
      handler, one with ``find_unused_parameters=True`` is set on it (a block missing from a
      batch leaves parameters without gradients);
    - mixed precision: ``Accelerator(mixed_precision="bf16" | "fp16")`` (or ``accelerate
      launch --mixed_precision``) autocasts the forward pass, and with ``"fp16"`` scales the
      loss (gradients are unscaled before ``on_grad_computed``, so
      ``GradientNormClipping`` sees true gradients); the net's own ``precision`` must stay
      ``"32"``;
    - gradient accumulation: ``Accelerator(gradient_accumulation_steps=k)`` steps the
      optimizer every ``k`` batches (gradients are zeroed after each optimizer step).

    The backward pass goes through ``accelerator.backward`` for the weightings that
    combine the task losses into one objective (``"fixed"``, ``"uncertainty"``, ``"dwa"``,
    ``"rlw"``). ``"gradnorm"`` and ``"pcgrad"`` compute per-task gradients themselves: they
    are accepted only in a single process without ``"fp16"`` and without gradient
    accumulation. DeepSpeed, FSDP, Megatron-LM and XLA accelerators, ``cuda_graphs=True``
    and ``precision`` other than ``"32"`` are refused with a ``ValueError``.

    Training batches are ``MultiTaskNet``'s own (sliced from the rows on the device and
    sharded by process), not DataLoaders prepared by the accelerator; skorch
    ``LRScheduler`` callbacks are not wrapped by it either (they step as in one process).

    Parameters
    ----------
    tasks : mapping, sequence or None, default=None
        As in :class:`~sklearn_mtml.MultiTaskNet`.
    accelerator : accelerate.Accelerator
        The accelerator of this process, e.g. ``Accelerator()`` under ``accelerate launch``,
        or ``Accelerator(cpu=True)`` in one CPU process.
    device : None, default=None
        Must stay None: the net trains on ``accelerator.device`` (``device_``).
    unwrap_after_train : bool, default=True
        Undo the accelerator's preparation at the end of each fit (the data-parallel
        wrapper, the mixed-precision forward, the accelerated optimizer), so that the
        fitted net predicts in float32 and can be pickled. ``False`` keeps it (a net
        prepared this way cannot be pickled).
    callbacks__print_log__sink : "auto" or callable, default="auto"
        ``"auto"``: ``print`` on each machine's main process (when ``verbose``), nothing
        on the other processes.
    **kwargs
        Any other parameter of :class:`~sklearn_mtml.MultiTaskNet`; ``history`` (not a
        parameter) may be a ``skorch.history.DistributedHistory`` to merge the per-batch
        records of all processes.

    Attributes
    ----------
    device_ : torch.device
        The accelerator's device this process trained on.

    See Also
    --------
    sklearn_mtml.MultiTaskNet : the estimator (and its ``torchrun`` data-parallel path).

    Notes
    -----
    Checkpoints: :meth:`save_params` (and so skorch's ``Checkpoint``) waits for every
    process and writes on the main process only; the files hold the unwrapped network and
    load into an ordinary ``MultiTaskNet`` created with the same parameters, in a single
    process (``net.initialize(); net.load_params(f_params=...)``). See
    ``docs/scaling.md``.

    Examples
    --------
    >>> import numpy as np
    >>> from accelerate import Accelerator  # doctest: +SKIP
    >>> from sklearn_mtml.accelerate import AcceleratedMultiTaskNet
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(300, 4).astype("float32")
    >>> Y = np.column_stack([X[:, 0] > 0, X[:, 1] - X[:, 2]])
    >>> net = AcceleratedMultiTaskNet(accelerator=Accelerator(cpu=True),  # doctest: +SKIP
    ...                               max_epochs=3, random_state=0).fit(X, Y)
    >>> net.predict(X[:2]).shape  # doctest: +SKIP
    (2, 2)
    """

    def __init__(self, tasks: Any = None, *, accelerator: Any, device: str | None = None,
                 unwrap_after_train: bool = True, callbacks__print_log__sink: Any = "auto",
                 **kwargs: Any):
        history = kwargs.pop("history", None)  # as skorch's NeuralNet: not a parameter
        super().__init__(tasks, accelerator=accelerator, device=device,  # type: ignore[arg-type]
                         unwrap_after_train=unwrap_after_train,
                         callbacks__print_log__sink=callbacks__print_log__sink, **kwargs)
        if history is not None:
            self.history_ = history

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters, as :class:`~sklearn_mtml.MultiTaskNet`'s.

        ``callbacks__print_log__sink`` is this net's own parameter, which skorch applies to
        the ``print_log`` callback when it initialises; the deep parameters report the value
        given here rather than the unconfigured callback's.
        """
        params = super().get_params(deep=deep)
        params["callbacks__print_log__sink"] = self.__dict__.get(
            "callbacks__print_log__sink", "auto")
        return params

    @classmethod
    def _get_init_param_names(cls) -> list[str]:
        return sorted({*MultiTaskNet._get_init_param_names(), "accelerator",
                       "unwrap_after_train"})

    # ------------------------------------------------------------------------------------
    # checks and the accelerator's device
    # ------------------------------------------------------------------------------------
    def _check_accelerator(self) -> None:
        """Refuse what the accelerator and this net cannot do together."""
        accelerate = _accelerate()
        acc = self.accelerator
        if not isinstance(acc, accelerate.Accelerator):
            raise TypeError(f"accelerator must be an accelerate.Accelerator, got "
                            f"{type(acc).__name__}.")
        kind = str(getattr(acc.distributed_type, "value", acc.distributed_type))
        if kind != "NO" and not kind.startswith("MULTI_"):
            raise ValueError(
                f"The accelerator's distributed_type is {kind}; {_NEEDED_BY} trains "
                "data-parallel only (one process per GPU, or several CPU processes): "
                "DeepSpeed, FSDP, Megatron-LM and XLA are not supported."
            )
        if self.device is not None:
            raise ValueError(f"device must be None with an accelerator (the net trains on "
                             f"accelerator.device, {acc.device}); got {self.device!r}.")
        if self.precision != "32":
            raise ValueError(
                f"precision={self.precision!r}: with an accelerator, set the mixed precision "
                "on it (Accelerator(mixed_precision='bf16' or 'fp16'), or accelerate launch "
                "--mixed_precision) and leave precision='32'."
            )
        if getattr(self, "cuda_graphs", False):
            raise ValueError("cuda_graphs=True is not supported with an accelerator; use "
                             "MultiTaskNet (without Accelerate) for CUDA graphs.")
        rank, world = process_group(self.distributed)
        if (rank, world) != (acc.process_index, acc.num_processes):
            raise ValueError(
                f"distributed={self.distributed!r} makes this process rank {rank} of {world}, "
                f"but the accelerator runs process {acc.process_index} of "
                f"{acc.num_processes}: leave distributed='auto' with an accelerator."
            )

    def _check_weighting(self) -> None:
        """GradNorm and PCGrad backpropagate per task: no loss scaling, no accumulation."""
        if type(self.weighting_).backward is Weighting.backward:
            return
        acc = self.accelerator
        if acc.num_processes > 1 or acc.scaler is not None \
                or acc.gradient_accumulation_steps > 1:
            raise ValueError(
                f"weighting={self.weighting!r} computes per-task gradients itself, which the "
                f"accelerator cannot combine across processes ({acc.num_processes}), scale "
                f"for fp16 (mixed_precision={acc.mixed_precision!r}) or accumulate "
                f"(gradient_accumulation_steps={acc.gradient_accumulation_steps}); use "
                "'fixed', 'uncertainty', 'dwa' or 'rlw'."
            )

    @contextlib.contextmanager
    def _on_accelerator_device(self) -> Iterator[None]:
        """Let ``MultiTaskNet`` resolve ``device`` to the accelerator's device."""
        requested = self.device
        self.__dict__["device"] = str(self.accelerator.device)
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def _initialize_callbacks(self) -> AcceleratedMultiTaskNet:
        # skorch's mixin resolves "auto" to accelerator.print, which skorch's PrintLog calls
        # whatever ``verbose`` says; print on the main process keeps verbose=0 silent
        # (resolved for the callbacks only: the parameter keeps the value it was given)
        sink: Any = self.__dict__.get("callbacks__print_log__sink")
        auto = isinstance(sink, str) and sink == "auto"
        if auto:
            self.__dict__["callbacks__print_log__sink"] = (
                print_sink if self.accelerator.is_local_main_process else _silent)
        try:
            super(AccelerateMixin, self)._initialize_callbacks()
        finally:
            if auto:
                self.__dict__["callbacks__print_log__sink"] = sink
        return self

    def _validate_params(self) -> None:
        # skorch's checks, without the mixin's device=None check: the net resolves its
        # device to accelerator.device itself (device_), which skorch's initialise reads
        super(AccelerateMixin, self)._validate_params()

    # ------------------------------------------------------------------------------------
    # preparation by the accelerator: module_ stays the plain network
    # ------------------------------------------------------------------------------------
    def initialize(self) -> AcceleratedMultiTaskNet:
        """Initialise as :meth:`MultiTaskNet.initialize <sklearn_mtml.MultiTaskNet.initialize>`.

        The accelerator prepares the network and the optimizer when training starts (and,
        with ``unwrap_after_train``, releases them when it ends), so an initialised net
        holds the plain modules.
        """
        self._unwrap_accelerator()
        MultiTaskNet.initialize(self)
        return self

    def _initialize_accelerator(self) -> AcceleratedMultiTaskNet:
        """Prepare the network and the optimizer (idempotent)."""
        if getattr(self, "_wrapped_with_accelerator", False):
            return self
        accelerate = _accelerate()
        acc = self.accelerator
        if acc.num_processes > 1 and acc.ddp_handler is None:
            acc.ddp_handler = accelerate.DistributedDataParallelKwargs(
                find_unused_parameters=True)
        # the prepared network (wrapped, mixed-precision forward) serves the training
        # forward passes (MultiTaskNet._forward_module); module_ itself stays unwrapped
        self.__dict__["_accelerated_module"] = acc.prepare_model(self.module_)
        optimizer: Any = self.__dict__["optimizer_"]
        if not isinstance(optimizer, accelerate.optimizer.AcceleratedOptimizer):
            self.optimizer_ = acc.prepare_optimizer(optimizer)
        self._wrapped_with_accelerator = True
        return self

    def _release(self, *prepared: Any) -> None:
        """Drop the accelerator's references to this net's prepared network and optimizer.

        ``Accelerator.prepare_*`` keeps every object it prepared (for ``save_state`` and
        ``free_memory``); without this an accelerator shared by many fits (a search) would
        hold every network of them, and the net's parameters could not be hashed or
        compared (the accelerator is one of them).
        """
        acc = self.accelerator
        for attr in ("_models", "_optimizers"):
            kept = getattr(acc, attr, None)
            if isinstance(kept, list):
                kept[:] = [obj for obj in kept if not any(obj is p for p in prepared)]

    def _unwrap_accelerator(self) -> None:
        """Undo :meth:`_initialize_accelerator` (the module's forward, the optimizer)."""
        if not getattr(self, "_wrapped_with_accelerator", False):
            return
        wrapped = self.__dict__.pop("_accelerated_module", None)
        self._release(wrapped, self.__dict__.get("optimizer_"))
        if wrapped is not None:
            module = self.accelerator.unwrap_model(wrapped, keep_fp32_wrapper=False)
            forward = module.__dict__.get("forward")
            if getattr(forward, "__func__", None) is type(module).forward:
                del module.forward  # what unwrapping leaves: the class's own forward, bound
        optimizer = self.__dict__.get("optimizer_")
        inner = getattr(optimizer, "optimizer", None)
        if isinstance(inner, torch.optim.Optimizer):
            self.optimizer_ = inner
        self._wrapped_with_accelerator = False

    def _prepare(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        self._check_accelerator()
        with self._on_accelerator_device():
            return super()._prepare(X, y, sample_weight)

    def _train(self, data: Any, raw: tuple[Any, Any] = (None, None), **fit_params: Any
               ) -> None:
        self._check_accelerator()
        self._check_weighting()
        device = torch.device(self.accelerator.device)
        if self.device_ != device:  # e.g. loaded on another device, then partial_fit
            for name in [*self._modules, *self._criteria]:
                getattr(self, f"{name}_").to(device)
            self.device_ = device
        for name in self._optimizers:  # gradients are zeroed after each step from now on
            optimizer = getattr(self, f"{name}_")
            getattr(optimizer, "optimizer", optimizer).zero_grad(set_to_none=True)
        self._initialize_accelerator()
        # MultiTaskNet wraps module_ in DistributedDataParallel unless this is set
        self.__dict__["_ddp_module"] = self.__dict__["_accelerated_module"]
        try:
            super()._train(data, raw=raw, **fit_params)
        except BaseException:
            self.__dict__.pop("_ddp_module", None)
            self._unwrap_accelerator()
            raise

    # ------------------------------------------------------------------------------------
    # training steps
    # ------------------------------------------------------------------------------------
    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """``MultiTaskNet``'s batches, not prepared by the accelerator (they shard the rows).

        See :meth:`MultiTaskNet.get_iterator <sklearn_mtml.MultiTaskNet.get_iterator>`.
        """
        return MultiTaskNet.get_iterator(self, dataset, training=training)

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """One optimizer step (or accumulation step) inside ``accelerator.accumulate``."""
        model = self.__dict__.get("_accelerated_module", self.module_)
        with self.accelerator.accumulate(model):
            return MultiTaskNet.train_step(self, batch, **fit_params)

    def _zero_grad_optimizer(self, set_to_none: bool | None = None) -> None:
        # Zeroing before the backward pass (skorch's order) would drop the gradients
        # accumulated over gradient_accumulation_steps: _step_optimizer zeroes after stepping.
        return None

    def _step_optimizer(self, step_fn: Any) -> None:
        step_fn()
        for name in self._optimizers:
            optimizer = getattr(self, f"{name}_")
            optimizer.step()  # the accelerated optimizer skips accumulation steps
            optimizer.zero_grad(set_to_none=True)  # (and keeps their gradients)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Forward, per-task losses and ``accelerator.backward`` of the weighted objective.

        Returns
        -------
        step : dict
            As :meth:`MultiTaskNet.train_step_single
            <sklearn_mtml.MultiTaskNet.train_step_single>`.
        """
        if type(self.weighting_).backward is not Weighting.backward:
            # GradNorm / PCGrad in one process without loss scaling (_check_weighting)
            return MultiTaskNet.train_step_single(self, batch, **fit_params)
        y_pred, losses, counts = self._training_losses(batch, **fit_params)
        objective = self.weighting_.combine(losses, counts > 0)
        acc = self.accelerator
        acc.backward(objective)
        if acc.scaler is not None and acc.sync_gradients:
            acc.unscale_gradients(self.optimizer_)  # true gradients for on_grad_computed
        average_gradients(self.weighting_.parameters(), self.__dict__.get("_shard", (0, 1))[1])
        outputs = y_pred[0] if isinstance(y_pred, tuple) else y_pred
        return {"loss": objective.detach(), "y_pred": outputs, "task_losses": losses.detach(),
                "task_counts": counts}

    def evaluation_step(self, batch: Any, training: bool = False) -> Any:
        """The network's outputs on a prediction batch (not gathered across processes).

        Every process predicts on all the rows it is given, as ``MultiTaskNet`` does.
        """
        return MultiTaskNet.evaluation_step(self, batch, training=training)

    # ------------------------------------------------------------------------------------
    # checkpoints and pickling
    # ------------------------------------------------------------------------------------
    def save_params(self, *args: Any, **kwargs: Any) -> None:
        """Save as :meth:`MultiTaskNet.save_params <sklearn_mtml.MultiTaskNet.save_params>`.

        Every process must call it (it waits for all of them); the main process writes.
        The files hold the plain network: they load into an ordinary ``MultiTaskNet``.
        """
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            MultiTaskNet.save_params(self, *args, **kwargs)
        self.accelerator.wait_for_everyone()

    def load_params(self, *args: Any, **kwargs: Any) -> None:
        """Load as :meth:`MultiTaskNet.load_params <sklearn_mtml.MultiTaskNet.load_params>`.

        Every process must call it (it waits until the main process has written); the
        parameters go to the accelerator's device.
        """
        self.accelerator.wait_for_everyone()
        with self._on_accelerator_device():
            MultiTaskNet.load_params(self, *args, **kwargs)

    def __getstate__(self) -> dict:  # noqa: D105
        if getattr(self, "_wrapped_with_accelerator", False):
            raise TypeError(
                f"This {_NEEDED_BY} is still prepared by its accelerator "
                "(unwrap_after_train=False) and cannot be pickled: fit with "
                "unwrap_after_train=True, or save it with save_params."
            )
        state = super().__getstate__()
        state.pop("_accelerated_module", None)
        return state
