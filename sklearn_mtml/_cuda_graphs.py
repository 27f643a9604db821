"""CUDA-graph capture of ``MultiTaskNet``'s training step (``cuda_graphs=True``).

The whole step (forward, per-task losses, the weighting's weighted sum and backward, the
``on_grad_computed`` callbacks and the optimizer step) is captured once in a
:class:`torch.cuda.CUDAGraph` and replayed for every later batch of the same shapes,
following PyTorch's whole-network capture recipe (CUDA semantics notes, "CUDA Graphs"):

1. a few eager warm-up steps on a side stream (here: the fit's first full batches, which
   are real training steps, so the warm-up changes nothing in the training),
2. ``optimizer.zero_grad(set_to_none=True)``, then the capture of one step on static
   input and target tensors (the capture runs nothing: the captured batch is then
   replayed),
3. for every later batch: copy it into the static tensors and replay the graph.

The optimizer is built with ``capturable=True`` and a tensor learning rate (updated in
place by the cosine schedule), so that its step count and learning rate live on the device.
A batch of other shapes (the short last batch of an epoch) runs eagerly.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
from skorch.utils import TeeGenerator

from ._device import resolve_device
from .weighting import WEIGHTINGS, RandomLossWeighting, Weighting

if TYPE_CHECKING:
    from .estimators import MultiTaskNet

__all__ = ["GraphedTrainStep", "check_cuda_graphs", "set_lr", "takes_capturable"]

#: Eager training steps (on a side stream) before the capture, as in PyTorch's recipe.
WARMUP_STEPS = 3


def takes_capturable(optimizer: Any) -> bool:
    """Whether an optimizer class takes ``capturable`` (its state can live in a graph)."""
    try:
        return "capturable" in inspect.signature(optimizer).parameters
    except (TypeError, ValueError):
        return False


def set_lr(group: dict, value: float) -> None:
    """Set a parameter group's learning rate, in place when it is a tensor (graph-safe)."""
    if isinstance(group["lr"], torch.Tensor):
        group["lr"].fill_(value)
    else:
        group["lr"] = value


def _weighting_class(weighting: Any) -> type | None:
    if isinstance(weighting, str):
        return WEIGHTINGS.get(weighting)
    return weighting if isinstance(weighting, type) else None


def check_cuda_graphs(net: MultiTaskNet) -> None:
    """Validate ``cuda_graphs`` and the options it cannot be combined with (at fit).

    Raises
    ------
    ValueError
        ``cuda_graphs`` is not a bool; it is combined with ``precision="16-mixed"``,
        ``compile=True``, a weighting with per-batch host logic (``"gradnorm"``,
        ``"pcgrad"``, ``"rlw"``) or an optimizer without ``capturable``; or the fit would
        not run on a CUDA device.
    """
    value = getattr(net, "cuda_graphs", False)
    if value not in (True, False):
        raise ValueError(f"cuda_graphs must be True or False, got {value!r}.")
    if not value:
        return
    if net.precision == "16-mixed":
        raise ValueError(
            "cuda_graphs=True cannot be combined with precision='16-mixed': its gradient "
            "scaler decides on the host whether to skip each step. Use precision='bf16' "
            "or '32' with cuda_graphs=True, or cuda_graphs=False."
        )
    if net.compile:
        raise ValueError(
            "cuda_graphs=True cannot be combined with compile=True; for compiled CUDA "
            "graphs use compile=True with compile__mode='reduce-overhead' and "
            "cuda_graphs=False."
        )
    cls = _weighting_class(net.weighting)
    if cls is not None and issubclass(cls, Weighting) and (
            cls.backward is not Weighting.backward or issubclass(cls, RandomLossWeighting)):
        raise ValueError(
            f"cuda_graphs=True cannot be combined with weighting={net.weighting!r}, which "
            "decides on the host, per batch, which tasks are present or draws its weights "
            "there; use 'fixed', 'uncertainty' or 'dwa' with cuda_graphs=True, or "
            "cuda_graphs=False."
        )
    if not takes_capturable(net.optimizer):
        name = getattr(net.optimizer, "__name__", repr(net.optimizer))
        raise ValueError(
            f"cuda_graphs=True needs an optimizer that takes capturable=True (its step "
            f"count on the device), such as torch.optim.AdamW or Adam; got optimizer={name}."
        )
    device = resolve_device(net.device)
    if device.type != "cuda":
        raise ValueError(
            f"cuda_graphs=True captures the training step in a CUDA graph and needs a CUDA "
            f"device, but this fit runs on {str(device)!r} (device={net.device!r}); use "
            "cuda_graphs=False on a machine without a GPU."
        )


