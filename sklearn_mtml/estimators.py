"""``MultiTaskNet``: a skorch ``NeuralNet`` that learns several targets at once.

This is where the scikit-learn side (targets, validation, the estimator contract) meets the
pure-torch side (:mod:`sklearn_mtml.nn`). Training does not go through a per-row
``Dataset.__getitem__``: the whole training set is moved to the training device once per fit
and batches are sliced from those tensors by index; prediction runs in large chunks and copies
to the host once.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import ClassifierTags, RegressorTags, Tags, check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, LRScheduler
from skorch.callbacks import ProgressBar as SkorchProgressBar
from skorch.dataset import ValidSplit, unpack_data
from skorch.history import History
from skorch.utils import TeeGenerator
from torch import nn
from torch.func import functional_call

from ._cuda_graphs import GraphedTrainStep, check_cuda_graphs, set_lr, takes_capturable
from ._device import resolve_device
from ._distributed import all_reduce_sum, average_gradients, broadcast_seed, process_group
from ._inputs import (
    SINGLE_BLOCK,
    InputLayout,
    RowSubset,
    check_array_input,
    check_numeric_frame,
    convert_blocks,
    declared_vocab_sizes,
    is_block_input,
    prefix_groups,
)
from ._rows import (
    DeviceRows,
    FilePredictRows,
    FileRows,
    HostRows,
    PredictRows,
    RowBatches,
    batch_spans,
    is_memory_mapped,
)
from ._training import (
    auto_batch_size,
    auto_max_epochs,
    cosine_factor,
    fit_threads,
    torch_threads,
)
from .callbacks import CompactPrintLog, EarlyStopping, TaskScores, TaskWeights
from .lazy import FileBlocks, lazy_source
from .nn.encoders import reads_tokens
from .nn.model import MultiTaskModule
from .nn.scaling import SCALINGS, block_statistics
from .tasks import (
    Task,
    TaskSet,
    _ClassificationTask,
    is_missing,
    resolve_loss_weights,
    resolve_task_kinds,
)
from .weighting import Weighting, make_weighting

__all__ = ["MultiTaskLoss", "MultiTaskNet"]

#: Fitted attributes that define the network's shape, saved beside checkpointed parameters.
_LAYOUT_STATE = ("tasks_", "task_names_", "layout_", "input_stats_", "classes_",
                 "n_features_in_", "feature_names_in_", "_y_1d", "file_settings_")
#: ``precision`` values and their autocast dtypes (``None``: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {"32": None, "bf16": torch.bfloat16,
                                              "16-mixed": torch.float16}
#: Key of the loss weighting's state in the saved layout.
_WEIGHTING_STATE = "weighting_state"
_TASK_EPOCHS_STATE = "task_epochs"  # each task's own best epoch and its weights


class MultiTaskLoss(nn.Module):
    """Per-task masked losses of a batch.

    Parameters
    ----------
    tasks : sequence of Task
        The fitted tasks, in output order.
    """

    def __init__(self, tasks: Sequence[Task]):
        super().__init__()
        self.tasks = list(tasks)

    def forward(self, outputs: Sequence[torch.Tensor], targets: torch.Tensor,
                label_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute the losses of every task on a batch.

        Parameters
        ----------
        outputs : list of Tensor
            Each task's head outputs ``(n, k_t)``.
        targets : Tensor of shape (n, T)
            Encoded targets.
        label_mask : Tensor of shape (n, T)
            Weight of each row's label for each task: 0 where the label is missing, else
            the row's sample weight (1 without weights); a boolean mask works too.

        Returns
        -------
        mean : Tensor of shape (T,)
            Weighted mean loss per task over its labelled rows (0 for a task without labels).
        total : Tensor of shape (T,)
            Weighted sum of the loss per task over its labelled rows.
        count : Tensor of shape (T,)
            Sum of the label weights per task (the number of labelled rows without weights).
        """
        m = label_mask.to(targets.dtype)
        total = torch.stack([
            (task.loss(out, targets[:, t]) * m[:, t]).sum()
            for t, (task, out) in enumerate(zip(self.tasks, outputs))
        ])
        count = m.sum(0)
        return total / count.clamp_min(1e-12), total, count


def _check_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """Validate per-row weights: ``None``, or ``n`` finite non-negative numbers, not all 0."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sample_weight must be numbers, got {sample_weight!r}.") from exc
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},), one weight per "
                         "row of X.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    if not np.any(w > 0):
        raise ValueError("sample_weight is zero for every row: at least one row must count.")
    return w


class MeanTaskScoreMixin:
    """``score``: the mean of ``score_tasks``, for estimators that score each task.

    Accuracy (classification) and R² (regression) both lie in (-inf, 1], higher is better,
    so their mean is what ``GridSearchCV`` maximises by default.
    """

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over tasks of the per-task scores of :meth:`score_tasks`.

        Parameters
        ----------
        X : array-like, DataFrame, dict of arrays or ModalityBlocks
            Input.
        y : array-like or DataFrame
            True targets, one column per task.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in every task's score.

        Returns
        -------
        score : float
            The mean over the tasks that have a labelled row in ``y``.
        """
        tasks = cast(Any, self).score_tasks(X, y, sample_weight)
        return float(np.nanmean(np.array(list(tasks.values()), dtype=float)))


class MultiTaskNet(MeanTaskScoreMixin, NeuralNet):
    """Multi-task (and multi-modal) neural network with a scikit-learn interface.

    One model learns several targets at once: binary, multi-class and regression tasks, in any
    mix. ``Y`` has one column per task; a missing label (``NaN``/``None``) masks that task's
    loss for that row while the row still trains the other tasks. ``X`` is a 2-D feature matrix
    (array, DataFrame, sparse matrix), a dict of blocks ``{modality: array}`` or the
    ``ModalityBlocks`` produced by :class:`~sklearn_mtml.ModalityFusion`; the network learns
    the block layout at fit.

    It is a skorch :class:`~skorch.NeuralNet`: ``module__*``, ``optimizer__*``,
    ``callbacks__*`` and ``weighting__*`` parameters are routed as in skorch, and skorch's
    callbacks (``EarlyStopping``, ``Checkpoint``, ``LRScheduler``, ``EpochScoring``,
    ``GradientNormClipping``) work; for a progress bar use
    :class:`sklearn_mtml.callbacks.ProgressBar`, which reads the automatic batch size.

    Parameters
    ----------
    tasks : dict of str to str, sequence of str, or None, default=None
        Kind of each task: ``"binary"``, ``"multiclass"`` or ``"regression"``. ``None`` infers
        every task from its target column with :func:`sklearn_mtml.tasks.infer_task_kind`:
        strings and booleans give binary or multi-class, non-whole numbers give regression,
        and whole numbers give binary with two values, otherwise multi-class when they look
        like class codes and regression when they look like a quantity (fewer than 5 rows per
        value, a smallest value other than 0 or 1, sparse values or a float dtype), with a
        ``TaskInferenceWarning`` naming the column whenever whole numbers are inferred as
        regression or as more than 10 classes. A dict names tasks
        (columns of a DataFrame ``Y``, or, for an array ``Y`` with as many columns, the names
        of its columns in order); columns it does not list are inferred. A sequence gives the
        kinds in column order.
    architecture : str or MultiTaskArchitecture subclass, default="shared_bottom"
        How tasks share the network; see :data:`sklearn_mtml.nn.ARCHITECTURES`. Its sizes are
        ``module__`` parameters (``module__hidden_sizes``, ``module__tower_sizes``,
        ``module__dropout``, ``module__activation``, ...).
    fusion : {"auto", "concat", "attention", "gated", "late"} or nn.Module subclass, \
            default="auto"
        How the blocks of a multi-block ``X`` are fused (ignored for a single block); a class
        follows the contract of :mod:`sklearn_mtml.nn.fusion`, and ``module__fusion_params``
        are its keyword arguments. Each block's encoder is chosen from its shape (token-id
        blocks: an embedding encoder) and overridden with ``module__encoders`` (a name, a
        class or any ``nn.Module`` instance) and ``module__encoder_params``.
        ``"auto"`` is late fusion with deep supervision and modality dropout: every modality
        keeps its own towers and heads, trained on every task on their own as well as
        jointly (``module__block_loss_weight``, ``module__modality_dropout``), so that the
        fused model keeps close to its best single modality, also when some modalities are
        missing at predict time (``docs/quality.md`` measures how close).
    regression_loss : {"squared", "huber"}, default="squared"
        Loss of every regression task, on the standardised target: squared error, or the
        Huber loss (quadratic within one standard deviation, linear beyond; robust to
        outlying labels).
    regression_bounds : float or None, default=0.25
        Regression predictions are clipped to the training targets' range widened by this
        share of it on each side, so that inputs from a shifted distribution (a later period,
        an unseen group) cannot send predictions far beyond anything seen at fit. ``None``
        leaves them unbounded.
    loss_weights : dict of str to float, sequence of float, or None, default=None
        Static weight of each task's loss (missing tasks weigh 1). An ordinary
        hyperparameter: search it with ``GridSearchCV``.
    weighting : str or Weighting subclass, default="fixed"
        Loss-weighting strategy; see :data:`sklearn_mtml.weighting.WEIGHTINGS`. Its
        hyperparameters are ``weighting__`` parameters.
    optimizer : torch optimizer class, default=torch.optim.AdamW
        Optimizer; its arguments are ``optimizer__`` parameters.
    lr : float, default=1e-3
        Learning rate (the initial one, see ``lr_schedule``).
    max_epochs : int or "auto", default="auto"
        Number of epochs (at most, with early stopping). ``"auto"`` plans about 2,000
        optimizer steps with early stopping, ``2 · n_train`` (at most 2,000) without it,
        between 10 and 300 epochs: many passes over small data, few over large data, few
        over data too small to hold out validation rows.
    batch_size : int or "auto", default="auto"
        Training batch size. ``"auto"``: about ``n_train / 32`` rounded to a power of two,
        between 16 and 256. Prediction uses ``iterator_valid__batch_size`` when given, else
        chunks of ``max(batch_size, 16384)`` rows.
    input_scaling : {"robust", "standard"} or None, default="robust"
        Standardise every input block inside the network from the training rows (median and
        inter-quartile range, or mean and standard deviation; per column, per frame feature
        or per image channel), with a soft clip of extreme values: no scaler is needed in
        front of the net. ``None`` feeds the inputs as they are.
    early_stopping : bool or "auto", default="auto"
        Stop when the validation loss has not improved for ``n_iter_no_change`` epochs, and
        restore the weights of the best epoch. The validation rows are those of
        ``train_split`` when given, else a random ``validation_fraction`` of the training
        rows. ``"auto"``: on when that holds at least 20 rows (``train_split`` given, or
        200 rows or more at the default fraction).
    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping when ``train_split`` is None.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    lr_schedule : {"cosine"} or None, default="cosine"
        Learning-rate schedule over the planned epochs: cosine decay from ``lr`` to
        ``lr / 20``. ``None`` keeps ``lr`` constant. Ignored when skorch's ``LRScheduler``
        callback is given.
    train_split : None, float, int or callable, default=None
        Validation split: ``None`` trains on all rows; a float in (0, 1) holds out that share
        of rows; an int ``k`` holds out ``1/k``; a skorch ``ValidSplit`` or any callable
        ``(dataset, y) -> (train_subset, valid_subset)`` returning ``torch.utils.data.Subset``
        objects is used as in skorch. With a split, every epoch records each task's
        validation loss and metric.
    iterator_train, iterator_valid : class or None, default=None
        ``None``: training, validation and prediction batches are sliced from tensors on
        the device (fast; ``iterator_train__batch_size``, ``iterator_*__shuffle`` and
        ``iterator_*__drop_last`` are honoured). A class such as
        :class:`torch.utils.data.DataLoader` (also used when other ``iterator_train__``
        parameters are given) reads the training rows one by one, as skorch does.
    callbacks : list of (str, Callback) or Callback, optional
        skorch callbacks, added to the defaults (``epoch_timer``, ``valid_scores``,
        ``task_weights``, ``print_log``, ``early_stopping``; see
        :meth:`get_default_callbacks`), which ``callbacks__<name>=None`` removes.
    warm_start : bool, default=False
        Keep training the fitted network on the next ``fit``.
    verbose : int, default=0
        ``1`` prints one line per epoch (epoch, training loss, validation loss and score,
        duration); ``2`` adds every task's losses, metrics and weights.
    device : str, default="auto"
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout (the global torch RNG is restored
        afterwards). Runs are reproducible on the CPU.
    compile : bool, default=False
        Run the network through ``torch.compile`` (``compile__*`` parameters are its
        arguments, e.g. ``compile__mode="max-autotune"``) for training and prediction. The
        module itself (``module_``, its ``state_dict``, pickles, checkpoints) stays the plain
        one. The first steps pay the compilation (tens of seconds on a CPU); it pays off on
        GPUs and large models.
    precision : {"32", "bf16", "16-mixed"}, default="32"
        Numeric precision of the forward passes: float32; bfloat16 autocast (``"bf16"``:
        weights and optimizer stay float32); or float16 autocast with a gradient scaler
        (``"16-mixed"``, for GPUs without bfloat16; not with ``weighting="gradnorm"`` or
        ``"pcgrad"``, which compute per-task gradients themselves). Losses are computed in
        float32. Meant for GPUs: on a CPU without bfloat16 units ``"bf16"`` is slower.
    cuda_graphs : bool, default=False
        Capture the whole training step (forward, task losses, weighted sum, backward,
        optimizer step) in a CUDA graph and replay it for every full batch, which removes
        the per-kernel launch cost of small networks on GPUs. The first three full batches
        of a fit train eagerly (the warm-up), a batch of another size (the short last one)
        trains eagerly. Needs a CUDA device (a fit on the CPU raises ``ValueError``) and an
        optimizer taking ``capturable`` (Adam, AdamW, ...); not with
        ``precision="16-mixed"``, ``compile=True``, ``weighting="gradnorm"``, ``"pcgrad"``
        or ``"rlw"`` or data-parallel training. See ``docs/performance.md``.
    streaming : bool or "auto", default="auto"
        Where the training inputs live during a fit. ``False``: on the training device,
        copied once per fit and sliced per batch (fastest). ``True``: on the host, each
        batch's rows gathered, copied to the device and scaled while the previous batch
        trains, so memory stays bounded. ``"auto"`` streams when an input block is a
        memory-mapped array (``np.memmap``, ``np.load(..., mmap_mode="r")``) or, on a GPU,
        when the inputs exceed half of its free memory. A
        :class:`~sklearn_mtml.FileBlocks` input (files on disk) is decoded once into memory
        when its decoded features fit its ``memory_budget``, else (or with ``True``) decoded
        batch by batch at every epoch in ``DataLoader`` workers
        (``iterator_train__num_workers``, ``iterator_valid__num_workers``; other
        ``DataLoader`` options such as ``prefetch_factor`` are passed on too).
    distributed : bool or "auto", default="auto"
        Data-parallel training across processes: when ``torch.distributed``'s default
        process group holds several processes (``torchrun``), every process calls ``fit``
        on the same data, trains on its share of the rows through
        ``DistributedDataParallel`` and records the same history (statistics summed across
        processes). ``"auto"``: whenever such a group is initialised; ``True``: require it;
        ``False``: ignore it. See ``docs/scaling.md``.
    torch_load_kwargs : dict or None, default=None
        Keyword arguments of ``torch.load`` when unpickling (skorch).
    **kwargs
        Prefixed parameters (``module__*``, ``optimizer__*``, ``callbacks__*``,
        ``weighting__*``, ``iterator_valid__batch_size``).

    Attributes
    ----------
    tasks_ : TaskSet
        The fitted tasks, in output order (a mapping of task name to
        :class:`~sklearn_mtml.tasks.Task`).
    task_names_ : list of str
        Task names (columns of ``Y``), in output order.
    classes_ : ndarray or list
        For a 1-D ``y``, the classes of its task; else a list with one array of classes per
        task (``None`` for regression tasks), as in ``MultiOutputClassifier``. Only set when
        there is a classification task.
    n_features_in_ : int
        Number of features of a 2-D ``X``.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``.
    device_ : torch.device
        Device the network was trained on.
    input_stats_ : dict of str to (ndarray, ndarray) or None
        Per-block centre and scale of the inputs (``input_scaling``), from the fit's rows.
    file_settings_ : dict
        After a fit on a :class:`~sklearn_mtml.FileBlocks`, its decoding settings, which a
        ``FileBlocks`` to predict on must share.
    batch_size_ : int
        Training batch size used (``batch_size`` resolved).
    max_epochs_ : int
        Epochs planned by the last fit (``max_epochs`` resolved; early stopping may end
        sooner).
    best_epoch_ : int or None
        With early stopping, the (1-based) epoch whose weights were restored; else ``None``.
    task_epochs_ : dict of str to int
        The tasks that predict with the weights of their own best epoch rather than
        ``best_epoch_``'s, and those epochs (empty unless early stopping's paired test
        chose some; see :class:`~sklearn_mtml.callbacks.EarlyStopping`'s ``task_epochs``).
        Only those tasks' outputs come from their own epoch: :meth:`modality_weights` and
        :meth:`attention_weights` are the shared epoch's.
    task_states_ : dict of str to dict of Tensor
        The weights (``module_.state_dict()``, on the CPU) of each task of
        ``task_epochs_``.
    module_ : MultiTaskModule
        The trained network.
    weighting_ : Weighting
        The loss-weighting strategy (with its learned state).
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_loss_<task>``, ``weight_<task>`` and, with a
        validation split, ``valid_loss``, ``valid_loss_<task>``, ``valid_<metric>_<task>`` and
        ``valid_score`` (the mean per-task metric, as :meth:`score`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mtml import MultiTaskNet
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(200, 5).astype("float32")
    >>> Y = np.column_stack([(X[:, 0] > 0).astype(int), X[:, 1] * 2.5 + 0.1])
    >>> net = MultiTaskNet(tasks=["binary", "regression"], max_epochs=5,
    ...                    random_state=0).fit(X, Y)
    >>> net.predict(X[:3]).shape
    (3, 2)
    """

    # Class-level defaults, so that ``__init__`` sets nothing but parameters.
    initialized_ = False
    history_ = None
    virtual_params_: Mapping[str, Any] = MappingProxyType({})
    # Predictions never go through skorch's forward_iter, so scoring callbacks compute them
    # with net.predict on the rows (see RowSubset) instead of caching batch outputs.
    use_caching = False
    _modules: list[str]  # set by skorch: names of the registered module attributes
    prefixes_ = [*NeuralNet.prefixes_, "weighting"]
    # weighting_ may hold CUDA tensors: pickle it with skorch's device-independent mechanism.
    cuda_dependent_attributes_ = [*NeuralNet.cuda_dependent_attributes_, "weighting_"]

    def __init__(
        self,
        tasks: Mapping[str, str | None] | Sequence[str | None] | None = None,
        *,
        architecture: str = "shared_bottom",
        fusion: str = "auto",
        regression_loss: str = "squared",
        regression_bounds: float | None = 0.25,
        loss_weights: Mapping[str, float] | Sequence[float] | None = None,
        weighting: str = "fixed",
        optimizer: type[torch.optim.Optimizer] = torch.optim.AdamW,
        lr: float = 1e-3,
        max_epochs: int | str = "auto",
        batch_size: int | str = "auto",
        input_scaling: str | None = "robust",
        early_stopping: bool | str = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        lr_schedule: str | None = "cosine",
        train_split: Any = None,
        iterator_train: Any = None,
        iterator_valid: Any = None,
        callbacks: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        compile: bool = False,
        precision: str = "32",
        cuda_graphs: bool = False,
        streaming: bool | str = "auto",
        distributed: bool | str = "auto",
        torch_load_kwargs: dict | None = None,
        **kwargs: Any,
    ):
        self.tasks = tasks
        self.architecture = architecture
        self.fusion = fusion
        self.regression_loss = regression_loss
        self.regression_bounds = regression_bounds
        self.loss_weights = loss_weights
        self.weighting = weighting
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.input_scaling = input_scaling
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.lr_schedule = lr_schedule
        self.train_split = train_split
        self.iterator_train = iterator_train
        self.iterator_valid = iterator_valid
        self.callbacks = callbacks
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.compile = compile
        self.precision = precision
        self.cuda_graphs = cuda_graphs
        self.streaming = streaming
        self.distributed = distributed
        self.torch_load_kwargs = torch_load_kwargs
        self._params_to_validate = set(kwargs)
        self.__dict__.update(kwargs)

    # ------------------------------------------------------------------------------------
    # scikit-learn plumbing
    # ------------------------------------------------------------------------------------
    @classmethod
    def _get_init_param_names(cls) -> list[str]:
        return BaseEstimator._get_param_names.__func__(cls)

    def _get_param_names(self) -> list[str]:
        names = self._get_init_param_names()
        extra = [k for k in self.__dict__
                 if k not in names and not k.endswith("_") and not k.startswith("_")]
        return [*names, *extra]

    def __sklearn_tags__(self) -> Tags:  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = False
        # Classification tasks may be multi-class, and several of them form a multi-label
        # problem; regression tasks may sit beside them.
        tags.classifier_tags = ClassifierTags(multi_class=True, multi_label=True)
        tags.regressor_tags = RegressorTags()
        # cuDNN/cuBLAS kernels make CUDA training non-reproducible; on the CPU a fixed
        # random_state gives identical runs.
        with contextlib.suppress(ValueError):
            tags.non_deterministic = resolve_device(self.device).type == "cuda"
        return tags

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr: the class and the parameters that differ from their defaults."""
        return BaseEstimator.__repr__(self, N_CHAR_MAX)

    def __sklearn_is_fitted__(self) -> bool:  # noqa: D105
        return bool(self.initialized_) and hasattr(self, "tasks_")

    def check_is_fitted(self, attributes=None, *args, **kwargs) -> None:
        """Raise :class:`sklearn.exceptions.NotFittedError` unless the net was fitted."""
        check_is_fitted(self, attributes or ["module_", "tasks_"], *args, **kwargs)

    # ------------------------------------------------------------------------------------
    # device handling: ``device="auto"`` is resolved once per fit into ``device_``
    # ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _on_resolved_device(self):
        """Let skorch's machinery (which reads ``self.device``) see the resolved device."""
        requested = self.device
        self.__dict__["device"] = str(self.device_)
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def __setstate__(self, state: dict) -> None:  # noqa: D105
        requested = state.get("device", "cpu")
        if requested in (None, "auto"):
            resolved = "device_" in state  # an unfitted net (a deepcopy) stays unresolved
            state["device"] = str(state.get("device_", "cpu"))
            with warnings.catch_warnings():
                # "auto" accepts whatever device this machine has: no warning on CPU-only
                warnings.simplefilter("ignore")
                super().__setstate__(state)
            if resolved:
                self.device_ = torch.device(self.device)
            self.__dict__["device"] = requested
        else:
            super().__setstate__(state)
            if "device_" in self.__dict__:
                self.device_ = torch.device(self.device)

    def set_params(self, **params: Any) -> MultiTaskNet:
        """Set parameters (skorch semantics: re-initialise what a changed parameter affects)."""
        if not self.initialized_:
            # Nothing to re-initialise: store the values (validated at fit, as in sklearn).
            valid = set(self.get_params(deep=False))
            for key, value in params.items():
                if key not in valid and "__" not in key:
                    raise ValueError(
                        f"Invalid parameter {key!r} for estimator {type(self).__name__}. "
                        f"Valid parameters are: {sorted(valid)}."
                    )
                setattr(self, key, value)
            return self
        with self._on_resolved_device():
            return super().set_params(**params)

    def initialize(self) -> MultiTaskNet:
        """Initialise the net; before any fit, only what does not depend on the data.

        The network's shape comes from the tasks and the input layout, which ``fit`` learns
        (or :meth:`load_params` reads back from a checkpoint). So on a net that was never
        fitted this sets up the callbacks and the history and leaves the modules to
        ``fit`` or ``load_params`` — skorch's ``net.initialize()`` then
        ``net.load_params(checkpoint=cp)`` pattern works.
        """
        if hasattr(self, "tasks_"):
            return super().initialize()
        self._initialize_virtual_params()
        self._initialize_callbacks()
        self._initialize_history()
        return self

    def save_params(self, *args: Any, **kwargs: Any) -> None:
        """Save parameters, optimizer and history as skorch does (see ``NeuralNet.save_params``).

        With ``f_params`` a path, the fitted tasks and input layout go to ``<f_params>.layout``
        beside it, with the loss weighting's state (learned uncertainty weights, DWA's loss
        history, GradNorm's weights) and the weights of the tasks that keep their own best
        epoch (``task_epochs_``), so that :meth:`load_params` can restore a net that
        was never fitted and resume its training (``Checkpoint`` + ``LoadInitState``).
        """
        self.check_is_fitted()
        with self._on_resolved_device():
            super().save_params(*args, **kwargs)
        target = self._params_path(kwargs.get("f_params", kwargs.get("f_module",
                                                                       args[0] if args else None)))
        if target is not None:
            state = {k: self.__dict__[k] for k in _LAYOUT_STATE if k in self.__dict__}
            state[_WEIGHTING_STATE] = {k: v.detach().cpu()
                                       for k, v in self.weighting_.state_dict().items()}
            state[_TASK_EPOCHS_STATE] = {
                name: (epoch, self.task_states_[name])
                for name, epoch in getattr(self, "task_epochs_", {}).items()}
            joblib.dump(state, f"{target}.layout")

    @staticmethod
    def _params_path(f_params: Any) -> str | None:
        # skorch's Checkpoint passes the module's file as f_module
        return os.fspath(f_params) if isinstance(f_params, (str, os.PathLike)) else None

    def load_params(self, f_params: Any = None, f_optimizer: Any = None,
                    f_criterion: Any = None, f_history: Any = None, checkpoint: Any = None,
                    **kwargs: Any) -> None:
        """Load what :meth:`save_params` or skorch's ``Checkpoint`` saved.

        A net that was never fitted reads the tasks and input layout from the ``.layout``
        file saved beside the parameters, then builds its modules; a fitted (or unpickled)
        net must have the same tasks and layout, which define the network's shape. The
        loss weighting's state saved there is restored too.
        """
        if f_params is None and checkpoint is not None:
            if checkpoint.f_history is not None and f_history is None:
                # as skorch does: the file names may refer to the history's last epoch
                self.history = History.from_file(checkpoint.f_history_)
            files = checkpoint.get_formatted_files(self)
            path = self._params_path(files.get("f_params", files.get("f_module")))
        else:
            path = self._params_path(f_params)
        layout = (joblib.load(f"{path}.layout") if path is not None
                  and os.path.exists(f"{path}.layout") else None)
        if not hasattr(self, "tasks_"):
            self._load_layout(layout, path)
        with self._on_resolved_device():
            super().load_params(f_params=f_params, f_optimizer=f_optimizer,
                                f_criterion=f_criterion, f_history=f_history,
                                checkpoint=checkpoint, **kwargs)
            self.device_ = torch.device(self.device)
        if layout is not None and layout.get(_WEIGHTING_STATE) is not None:
            saved = layout[_WEIGHTING_STATE]
            if set(saved) != set(self.weighting_.state_dict()):
                raise ValueError(
                    f"The saved loss weighting's state has {sorted(saved)}, but this net's "
                    f"weighting={self.weighting!r} has {sorted(self.weighting_.state_dict())}: "
                    "create the net with the weighting it was trained with."
                )
            self.weighting_.load_state_dict(saved)
        if f_params is not None or checkpoint is not None:
            # each task's own epoch belongs to the weights saved with it (none for others)
            self._set_task_epochs((layout or {}).get(_TASK_EPOCHS_STATE) or {})

    def _load_layout(self, layout: dict | None, path: str | None) -> None:
        """Restore the fitted tasks and layout saved beside the parameters, then initialise."""
        if layout is None:
            missing = "" if path is None else f"; {path}.layout is missing"
            raise RuntimeError(
                "load_params needs the tasks and input layout that define the network: fit "
                "the net or unpickle a fitted one first, or load parameters saved by "
                "MultiTaskNet.save_params / Checkpoint to a path (they leave a "
                f"'<f_params>.layout' file beside them{missing})."
            )
        self.__dict__.update({k: v for k, v in layout.items() if k in _LAYOUT_STATE})
        self.device_ = resolve_device(self.device)
        with self._on_resolved_device():
            super().initialize()

    # ------------------------------------------------------------------------------------
    # skorch initialisation hooks
    # ------------------------------------------------------------------------------------
    def get_default_callbacks(self) -> list:
        """Default callbacks, each replaceable or removable (``callbacks__<name>=None``).

        ``epoch_timer`` (skorch's), ``valid_scores`` (:class:`~sklearn_mtml.callbacks.TaskScores`:
        each task's validation metric and ``valid_score``), ``task_weights``
        (:class:`~sklearn_mtml.callbacks.TaskWeights`: ``weight_<task>``), ``print_log``
        (:class:`~sklearn_mtml.callbacks.CompactPrintLog`, when ``verbose``) and
        ``early_stopping`` (:class:`~sklearn_mtml.callbacks.EarlyStopping`, active when the
        ``early_stopping`` parameter holds out validation rows).
        """
        return [("epoch_timer", EpochTimer()), ("valid_scores", TaskScores()),
                ("task_weights", TaskWeights()), ("print_log", CompactPrintLog()),
                ("early_stopping", EarlyStopping())]

    def initialize_virtual_params(self) -> MultiTaskNet:  # noqa: D102
        self.virtual_params_ = {}
        return self

    def _require_fitted_layout(self) -> None:
        if not hasattr(self, "tasks_"):
            raise RuntimeError(
                "MultiTaskNet learns its tasks and input layout from the data: call fit(X, Y) "
                "instead of initialize()."
            )

    def initialize_module(self) -> MultiTaskNet:
        """Build the :class:`~sklearn_mtml.nn.model.MultiTaskModule` for the fitted layout."""
        self._require_fitted_layout()
        kwargs = self.get_params_for("module")
        kwargs.setdefault("input_stats", getattr(self, "input_stats_", None))
        kwargs.setdefault("vocab_sizes", getattr(self.layout_, "vocab_sizes", None))
        self.module_ = MultiTaskModule(
            self.layout_.shapes,
            [task.n_outputs for task in self.tasks_.values()],
            architecture=self.architecture,
            fusion=self.fusion,
            **kwargs,
        )
        self.weighting_ = make_weighting(
            self.weighting, self._base_weights(), [t.kind for t in self.tasks_.values()],
            **self.get_params_for("weighting"),
        )
        if "weighting" not in self._modules:
            # "weighting" is a known prefix, so skorch does not register weighting_ by itself:
            # register it so that it is moved to the device and its learnable parameters
            # (e.g. uncertainty log-variances) are trained by the optimizer.
            self._modules = [*self._modules, "weighting"]
        return self

    def initialize_criterion(self) -> MultiTaskNet:
        """The criterion computes the masked loss of every task."""
        self._require_fitted_layout()
        self.criterion_ = MultiTaskLoss(list(self.tasks_.values()))
        return self

    # ------------------------------------------------------------------------------------
    # validation of parameters, targets and inputs
    # ------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name, auto in (("max_epochs", True), ("batch_size", True),
                           ("n_iter_no_change", False)):
            value = getattr(self, name)
            if auto and isinstance(value, str) and value == "auto":
                continue
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                allowed = " or 'auto'" if auto else ""
                raise ValueError(f"{name} must be a positive integer{allowed}, got {value!r}.")
        if not isinstance(self.lr, numbers.Real) or not np.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}.")
        if self.input_scaling is not None and self.input_scaling not in SCALINGS:
            raise ValueError(f"input_scaling must be one of {list(SCALINGS)} or None, got "
                             f"{self.input_scaling!r}.")
        if not (self.early_stopping in (True, False) or self.early_stopping == "auto"):
            raise ValueError("early_stopping must be True, False or 'auto', got "
                             f"{self.early_stopping!r}.")
        vf = self.validation_fraction
        if not isinstance(vf, numbers.Real) or isinstance(vf, bool) or not 0 < vf < 1:
            raise ValueError(f"validation_fraction must be a number in (0, 1), got {vf!r}.")
        if not (self.distributed in (True, False) or self.distributed == "auto"):
            raise ValueError("distributed must be True, False or 'auto', got "
                             f"{self.distributed!r}.")
        if not (self.streaming in (True, False) or self.streaming == "auto"):
            raise ValueError("streaming must be True, False or 'auto', got "
                             f"{self.streaming!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got "
                             f"{self.precision!r}.")
        check_cuda_graphs(self)
        if self.lr_schedule not in (None, "cosine"):
            raise ValueError(f"lr_schedule must be 'cosine' or None, got {self.lr_schedule!r}.")
        resolve_device(self.device)

    def _validate_targets(self, y: Any, fitted: bool = False
                          ) -> tuple[list[str], list[np.ndarray], bool]:
        """Split ``y`` into task names and columns; return ``(names, columns, is_1d)``.

        With ``fitted``, the columns of an unnamed array are the fitted tasks in order (as
        scikit-learn reads arrays), e.g. the targets skorch's ``EpochScoring`` passes on.
        """
        if y is None:
            raise ValueError(
                "MultiTaskNet requires y to be passed, but the target y is None; pass Y with "
                "one column per task."
            )
        if hasattr(y, "columns"):  # DataFrame
            names = [str(c) for c in y.columns]
            cols = [y[c].to_numpy() for c in y.columns]
            is_1d = False
        else:
            if hasattr(y, "to_numpy"):  # Series
                series_name = getattr(y, "name", None)
                y = y.to_numpy()
            else:
                series_name = None
                y = np.asarray(y) if not isinstance(y, np.ndarray) else y
            if y.ndim == 1:
                is_1d = True
                if isinstance(self.tasks, Mapping) and len(self.tasks) == 1:
                    names = [str(next(iter(self.tasks)))]
                elif fitted and series_name is None and len(self.task_names_) == 1:
                    names = list(self.task_names_)
                elif isinstance(series_name, str):
                    names = [series_name]
                else:
                    names = ["task_0"]
                cols = [y]
            elif y.ndim == 2:
                is_1d = False
                if isinstance(self.tasks, Mapping) and len(self.tasks) == y.shape[1]:
                    names = [str(k) for k in self.tasks]
                elif fitted and len(self.task_names_) == y.shape[1]:
                    names = list(self.task_names_)
                else:
                    names = [f"task_{i}" for i in range(y.shape[1])]
                cols = [y[:, i] for i in range(y.shape[1])]
            else:
                raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}.")
        if not names:
            raise ValueError("Y has no column: at least one task is required.")
        if len(set(names)) != len(names):
            raise ValueError(f"Task names must be unique, got {names}.")
        return names, cols, is_1d

    def _task_kinds(self, names: list[str]) -> dict[str, str | None]:
        return resolve_task_kinds(self.tasks, names)

    def _base_weights(self, names: list[str] | None = None) -> list[float]:
        """Validate ``loss_weights`` against the task names; return one weight per task."""
        return resolve_loss_weights(self.loss_weights,
                                    self.task_names_ if names is None else names)

    def _validate_X(self, X: Any, reset: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Convert ``X`` to float32 blocks and a presence mask, checking the fitted layout."""
        if isinstance(X, FileBlocks):
            return self._validate_files(X, reset)
        if reset:
            self.__dict__.pop("file_settings_", None)
        if getattr(X, "ndim", 2) in (3, 4) and hasattr(X, "shape") and not hasattr(X, "columns"):
            # one block of sequences (n, T, F) or images (n, C, H, W)
            X = {SINGLE_BLOCK: X}
        if is_block_input(X):
            tokens = self._token_blocks(X) if reset else self.layout_.vocab_sizes
            blocks, mask = convert_blocks(X, tokens=tokens)
            if reset:
                for attr in ("n_features_in_", "feature_names_in_"):
                    self.__dict__.pop(attr, None)
        else:
            if X is None:
                raise ValueError("X is None; expected an array-like of shape (n, n_features).")
            check_numeric_frame(X)
            check_array_input(X)
            arr = validate_data(
                self, X, reset=reset, accept_sparse=True, dtype=np.float32,
                ensure_min_samples=1,
            )
            if hasattr(arr, "toarray"):
                arr = arr.toarray()
            arr = np.asarray(arr, dtype=np.float32)
            # "modality__feature" column names (ModalityFusion's concat output) give blocks
            groups = (prefix_groups(getattr(self, "feature_names_in_", None)) if reset
                      else self.layout_.groups)
            if groups:
                blocks = {name: arr[:, idx] for name, idx in groups.items()}
            else:
                blocks = {SINGLE_BLOCK: arr}
            mask = np.ones((arr.shape[0], len(blocks)), dtype=bool)
        if not reset:
            self.layout_.check(blocks)
        return blocks, mask

    def _validate_files(self, X: FileBlocks, reset: bool
                        ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Lazy blocks of files (decoded batch by batch) and their presence mask.

        Every present path is checked first, so that a missing file fails before training.
        """
        settings = X.settings()
        settings.pop("memory_budget")
        if reset:
            for attr in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attr, None)
            self.file_settings_ = settings
        else:
            fitted = self.__dict__.get("file_settings_")
            if fitted is None:
                raise ValueError("X is a FileBlocks, but the model was not fitted on one; pass "
                                 "the input with the layout seen at fit.")
            diff = {k: (fitted[k], v) for k, v in settings.items() if fitted.get(k) != v}
            if diff:
                raise ValueError(f"X is a FileBlocks that decodes its files otherwise than at "
                                 f"fit: (fitted, given) {diff}; build it with the settings "
                                 "seen at fit.")
        X.check_files()
        blocks = cast("dict[str, np.ndarray]", X.lazy_blocks())
        if not reset:
            self.layout_.check(blocks)
        return blocks, X.presence

    def _file_loader(self, training: bool) -> dict[str, Any]:
        """``DataLoader`` arguments for decoding files: the ``iterator_*`` parameters."""
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        for key in ("batch_size", "shuffle", "drop_last"):
            kwargs.pop(key, None)
        kwargs.setdefault("pin_memory", self.device_.type == "cuda")
        return kwargs

    def _files_on_device(self, source: FileBlocks, blocks: dict[str, torch.Tensor],
                         lengths: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Decoded files to scaled features: copied to the device, audio front end there."""
        cuda = self.device_.type == "cuda"
        feats = source.features(
            {k: v.to(self.device_, non_blocking=cuda) for k, v in blocks.items()},
            {k: v.to(self.device_, non_blocking=cuda) for k, v in lengths.items()})
        return self.module_.scale_inputs(feats)

    def _raw_input_blocks(self) -> set[str]:
        """Blocks whose encoder reads them unscaled (e.g. waveforms for a pretrained model)."""
        encoders = self.get_params_for("module").get("encoders") or {}
        if not isinstance(encoders, Mapping):
            return set()
        return {str(name) for name, enc in encoders.items()
                if getattr(enc, "reads_raw_input", False)}

    def _token_blocks(self, X: Any) -> dict[str, int | None]:
        """Blocks of token ids at fit: declared by ``X`` or given a token encoder by the user.

        Values are the declared vocabulary sizes (``None``: learned from the data).
        """
        sizes: dict[str, int | None] = dict(declared_vocab_sizes(X))
        encoders = self.get_params_for("module").get("encoders") or {}
        for name, kind in dict(encoders).items():
            if reads_tokens(kind):
                sizes.setdefault(name, None)
        return sizes

    def _prepare(self, X: Any, y: Any, sample_weight: Any = None
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Validate everything, fit tasks and layout; return arrays ready for the device."""
        self._check_params()
        names, cols, is_1d = self._validate_targets(y)
        blocks, mask = self._validate_X(X, reset=True)
        n = mask.shape[0]
        weights = _check_sample_weight(sample_weight, n)
        for name, col in zip(names, cols):
            if len(col) != n:
                raise ValueError(
                    f"X has {n} samples but the target of task {name!r} has {len(col)}."
                )
        tasks = TaskSet.fit(names, cols, self._task_kinds(names),
                            regression_loss=self.regression_loss,
                            regression_bounds=self.regression_bounds)
        self._base_weights(names)
        device = resolve_device(self.device)
        rank, world = process_group(self.distributed)
        if world > 1 and device.type == "cuda" and device.index is None:
            # one GPU per process: torchrun's LOCAL_RANK
            local = int(os.environ.get("LOCAL_RANK", rank))
            device = torch.device("cuda", local % torch.cuda.device_count())
        layout = InputLayout.from_blocks(
            blocks, groups=None if is_block_input(X) else prefix_groups(
                getattr(self, "feature_names_in_", None)),
            vocab_sizes=self._token_blocks(X) if is_block_input(X) else None)
        # All checks passed: record the fitted state.
        self.tasks_ = tasks
        self.task_names_ = names
        self._y_1d = is_1d
        self.layout_ = layout
        self.device_ = device
        classes = tasks.classes()
        if any(c is not None for c in classes):
            self.classes_ = classes[0] if is_1d else classes
        else:
            self.__dict__.pop("classes_", None)
        targets, label_mask = self._encode_targets(cols, weights)
        raw = self._raw_input_blocks()
        source = lazy_source(blocks)
        if source is not None and self.input_scaling is not None:
            # a streaming pass that decodes only the rows the statistics use
            workers = self._file_loader(training=True).get("num_workers")
            stats = source.statistics(self.input_scaling, device=device, skip=raw,
                                      num_workers=workers)
            self.input_stats_: dict[str, tuple[np.ndarray, np.ndarray]] | None = stats
            return blocks, mask, targets, label_mask
        self.input_stats_ = None if self.input_scaling is None else {
            name: block_statistics(block if mask[:, j].all() else block[mask[:, j]],
                                   self.input_scaling)
            for j, (name, block) in enumerate(blocks.items())
            # token ids are embedded, not scaled; waveforms go to their encoder as they are
            if name not in self.layout_.vocab_sizes and name not in raw
        }
        return blocks, mask, targets, label_mask

    def _encode_targets(self, cols: Sequence[np.ndarray], weights: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Encoded targets and label weights ``(n, T)``: the row's weight, 0 where missing."""
        return self.tasks_.encode(cols, weights)

    # ------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _seeded(self):
        """Seed torch (in a forked RNG) and ``_fit_seed`` (the validation split) for a fit."""
        seed = self.random_state
        if seed is not None and not isinstance(seed, numbers.Integral):
            seed = check_random_state(seed).randint(2**31 - 1)  # a RandomState: one draw
        seed = None if seed is None else int(seed)
        # every process of a data-parallel fit draws the same split and shuffling order
        seed = broadcast_seed(seed, process_group(self.distributed)[1])
        self._fit_seed = seed
        if seed is None:
            yield
            return
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None,
            **fit_params: Any) -> MultiTaskNet:
        """Fit the network on ``X`` and the targets ``y`` (one column per task).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), sparse matrix, dict of arrays, \
ModalityBlocks or FileBlocks
            Input features or per-modality blocks (``FileBlocks``: files decoded batch by
            batch, see ``streaming``).
        y : array-like of shape (n_samples,) or (n_samples, n_tasks), or DataFrame
            Targets; ``NaN``/``None`` marks a missing label.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in every task's loss, training and validation (each task's
            loss is the weighted mean over its labelled rows; a weight of 0 is a missing
            label). Routed by scikit-learn's metadata routing
            (``set_fit_request(sample_weight=True)``).
        **fit_params : dict
            Unused; accepted for compatibility with skorch.

        Returns
        -------
        self : MultiTaskNet
            The fitted estimator.
        """
        if self.warm_start and self.initialized_ and hasattr(self, "tasks_"):
            return self.partial_fit(X, y, sample_weight=sample_weight, **fit_params)
        with self._atomic(in_place=False):
            data = self._prepare(X, y, sample_weight)
            with self._seeded():
                with self._on_resolved_device():
                    self.initialize()
                self._train(data, raw=(X, y))
        return self

    @contextlib.contextmanager
    def _atomic(self, in_place: bool):
        """Leave the estimator exactly as it was when the block raises.

        A fit builds new modules, so keeping the old attributes is enough; training in place
        (``partial_fit``) also restores the weights, the optimizer state and the history.
        """
        saved = dict(self.__dict__)
        states = {}
        if in_place:
            states = {name: copy.deepcopy(saved[name].state_dict())
                      for name in ("module_", "weighting_", "optimizer_") if name in saved}
            history = copy.deepcopy(saved.get("history_"))
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            for name, state in states.items():
                saved[name].load_state_dict(state)
            if in_place:
                self.history_ = history
            raise

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None,
                    sample_weight: Any = None, **fit_params: Any) -> MultiTaskNet:
        """Train for ``max_epochs`` more epochs without re-initialising a fitted network.

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input, with the layout seen at the first fit.
        y : array-like or DataFrame
            Targets, with the tasks and labels seen at the first fit.
        classes : None
            Unused (tasks learn their classes at the first fit).
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in every task's loss (see :meth:`fit`).
        **fit_params : dict
            Unused.

        Returns
        -------
        self : MultiTaskNet
        """
        if not (self.initialized_ and hasattr(self, "tasks_")):
            return self.fit(X, y, sample_weight=sample_weight)
        with self._atomic(in_place=True):
            self._check_params()
            names, cols, _ = self._validate_targets(y, fitted=True)
            if names != self.task_names_:
                raise ValueError(f"Y has tasks {names}, but the model was fitted on "
                                 f"{self.task_names_}.")
            blocks, mask = self._validate_X(X, reset=False)
            weights = _check_sample_weight(sample_weight, mask.shape[0])
            targets, label_mask = self._encode_targets(cols, weights)
            with self._seeded():
                self._train((blocks, mask, targets, label_mask), raw=(X, y))
        return self

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        """Copy a host array to the training device (pinned and non-blocking on CUDA)."""
        if not array.flags.writeable:
            array = array.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if self.device_.type != "cuda":
            return tensor.to(self.device_)
        return tensor.pin_memory().to(self.device_, non_blocking=True)

    def _uses_early_stopping(self, n: int) -> bool:
        if self.early_stopping == "auto":
            if self.train_split is not None:
                return True
            return int(n * self.validation_fraction) >= 20
        return bool(self.early_stopping)

    def _training_split(self, label_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation rows; every task must keep a label among the training rows."""
        train_idx, valid_idx = self._split_indices(label_mask.shape[0])
        has = label_mask[train_idx].any(axis=0)
        if not has.all():
            empty = [t for t, ok in zip(self.task_names_, has) if not ok]
            raise ValueError(f"Tasks {empty} have no labelled row in the training split.")
        return train_idx, valid_idx

    def _split_indices(self, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        split = self.train_split
        if split is None:
            if not self._uses_early_stopping(n):
                return np.arange(n), None
            n_valid = max(int(round(n * self.validation_fraction)), 1)
            if n - n_valid < 2:
                raise ValueError(
                    f"early_stopping needs at least 2 training rows besides the "
                    f"{n_valid} validation rows, but X has {n} rows; pass "
                    "early_stopping=False."
                )
            order = check_random_state(self._fit_seed).permutation(n)
            return np.sort(order[n_valid:]), np.sort(order[:n_valid])
        if isinstance(split, numbers.Real) and not isinstance(split, bool):
            split = ValidSplit(split if split < 1 else int(cast(float, split)), stratified=False,
                               random_state=0)
        if not callable(split):
            raise TypeError(f"train_split must be None, a number or a callable, got {split!r}.")
        from skorch.dataset import Dataset

        train, valid = split(Dataset(np.arange(n)), None)
        try:
            train_idx = np.asarray(train.indices)
            valid_idx = None if valid is None else np.asarray(valid.indices)
        except AttributeError as exc:
            raise TypeError(
                "train_split must return torch.utils.data.Subset objects (as skorch's "
                f"ValidSplit does); got {type(train).__name__}."
            ) from exc
        return train_idx, valid_idx

    def _train(self, data: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray],
               raw: tuple[Any, Any] = (None, None), **fit_params: Any) -> None:
        """Train for ``max_epochs_`` epochs through skorch's hooks.

        The validated data go to the training device once (:class:`DeviceRows`); then, as
        skorch's ``fit_loop`` does, every epoch runs :meth:`run_single_epoch` over
        :meth:`get_iterator`'s batches with :meth:`train_step` (and
        :meth:`validation_step` when there are validation rows). ``raw`` is the user's
        ``(X, y)``, which callbacks receive as ``dataset_train`` / ``dataset_valid``.
        """
        blocks, mask, targets, label_mask = data
        n = mask.shape[0]
        train_idx, valid_idx = self._training_split(label_mask)
        rank, world = process_group(self.distributed)
        self._check_data_parallel(world)
        self.streamed_ = self._streams(blocks)
        source = lazy_source(blocks)
        if source is not None and not self.streamed_:  # files decoded once, into memory
            blocks = source.load(device=self.device_, num_workers=self._file_loader(
                training=True).get("num_workers")).blocks
        rows: DeviceRows | HostRows | FileRows
        if source is not None and self.streamed_:
            rows = FileRows(source, self._to_device(mask), self._to_device(targets),
                            self._to_device(label_mask),
                            functools.partial(self._files_on_device, source))
        elif self.streamed_:
            rows = HostRows(blocks, self._to_device(mask), self._to_device(targets),
                            self._to_device(label_mask), self._scaled_blocks_on_device)
        else:
            rows = DeviceRows(
                # scaled once per fit: batches are sliced from the scaled tensors
                self._scaled_blocks_on_device(blocks), self._to_device(mask),
                self._to_device(targets), self._to_device(label_mask))
        dataset_train = rows.subset(train_idx)
        dataset_valid = (rows.subset(valid_idx) if valid_idx is not None and len(valid_idx)
                         else None)
        self.stops_early_ = dataset_valid is not None and self._uses_early_stopping(n)
        # the single-process plan: each process takes batches of batch_size_ rows from its
        # share, so a data-parallel epoch is world_size times fewer steps
        self._resolve_budget(len(train_idx), self.stops_early_)
        threads = None
        if self.device_.type == "cpu":
            threads = fit_threads(self._step_flops(dataset_train))
        self.__dict__["_shard"] = (rank, world)
        if world > 1 and "_ddp_module" not in self.__dict__:  # (AcceleratedMultiTaskNet's)
            from torch.nn.parallel import DistributedDataParallel

            self.__dict__["_ddp_module"] = DistributedDataParallel(
                self.module_, device_ids=None if self.device_.type != "cuda" else
                [self.device_], find_unused_parameters=True)
        iterator_train = self.get_iterator(dataset_train, training=True)
        iterator_valid = (None if dataset_valid is None
                          else self.get_iterator(dataset_valid, training=False))
        base_lrs = [float(group["lr"]) for group in self.optimizer_.param_groups]
        cosine = self.lr_schedule == "cosine" and not any(
            isinstance(cb, LRScheduler) for _, cb in self.callbacks_)
        epoch_kwargs = {
            "dataset_train": RowSubset(*raw, train_idx),
            "dataset_valid": None if valid_idx is None else RowSubset(*raw, valid_idx),
        }
        self._check_callbacks()
        self._start_grad_scaler()
        self._start_cuda_graph(world)
        self.best_epoch_ = None
        self._set_task_epochs({})  # those of an earlier fit belong to other weights
        self.notify("on_train_begin", X=blocks, y=targets)
        with torch_threads(threads):
            try:
                for epoch in range(self.max_epochs_):
                    if cosine:
                        factor = cosine_factor(epoch, self.max_epochs_)
                        for group, lr in zip(self.optimizer_.param_groups, base_lrs):
                            set_lr(group, lr * factor)
                    self.notify("on_epoch_begin", **epoch_kwargs)
                    self.run_single_epoch(iterator_train, training=True, prefix="train",
                                          step_fn=self.train_step, **fit_params)
                    self._check_finite_loss(epoch)
                    self.weighting_.epoch_end(torch.as_tensor(
                        [self.history[-1, f"train_loss_{t}"] for t in self.task_names_]))
                    self.run_single_epoch(iterator_valid, training=False, prefix="valid",
                                          step_fn=self.validation_step, **fit_params)
                    self.notify("on_epoch_end", **epoch_kwargs)
            except KeyboardInterrupt:  # skorch's EarlyStopping stops training this way
                pass
            finally:
                if cosine:  # the next fit or partial_fit starts from lr again
                    for group, lr in zip(self.optimizer_.param_groups, base_lrs):
                        set_lr(group, lr)
        for transient in ("_grad_scaler", "_ddp_module", "_cuda_graph"):
            self.__dict__.pop(transient, None)
        # (callbacks may still sum across processes at the end of training)
        self.notify("on_train_end", X=blocks, y=targets)
        self.__dict__.pop("_shard", None)

    def _check_data_parallel(self, world: int) -> None:
        if world > 1 and type(self.weighting_).backward is not Weighting.backward:
            raise ValueError(
                f"weighting={self.weighting!r} computes per-task gradients on each process's "
                "batch, which data-parallel training cannot combine; use 'fixed', "
                "'uncertainty', 'dwa' or 'rlw', or distributed=False."
            )

    def _sum_across_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the processes of a data-parallel fit (as it is otherwise)."""
        return all_reduce_sum(tensor, self.__dict__.get("_shard", (0, 1))[1])

    def _start_grad_scaler(self) -> None:
        """A gradient scaler for ``precision="16-mixed"`` (one per fit)."""
        self.__dict__.pop("_grad_scaler", None)
        if self.precision != "16-mixed":
            return
        if type(self.weighting_).backward is not Weighting.backward:
            raise ValueError(
                f"precision='16-mixed' scales the loss for float16 gradients, but "
                f"weighting={self.weighting!r} computes per-task gradients itself; use "
                "precision='bf16' (no scaling needed) or '32'."
            )
        self.__dict__["_grad_scaler"] = torch.amp.GradScaler(self.device_.type)

    def _start_cuda_graph(self, world: int) -> None:
        """The CUDA-graph training step of this fit (``cuda_graphs=True``), or none."""
        self.__dict__.pop("_cuda_graph", None)
        if not getattr(self, "cuda_graphs", False):
            return
        if world > 1:
            raise ValueError(
                "cuda_graphs=True cannot be combined with data-parallel training (a "
                f"process group of {world} processes); use distributed=False or "
                "cuda_graphs=False."
            )
        # "thread_local": a batch-preparing thread (streamed rows, a DataLoader pinning
        # memory) may run during the capture, which the "global" mode would refuse
        self.__dict__["_cuda_graph"] = GraphedTrainStep(self, capture_error_mode="thread_local")

    def get_params_for_optimizer(self, prefix: str, named_parameters: Any) -> Any:
        """Skorch's optimizer arguments; on CUDA, Adam and AdamW default to ``fused=True``.

        With ``cuda_graphs=True`` on CUDA the optimizer also gets ``capturable=True`` and a
        learning rate held in a device tensor (which schedules update in place), so that
        its step can be captured in a CUDA graph.
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        if (prefix == "optimizer" and self.device_.type == "cuda"
                and self.optimizer in (torch.optim.Adam, torch.optim.AdamW)
                and "fused" not in kwargs and "foreach" not in kwargs):
            kwargs["fused"] = True
        if (prefix == "optimizer" and self.device_.type == "cuda"
                and getattr(self, "cuda_graphs", False) and takes_capturable(self.optimizer)):
            kwargs.setdefault("capturable", True)
            if not isinstance(kwargs.get("lr", self.lr), torch.Tensor):
                kwargs["lr"] = torch.tensor(float(kwargs.get("lr", self.lr)),
                                            device=self.device_)
        return args, kwargs

    # ------------------------------------------------------------------------------------
    # skorch's training hooks
    # ------------------------------------------------------------------------------------
    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Batches of ``dataset``, as skorch's ``get_iterator``.

        The fit's rows (and a prediction's input) are sliced into batches from tensors on the
        device, not collated row by row: ``iterator_train__batch_size`` (default: the
        resolved ``batch_size_``), ``iterator_valid__batch_size``, ``iterator_*__shuffle``
        and ``iterator_*__drop_last`` are honoured. Any other ``iterator_*__`` parameter, an
        ``iterator_train``/``iterator_valid`` class, or another dataset goes through that
        class (default :class:`torch.utils.data.DataLoader`) as in skorch.

        Parameters
        ----------
        dataset : DeviceRows, PredictRows or torch Dataset
            The rows to iterate over.
        training : bool, default=False
            Training batches (shuffled by default) or validation/prediction batches.

        Returns
        -------
        iterator : iterable of batches ``((blocks, mask), (targets, label_mask))``
        """
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        iterator = self.iterator_train if training else self.iterator_valid
        batch_size = kwargs.pop("batch_size", None)
        if batch_size is None:
            batch_size = (getattr(self, "batch_size_", None) or 256) if training \
                else self._predict_batch_size()
            if isinstance(dataset, PredictRows) and any(
                    is_memory_mapped(b) for b in dataset.blocks.values()):
                # memory-mapped input: chunks of about 4 MB keep the process's memory flat
                row_bytes = sum(b[:1].nbytes for b in dataset.blocks.values())
                batch_size = min(batch_size, max(256, (4 << 20) // max(row_bytes, 1)))
        shuffle = kwargs.pop("shuffle", training)
        if isinstance(dataset, (FileRows, FilePredictRows)):
            return self._file_batches(dataset, iterator, batch_size, shuffle, training)
        if "file_settings_" in self.__dict__:
            # a fit from files decoded into memory: the DataLoader options were for decoding
            for key in ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor",
                        "timeout", "multiprocessing_context", "worker_init_fn"):
                kwargs.pop(key, None)
        ours = isinstance(dataset, (DeviceRows, HostRows, PredictRows))
        if ours and iterator is None and set(kwargs) <= {"drop_last"}:
            return RowBatches(dataset, batch_size, shuffle=shuffle,
                              drop_last=kwargs.get("drop_last", False),
                              shard=self.__dict__.get("_shard", (0, 1)) if not isinstance(
                                  dataset, PredictRows) else (0, 1), pad=training)
        if isinstance(dataset, HostRows):
            raise ValueError(
                "Streamed inputs (streaming=True, or memory-mapped blocks) are read by the "
                f"built-in batches; iterator_train={iterator!r} and the iterator_train "
                f"parameters {sorted(kwargs)} need streaming=False."
            )
        if isinstance(dataset, PredictRows):
            raise ValueError(
                "Predictions are read in chunks of iterator_valid__batch_size rows; other "
                f"iterator_valid settings ({sorted(kwargs)}) are only for training."
            )
        from torch.utils.data import DataLoader

        iterator = iterator or DataLoader
        if batch_size == -1:
            batch_size = len(dataset)
        return iterator(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)

    def _file_batches(self, dataset: FileRows | FilePredictRows, iterator: Any,
                      batch_size: int, shuffle: bool, training: bool) -> RowBatches:
        """Batches of files, decoded in ``DataLoader`` workers (``iterator_*__num_workers``)."""
        prefix = "iterator_train" if training else "iterator_valid"
        if iterator is not None:
            raise ValueError(f"Inputs from files (FileBlocks) are decoded by the built-in "
                             f"batches; {prefix}={iterator!r} is not supported with them.")
        loader = self._file_loader(training)
        if isinstance(dataset, FilePredictRows) and "batch_size" not in \
                self.get_params_for("iterator_valid"):
            # chunks of about 64 MB of decoded input keep a prediction's memory flat
            row_bytes = dataset.source.decoded_nbytes // max(len(dataset.source), 1)
            row_bytes += 4 * dataset.source.n_audio_samples * len(dataset.source.audio)
            batch_size = min(batch_size, max(16, (64 << 20) // max(row_bytes, 1)))
        drop_last = self.get_params_for(prefix).get("drop_last", False)
        shard = (0, 1) if isinstance(dataset, FilePredictRows) else self.__dict__.get(
            "_shard", (0, 1))
        return RowBatches(dataset, batch_size, shuffle=shuffle, drop_last=drop_last,
                          shard=shard, pad=training, loader=loader)

    def infer(self, x: Any, **fit_params: Any) -> Any:
        """Run the network on a batch's input ``x = (blocks, mask)``.

        ``blocks`` are scaled input tensors on the device (batches from
        :meth:`get_iterator` are); ``fit_params`` reach the module's ``forward`` as in
        skorch.

        Returns
        -------
        y_pred : list of Tensor, or tuple
            One ``(n, k_t)`` output per task (a tuple when ``fit_params`` ask the module for
            more, e.g. ``return_blocks``).
        """
        blocks, mask = x
        with self._autocast():
            out = self._forward_module()(blocks, mask, prescaled=True, **fit_params)
            if self.__dict__.get("task_states_") and not self.module_.training:
                out = self._task_epoch_outputs(out, blocks, mask, fit_params)
        return out

    def _set_task_epochs(self, chosen: Mapping[str, tuple[int, Mapping[str, torch.Tensor]]]
                         ) -> None:
        """Set ``task_epochs_`` and ``task_states_`` (weights copied to the CPU).

        Tasks that keep the same epoch share one copy of its weights (and one forward pass).
        """
        self.task_epochs_ = {name: int(epoch) for name, (epoch, _) in chosen.items()}
        copies: dict[int, dict[str, torch.Tensor]] = {}
        for epoch, state in chosen.values():
            if int(epoch) not in copies:
                copies[int(epoch)] = {k: v.detach().cpu().clone() for k, v in state.items()}
        self.task_states_ = {name: copies[int(epoch)] for name, (epoch, _) in chosen.items()}
        self.__dict__.pop("_task_states_on_device", None)

    def _task_epoch_outputs(self, out: Any, blocks: Any, mask: torch.Tensor,
                            fit_params: Mapping[str, Any]) -> Any:
        """Replace the outputs of ``task_epochs_``'s tasks by their own epoch's weights'."""
        cached = self.__dict__.get("_task_states_on_device")
        device = mask.device
        if cached is None or cached[0] is not self.task_states_ or cached[1] != device:
            # one entry per distinct weights: (weights on the device, the tasks' positions)
            groups: dict[int, tuple[dict[str, torch.Tensor], list[int]]] = {}
            for name, state in self.task_states_.items():
                if id(state) not in groups:
                    groups[id(state)] = ({k: v.to(device) for k, v in state.items()}, [])
                groups[id(state)][1].append(self.task_names_.index(name))
            cached = (self.task_states_, device, list(groups.values()))
            self.__dict__["_task_states_on_device"] = cached
        outputs = list(out[0] if isinstance(out, tuple) else out)
        for state, positions in cached[2]:
            own = functional_call(self.module_, state, (blocks, mask),
                                  {"prescaled": True, **fit_params})
            own_outputs = own[0] if isinstance(own, tuple) else own
            for t in positions:
                outputs[t] = own_outputs[t]
        return (outputs, *out[1:]) if isinstance(out, tuple) else outputs

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        if getattr(self, "cuda_graphs", False):  # as PyTorch's notes ask for graph capture
            return torch.autocast(self.device_.type, dtype=dtype, cache_enabled=False)
        return torch.autocast(self.device_.type, dtype=dtype)

    def _forward_module(self) -> Any:
        """``module_``, or its ``torch.compile`` / data-parallel wrapper (never pickled)."""
        ddp = self.__dict__.get("_ddp_module")
        if ddp is not None and self.module_.training:
            return ddp
        if not self.compile:
            return self.module_
        cached = self.__dict__.get("_compiled_module")
        if cached is None or cached[0] is not self.module_:
            cached = (self.module_, torch.compile(self.module_,
                                                  **self.get_params_for("compile")))
            self.__dict__["_compiled_module"] = cached
        return cached[1]

    def torch_compile(self, module: nn.Module, name: str) -> nn.Module:
        """Leave ``module`` as it is: with ``compile=True`` only the forward call is compiled.

        skorch replaces ``module_`` by ``torch.compile``'s wrapper, whose ``state_dict`` keys
        gain an ``_orig_mod.`` prefix; here ``module_`` stays the plain module (checkpoints
        load into nets with or without ``compile``) and :meth:`infer` calls a compiled
        wrapper of it.
        """
        return module

    def __getstate__(self) -> dict:  # noqa: D105
        state = super().__getstate__()
        state.pop("_compiled_module", None)
        for transient in ("_grad_scaler", "_shard", "_ddp_module", "_cuda_graph",
                          "_task_states_on_device"):
            state.pop(transient, None)
        return state

    def get_loss(self, y_pred: Any, y_true: Any, X: Any = None, training: bool = False
                 ) -> torch.Tensor:
        """Each task's loss on a batch: the weighted mean over its labelled rows.

        Unlike skorch's scalar, this is a vector with one loss per task; the loss weighting
        (``weighting_``) combines them into the objective in :meth:`train_step_single`.

        Parameters
        ----------
        y_pred : list of Tensor or tuple
            :meth:`infer`'s output: one output per task, or, for late fusion's deep
            supervision, ``(outputs, per_block_outputs, used_mask)``; then each task's loss
            adds ``module__block_loss_weight`` times the mean of the blocks' own losses.
        y_true : tuple of Tensor
            ``(targets, label_mask)`` of the batch.
        X : object, optional
            The batch's input (unused; skorch's signature).
        training : bool, default=False
            Whether the loss is for training.

        Returns
        -------
        losses : Tensor of shape (n_tasks,)
        """
        targets, label_mask = y_true
        per_block = None
        if isinstance(y_pred, tuple):
            y_pred, per_block, used = y_pred
        if self.precision != "32":  # losses in float32 whatever the autocast dtype
            y_pred = [o.float() for o in y_pred]
            per_block = None if per_block is None else [[o.float() for o in b]
                                                        for b in per_block]
        losses = self.criterion_(y_pred, targets, label_mask)[0]
        if per_block is not None:
            block_losses = [self.criterion_(out, targets, label_mask * used[:, m:m + 1])[0]
                            for m, out in enumerate(per_block)]
            losses = losses + self.module_.block_loss_weight * torch.stack(block_losses).mean(0)
        return losses

    def _training_losses(self, batch: Any, **fit_params: Any
                         ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The training forward pass of a batch: outputs, per-task losses, label counts."""
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        if getattr(self.module_, "block_loss_weight", 0.0):
            fit_params = {**fit_params, "return_blocks": True}
        y_pred = self.infer(Xi, **fit_params)
        losses = self.get_loss(y_pred, yi, X=Xi, training=True)
        if losses.shape != (len(self.tasks_),):
            raise ValueError(f"get_loss must return one loss per task, shape "
                             f"({len(self.tasks_)},); got shape {tuple(losses.shape)}.")
        return y_pred, losses, yi[1].to(losses.dtype).sum(0)

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Forward, per-task losses and the weighting's backward pass on one batch.

        Returns
        -------
        step : dict
            ``loss`` (the weighted objective, detached), ``y_pred`` (one output per task),
            ``task_losses`` (each task's loss) and ``task_counts`` (its label weight).
        """
        y_pred, losses, counts = self._training_losses(batch, **fit_params)
        scaler = self.__dict__.get("_grad_scaler")
        if scaler is None:
            objective = self.weighting_.backward(losses, counts > 0, self.module_)
        else:
            objective = self.weighting_.backward(losses, counts > 0, self.module_,
                                                 scale=scaler.scale)
        average_gradients(self.weighting_.parameters(), self.__dict__.get("_shard", (0, 1))[1])
        outputs = y_pred[0] if isinstance(y_pred, tuple) else y_pred
        return {"loss": objective, "y_pred": outputs, "task_losses": losses.detach(),
                "task_counts": counts}

    def train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """One optimizer step on a batch (skorch's; with ``precision="16-mixed"``, scaled).

        With a gradient scaler the gradients are unscaled before ``on_grad_computed`` (so
        ``GradientNormClipping`` sees true gradients) and the scaler skips steps whose
        gradients overflowed. With ``cuda_graphs=True`` the step of a full batch is the
        replay of a captured CUDA graph (see :mod:`sklearn_mtml._cuda_graphs`).
        """
        graphed = self.__dict__.get("_cuda_graph")
        if graphed is not None and not fit_params:
            return graphed(batch)
        return self._eager_train_step(batch, **fit_params)

    def _eager_train_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """:meth:`train_step` without CUDA graphs."""
        scaler = self.__dict__.get("_grad_scaler")
        if scaler is None:
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        scaler.unscale_(self.optimizer_)
        self.notify("on_grad_computed",
                    named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    batch=batch, training=True)
        scaler.step(self.optimizer_)
        scaler.update()
        return step

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        """Outputs and per-task losses of a validation batch, without gradients.

        Returns
        -------
        step : dict
            ``loss`` (``Σ loss_weights · task_losses``), ``y_pred``, ``task_losses``,
            ``task_counts``.
        """
        self._set_training(False)
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            losses = self.get_loss(y_pred, yi, X=Xi, training=False)
        counts = yi[1].to(losses.dtype).sum(0)
        return {"loss": (self.weighting_.base_weights * losses).sum(), "y_pred": y_pred,
                "task_losses": losses, "task_counts": counts}

    def run_single_epoch(self, iterator: Any, training: bool, prefix: str, step_fn: Any,
                         **fit_params: Any) -> None:
        """One pass over ``iterator``, as skorch's, without a host synchronisation per batch.

        Losses are summed on the device and read once at the end of the pass, which
        records ``<prefix>_loss`` (training: the mean objective per row; validation:
        ``Σ loss_weights · task losses``), ``<prefix>_loss_best`` and each task's
        ``<prefix>_loss_<task>``.
        """
        if iterator is None:
            return
        n_tasks = len(self.tasks_)
        total = torch.zeros(n_tasks, device=self.device_)
        count = torch.zeros(n_tasks, device=self.device_)
        objective = torch.zeros((), device=self.device_)
        n_rows = batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = int(batch[0][1].shape[0])
            self.history.record_batch(f"{prefix}_batch_size", size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            if "task_losses" in step:
                total += step["task_losses"] * step["task_counts"]
                count += step["task_counts"]
            objective += step["loss"].detach() * size
            n_rows += size
            batch_count += 1
        self.history.record(f"{prefix}_batch_count", batch_count)
        sums = self._sum_across_processes(torch.cat([
            total, count, objective.reshape(1),
            torch.full((1,), float(n_rows), device=self.device_)]))
        stats = torch.cat([sums[:n_tasks] / sums[n_tasks:2 * n_tasks].clamp_min(1e-12),
                           sums[2 * n_tasks:]]).cpu().numpy()
        losses = stats[:n_tasks]
        if training:
            epoch_loss = float(stats[n_tasks]) / max(float(stats[n_tasks + 1]), 1.0)
        else:
            epoch_loss = float((np.asarray(self._base_weights()) * losses).sum())
        self._record(f"{prefix}_loss", epoch_loss)
        for name, loss in zip(self.task_names_, losses):
            self.history.record(f"{prefix}_loss_{name}", float(loss))

    def _check_callbacks(self) -> None:
        """Fail clearly on a skorch callback that cannot read this net's automatic settings."""
        for name, cb in self.callbacks_:
            if (type(cb) is SkorchProgressBar and cb.batches_per_epoch == "auto"
                    and self.get_params().get("iterator_train__batch_size",
                                              self.batch_size) == "auto"):
                raise ValueError(
                    f"Callback {name!r}: skorch's ProgressBar cannot count batches with "
                    "batch_size='auto'; use sklearn_mtml.callbacks.ProgressBar (same "
                    "parameters), ProgressBar(batches_per_epoch='count') or a fixed "
                    "batch_size."
                )

    def _check_finite_loss(self, epoch: int) -> None:
        """Stop with a clear error when the training loss is no longer finite."""
        loss = self.history[-1, "train_loss"]
        if np.isfinite(loss):
            return
        cause = f"a learning rate too large (lr={self.lr!r}; try 10 times smaller)"
        if self.input_scaling is None:
            cause += " or inputs of extreme scale (input_scaling=None: try 'robust')"
        raise FloatingPointError(
            f"Training diverged: the training loss is {loss} at epoch {epoch + 1}. Likely "
            f"cause: {cause}. The network's weights are no longer usable: refit with other "
            "settings."
        )

    def _trained_modules(self) -> dict[str, nn.Module]:
        """The modules whose state is the trained model (for restoring the best epoch)."""
        return {"module_": self.module_, "weighting_": self.weighting_}

    def _resolve_budget(self, n_train: int, early_stopping: bool) -> None:
        """Set ``batch_size_`` and ``max_epochs_`` from the parameters and the data."""
        size = self.get_params_for("iterator_train").get("batch_size", self.batch_size)
        self.batch_size_ = auto_batch_size(n_train) if size == "auto" else int(size)
        if self.batch_size_ == -1:
            self.batch_size_ = n_train
        batches = len(batch_spans(n_train, self.batch_size_))
        self.max_epochs_ = (auto_max_epochs(batches, n_train, early_stopping)
                            if self.max_epochs == "auto" else int(self.max_epochs))

    def _step_flops(self, rows: DeviceRows | HostRows | FileRows) -> float:
        """Estimated floating-point operations of one training step (3× a forward pass)."""
        from torch.utils.flop_counter import FlopCounterMode

        (xb, mb), _ = rows.take(slice(0, 2))
        was_training = self.module_.training
        self.module_.eval()
        try:
            with torch.no_grad(), FlopCounterMode(display=False) as counter, \
                    warnings.catch_warnings():
                # a compiled wrapper of the module warns about the counter's global hooks
                warnings.filterwarnings("ignore", message=".*global hooks on modules")
                self.module_(xb, mb, prescaled=True)
            flops = counter.get_total_flops() / max(int(mb.shape[0]), 1)
        except Exception:  # noqa: BLE001 - an estimate only: fall back to the weights
            flops = 2.0 * sum(p.numel() for p in self.module_.parameters())
        finally:
            self.module_.train(was_training)
        return 3.0 * flops * self.batch_size_

    def _record(self, key: str, value: float) -> None:
        """Record an epoch value and whether it is the best (lowest) so far, as skorch does."""
        previous = [v for v in self.history[:-1, key]] if len(self.history) > 1 else []
        self.history.record(key, value)
        self.history.record(f"{key}_best", not previous or value < min(previous))

    # ------------------------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------------------------
    def _predict_batch_size(self) -> int:
        size = self.get_params_for("iterator_valid").get("batch_size")
        if size:
            return int(size)
        train_size = getattr(self, "batch_size_", self.batch_size)
        return max(int(train_size) if train_size != "auto" else 256, 16384)

    def forward_outputs(self, X: Any) -> list[np.ndarray]:
        """Raw network outputs: one ``(n, k_t)`` array per task (logits or scaled values).

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.

        Returns
        -------
        outputs : list of ndarray
            Host arrays, copied from the device once.
        """
        outputs, _, _ = self._infer(X, weights=False)
        return outputs

    def _prediction_rows(self, X: Any) -> PredictRows | FilePredictRows:
        """Validate ``X`` against the fitted layout; its rows, read in device chunks."""
        self.check_is_fitted()
        blocks, mask = self._validate_X(X, reset=False)
        source = lazy_source(blocks)
        if source is not None:
            return FilePredictRows(source, mask, functools.partial(self._files_on_device, source),
                                   self.device_)
        return PredictRows(blocks, mask, self._scaled_on_device)

    def _scaled_blocks_on_device(self, blocks: Mapping[str, np.ndarray]
                                 ) -> dict[str, torch.Tensor]:
        return self.module_.scale_inputs({k: self._to_device(v) for k, v in blocks.items()})

    def _scaled_on_device(self, blocks: dict[str, np.ndarray], mask: np.ndarray
                          ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self._scaled_blocks_on_device(blocks), self._to_device(mask)

    def _streams(self, blocks: Mapping[str, np.ndarray]) -> bool:
        """Whether this fit streams its inputs from the host (see ``streaming``)."""
        if self.streaming != "auto":
            return bool(self.streaming)
        source = lazy_source(blocks)
        if source is not None:  # files: decoded into memory when they fit its budget
            return not source.fits_in_memory(self.device_)
        if any(is_memory_mapped(b) for b in blocks.values()):
            return True
        if self.device_.type != "cuda":
            return False
        free, _ = torch.cuda.mem_get_info(self.device_)
        return sum(b.nbytes for b in blocks.values()) > free / 2

    def _forward_chunks(self, rows: PredictRows | FilePredictRows, training: bool = False,
                        weights: bool = False) -> Any:
        """Yield ``(outputs, weights)`` per prediction batch (``weights`` None unless asked)."""
        for batch in self.get_iterator(rows, training=False):
            if not weights:
                yield self.evaluation_step(batch, training=training), None
                continue
            with torch.set_grad_enabled(training):
                self._set_training(training)
                yield self.infer(batch[0], return_weights=True)

    def forward_iter(self, X: Any, training: bool = False, device: str = "cpu") -> Any:
        """Yield the network's outputs batch by batch, as skorch's ``forward_iter`` does.

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.
        training : bool, default=False
            Run in training mode (dropout on, gradients recorded).
        device : str, default="cpu"
            Where the yielded tensors go.

        Yields
        ------
        outputs : list of Tensor
            One ``(batch, k_t)`` tensor per task.
        """
        for out, _ in self._forward_chunks(self._prediction_rows(X), training):
            yield [o.to(device) for o in out]

    def forward(self, X: Any, training: bool = False, device: str = "cpu"
                ) -> list[torch.Tensor]:
        """All outputs of the network, as skorch's ``forward`` (one tensor per task).

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.
        training : bool, default=False
            Run in training mode (dropout on, gradients recorded).
        device : str, default="cpu"
            Where the returned tensors go.

        Returns
        -------
        outputs : list of Tensor
            One ``(n, k_t)`` tensor per task: logits for classification, standardised values
            for regression (:meth:`forward_outputs` gives host arrays).
        """
        chunks = list(self.forward_iter(X, training=training, device=device))
        return [torch.cat([c[t] for c in chunks]) for t in range(len(self.tasks_))]

    @torch.no_grad()
    def _infer(self, X: Any, weights: bool, on_chunk: Any = None
               ) -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray]:
        rows = self._prediction_rows(X)
        if self.device_.type == "cpu":
            # written into arrays allocated once: no list of small tensors kept between the
            # chunks' large temporaries (which fragments the heap on long inputs)
            outputs: list[np.ndarray] = []
            w_out: np.ndarray | None = None
            start = 0
            for out, w in self._forward_chunks(rows, weights=weights):
                stop = start + out[0].shape[0]
                if not outputs:
                    outputs = [np.empty((len(rows), o.shape[1]), np.float32) for o in out]
                for dest, o in zip(outputs, out):
                    dest[start:stop] = o.float().numpy()
                if w is not None:
                    if w_out is None:
                        w_out = np.empty((len(rows), *w.shape[1:]), np.float32)
                    w_out[start:stop] = w.float().numpy()
                if on_chunk is not None:
                    on_chunk()
                start = stop
            return outputs, w_out, rows.mask
        chunks: list[list[torch.Tensor]] = []
        weight_chunks: list[torch.Tensor] = []
        for out, w in self._forward_chunks(rows, weights=weights):
            chunks.append(out)  # kept on the device: one copy to the host at the end
            if on_chunk is not None:
                on_chunk()
            if w is not None:
                weight_chunks.append(w)
        outputs = [torch.cat([c[t] for c in chunks]).float().cpu().numpy()
                   for t in range(len(self.tasks_))]
        w_all = torch.cat(weight_chunks).float().cpu().numpy() if weight_chunks else None
        return outputs, w_all, rows.mask

    def modality_weights(self, X: Any) -> np.ndarray:
        """Per-row weight of each input block in the fusion (attention, gated or late).

        Parameters
        ----------
        X : dict of arrays or ModalityBlocks
            Input with the fitted layout.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_blocks)
            Rows sum to 1 over the present blocks; absent blocks weigh 0. For ``"concat"``
            fusion, which has no weights, the presence mask normalised per row.
        """
        _, w, mask = self._infer(X, weights=True)
        if w is None:
            w = mask / np.maximum(mask.sum(1, keepdims=True), 1)
        return w

    def attention_weights(self, X: Any) -> np.ndarray:
        """Attention of each task's queries over the input tokens (``task_attention`` only).

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.

        Returns
        -------
        weights : ndarray of shape (n_samples, n_tasks, n_tokens)
            Rows sum to 1 over the present tokens. Tokens are the input blocks (modalities)
            when there are several, else the architecture's learned feature groups.
        """
        self.check_is_fitted()
        arch = getattr(self.module_, "architecture", None)
        if arch is None or not hasattr(arch, "recording_attention"):
            raise ValueError(
                "attention_weights needs architecture='task_attention' and a fusion other than "
                f"'late'; this net has architecture={self.architecture!r}, "
                f"fusion={self.module_.fusion_name!r}."
            )
        collected: list[torch.Tensor] = []
        with arch.recording_attention():
            self._infer(X, weights=False,
                        on_chunk=lambda: collected.append(arch.last_attention_))
        return torch.cat(collected).float().cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predict every task.

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.

        Returns
        -------
        Y_pred : ndarray of shape (n_samples, n_tasks), or (n_samples,) after a 1-D fit
            One column per task in task order, original labels for classification tasks
            (an object array when tasks have different label types).
        """
        outputs = self.forward_outputs(X)  # checks that the net is fitted
        return self._stack_predictions(self.tasks_.decode(outputs))

    def _stack_predictions(self, cols: list[np.ndarray]) -> np.ndarray:
        """One column per task into :meth:`predict`'s output (1-D after a 1-D fit)."""
        if self._y_1d:
            return cols[0]
        kinds = {c.dtype.kind for c in cols}
        if len(kinds) == 1 and kinds <= set("biuf"):
            return np.column_stack(cols)
        if len({c.dtype for c in cols}) == 1:
            return np.column_stack(cols)
        out = np.empty((len(cols[0]), len(cols)), dtype=object)
        for i, c in enumerate(cols):
            out[:, i] = c
        return out

    def _has_classification_task(self) -> bool:
        if not hasattr(self, "tasks_"):
            return True  # let predict_proba raise NotFittedError
        return any(t.is_classification for t in self.tasks_.values())

    @available_if(_has_classification_task)
    def predict_proba(self, X: Any) -> list[np.ndarray] | np.ndarray:
        """Class probabilities of every classification task.

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input with the fitted layout.

        Returns
        -------
        proba : list of ndarray, or ndarray after a 1-D fit
            One ``(n_samples, n_classes)`` array per classification task, in task order
            (regression tasks are skipped), columns ordered as ``classes_``.
        """
        outputs = self.forward_outputs(X)
        probas = [cast(_ClassificationTask, task).predict_proba(out)
                  for task, out in zip(self.tasks_.values(), outputs) if task.is_classification]
        return probas[0] if self._y_1d else probas

    def score_tasks(self, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        """Score each task: accuracy for classification, R² for regression.

        Rows whose label is missing are skipped for that task.

        Parameters
        ----------
        X : array-like, dict of arrays or ModalityBlocks
            Input.
        y : array-like or DataFrame
            True targets, one column per task.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows in every task's score.

        Returns
        -------
        scores : dict of str to float
            Task name → score.
        """
        self.check_is_fitted()
        return self._score_predictions(self.predict(X), y, sample_weight)

    def _score_predictions(self, pred: np.ndarray, y: Any, sample_weight: Any = None
                           ) -> dict[str, float]:
        """Per-task scores of :meth:`predict`-shaped predictions against ``y``."""
        names, cols, _ = self._validate_targets(y, fitted=True)
        if names != self.task_names_:
            raise ValueError(f"y has tasks {names}, but the model was fitted on "
                             f"{self.task_names_}.")
        pred = pred.reshape(len(pred), -1)
        weights = _check_sample_weight(sample_weight, len(pred))
        scores = {}
        for i, (name, task) in enumerate(self.tasks_.items()):
            if (~is_missing(cols[i])).sum() == 0:
                scores[name] = float("nan")
                continue
            scores[name] = task.score(cols[i], pred[:, i], sample_weight=weights)
        return scores