def _unpack(batch: Any) -> tuple[list[str], list[torch.Tensor]] | None:
    """The block names and the tensors of a batch ``((blocks, mask), (targets, labels))``."""
    try:
        (blocks, mask), (targets, label_mask) = batch
        names = list(blocks)
        tensors = [*blocks.values(), mask, targets, label_mask]
    except (TypeError, ValueError, AttributeError):
        return None
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return None
    return names, tensors


def _pack(names: list[str], tensors: list[torch.Tensor]) -> Any:
    k = len(names)
    mask, targets, label_mask = tensors[k:]
    return (dict(zip(names, tensors[:k])), mask), (targets, label_mask)


class GraphedTrainStep:
    """The training step of one fit, captured in a CUDA graph for batches of one shape.

    Parameters
    ----------
    net : MultiTaskNet
        The net being fitted (on a CUDA device).
    capture_error_mode : str, default="global"
        ``torch.cuda.graph``'s mode; ``"thread_local"`` (what the net passes) when another
        thread may prepare the next batch (streamed inputs, a pinning ``DataLoader``)
        during the capture.
    """

    def __init__(self, net: MultiTaskNet, capture_error_mode: str = "global"):
        self.net = net
        self.capture_error_mode = capture_error_mode
        self.key: tuple | None = None
        self.warmed = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[torch.Tensor] = []
        self.outputs: dict[str, Any] = {}
        self.stream: torch.cuda.Stream | None = None
        self.replays = 0

    def __call__(self, batch: Any) -> dict[str, Any]:
        """Train on ``batch``: replay the graph, or an eager step (warm-up, other shapes)."""
        unpacked = _unpack(batch)
        if unpacked is None:
            return self.net._eager_train_step(batch)
        names, tensors = unpacked
        key = (tuple(names), tuple((tuple(t.shape), t.dtype) for t in tensors))
        if self.key is None:
            self.key = key  # the first batch has the full batch size
        if key != self.key:
            return self.net._eager_train_step(batch)  # e.g. the short last batch
        if self.graph is None and self.warmed < WARMUP_STEPS:
            return self._warm_up(batch)
        if self.graph is None:
            self._capture(names, tensors)
        else:
            for static, tensor in zip(self.static, tensors):
                static.copy_(tensor)
        assert self.graph is not None
        self.graph.replay()
        self.replays += 1
        return self.outputs

    def _warm_up(self, batch: Any) -> dict[str, Any]:
        """An eager step on a side stream (the recipe's warm-up; a real training step)."""
        if self.stream is None:
            self.stream = torch.cuda.Stream(device=self.net.device_)
        self.stream.wait_stream(torch.cuda.current_stream(self.net.device_))
        with torch.cuda.stream(self.stream):
            step = self.net._eager_train_step(batch)
        torch.cuda.current_stream(self.net.device_).wait_stream(self.stream)
        self.warmed += 1
        return step

    def _capture(self, names: list[str], tensors: list[torch.Tensor]) -> None:
        """Capture one step on static copies of ``tensors`` (nothing runs until replay)."""
        net = self.net
        self.static = [t.clone() for t in tensors]
        static_batch = _pack(names, self.static)
        graph = torch.cuda.CUDAGraph()
        net.optimizer_.zero_grad(set_to_none=True)
        try:
            with torch.cuda.graph(graph, stream=self.stream,
                                  capture_error_mode=self.capture_error_mode):
                step = net.train_step_single(static_batch)
                net.notify("on_grad_computed",
                           named_parameters=TeeGenerator(net.get_all_learnable_params()),
                           batch=static_batch, training=True)
                net.optimizer_.step()
        except RuntimeError as exc:
            raise RuntimeError(
                "cuda_graphs=True: the capture of the training step in a CUDA graph failed. "
                "Something in the step synchronises with the host or changes shape from "
                "batch to batch (a custom module, loss, weighting or an on_grad_computed "
                "callback reading values with .item() or .cpu()); fit with "
                f"cuda_graphs=False. The error was: {exc}"
            ) from exc
        self.graph = graph
        self.outputs = step
