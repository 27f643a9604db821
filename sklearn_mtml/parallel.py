"""Hyperparameter searches on a Dask or Ray cluster that survive losing a worker.

:func:`on_cluster` makes every joblib ``Parallel`` call inside it, so scikit-learn's
``GridSearchCV`` / ``RandomizedSearchCV`` and
:class:`~sklearn_mtml.model_selection.LossWeightSearchCV`, run its tasks on a cluster:

- **Dask** (``dask.distributed``): each fit is a task submitted through ``distributed``'s own
  futures (``pure=False``, with ``retries``); the search's large inputs (``X``, ``y``) become
  ordinary *computed* tasks that the fits depend on. When a worker dies, the scheduler
  reruns the fits it held and, from their recipe, the data it held.
- **Ray**: each fit is a Ray task with ``max_retries``; large inputs are put once in the
  object store (owned by the driver, outside the worker processes).

Why not ``joblib.parallel_config(backend="dask")``: joblib's Dask backend *scatters* every
argument over 1 kB (the training data) to **one** worker. Scattered data have no recipe, so
when that worker dies the scheduler cannot recover them ("Removing worker ... caused the
cluster to lose scattered data, which can't be recovered"), forgets them and every pending
fit that needs them: those fits fail with ``FutureCancelledError: ... cancelled for reason:
already forgotten``. Whether a search survives depends on which worker the data went to.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import joblib
import numpy as np
from joblib.parallel import ParallelBackendBase, SequentialBackend

from ._optional import require

__all__ = ["on_cluster"]

#: Arguments at least this large (bytes) are sent to the cluster once per search, not once
#: per fit.
SHARED_BYTES = 1 << 20


class _Shared:
    """Placeholder for the ``index``-th shared argument of a task (resolved on the worker)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple:
        return (_Shared, (self.index,))


class _Calls:
    """A batch of ``(func, args, kwargs)`` calls, opaque to the cluster.

    (A bare list of such tuples would be run as a task graph by Dask before 2024.12.)
    """

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items

    def __reduce__(self) -> tuple:
        return (_Calls, (self.items,))


def _nbytes(obj: Any) -> int:
    """Rough in-memory size of an argument: arrays, sparse matrices, frames, dicts of them."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if hasattr(obj, "data") and hasattr(obj, "indices") and hasattr(obj, "nnz"):  # sparse
        return int(obj.data.nbytes + obj.indices.nbytes)
    usage = getattr(obj, "memory_usage", None)
    if callable(usage) and hasattr(obj, "columns"):  # a pandas DataFrame
        with contextlib.suppress(Exception):
            return int(np.asarray(usage(index=False)).sum())
    if isinstance(obj, Mapping):
        return sum(_nbytes(v) for v in obj.values())
    if hasattr(obj, "blocks") and isinstance(obj.blocks, Mapping):  # ModalityBlocks
        return sum(_nbytes(v) for v in obj.blocks.values())
    return 0


def _gpu_slot(name: Any, n_devices: int) -> int:
    """The GPU (``0 .. n_devices-1``) a worker called ``name`` trains on.

    Integer-like names (``LocalCluster`` numbers its workers ``0, 1, ...``; ``dask worker
    --name 3``) take GPU ``name % n_devices``; other names are hashed stably.
    """
    try:
        return int(name) % n_devices
    except (TypeError, ValueError):
        return int(uuid.uuid5(uuid.NAMESPACE_OID, str(name)).int % n_devices)


def _pin_one_gpu(worker_name: Any) -> None:
    """Make ``"cuda"`` mean one GPU of this worker when the process sees several.

    A worker that sees one GPU (``CUDA_VISIBLE_DEVICES`` per worker, Ray's ``num_gpus=1``)
    or none is left alone.
    """
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(_gpu_slot(worker_name, torch.cuda.device_count()))


def _run_calls(calls: _Calls, worker_name: Any, *shared: Any) -> list:
    """Run one batch of joblib calls on a worker (shared arguments substituted)."""

    def fill(arg: Any) -> Any:
        return shared[arg.index] if isinstance(arg, _Shared) else arg

    _pin_one_gpu(worker_name)
    # nested joblib calls of a fit run in this task: one fit per worker slot (and GPU)
    with joblib.parallel_config(backend=SequentialBackend(nesting_level=1)):
        return [func(*[fill(a) for a in args], **{k: fill(v) for k, v in kwargs.items()})
                for func, args, kwargs in calls.items]


def _dask_worker_name() -> Any:
    """The running Dask worker's name (for :func:`_pin_one_gpu`)."""
    from distributed import get_worker

    return get_worker().name


def _run_dask_calls(calls: _Calls, *shared: Any) -> list:
    return _run_calls(calls, _dask_worker_name(), *shared)


def _identity(obj: Any) -> Any:
    return obj


class _ClusterBackend(ParallelBackendBase):
    """joblib backend: one task per batch of calls, large arguments shared, lost tasks rerun."""

    supports_retrieve_callback = True
    default_n_jobs = -1

    def __init__(self, retries: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retries = retries
        self._shared: dict[int, tuple[Any, Any]] = {}  # id(arg) -> (arg, handle)
        self._pending: set[Any] = set()
        self._lock = threading.Lock()

    # -- joblib's interface ------------------------------------------------------------
    def configure(self, n_jobs: int | None = 1, parallel: Any = None, **kwargs: Any) -> int:
        self.parallel = parallel
        return self.effective_n_jobs(n_jobs)

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs is None or n_jobs < 0:
            # at least 2: joblib runs n_jobs=1 in this process, not on a 1-worker cluster
            return max(self._slots(), 2)
        return max(int(n_jobs), 1)

    def submit(self, func: Any, callback: Callable | None = None) -> Any:
        calls = []
        with self._lock:
            for f, args, kwargs in func.items:
                calls.append((f, [self._share(a) for a in args],
                              {k: self._share(v) for k, v in kwargs.items()}))
            handles = [handle for _, handle in self._shared.values()]
        future = self._submit(_Calls(calls), handles)
        with self._lock:
            self._pending.add(future)

        def done(fut: Any) -> None:
            with self._lock:
                self._pending.discard(future)
            if callback is not None:
                callback(fut)

        self._add_done_callback(future, done)
        return future

    apply_async = submit  # joblib < 1.5 calls this name

    def retrieve_result_callback(self, out: Any) -> Any:
        return out.result()

    def get_nested_backend(self) -> tuple[ParallelBackendBase, int | None]:
        return SequentialBackend(nesting_level=1), None

    def stop_call(self) -> None:
        with self._lock:
            self._shared.clear()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        with self._lock:
            pending, self._pending = list(self._pending), set()
        self._cancel(pending)

    # -- helpers -----------------------------------------------------------------------
    def _share(self, arg: Any) -> Any:
        """``arg``, or a placeholder for it when it is large enough to send once."""
        key = id(arg)
        if key not in self._shared:
            if _nbytes(arg) < SHARED_BYTES:
                return arg
            self._shared[key] = (arg, self._put(arg))  # keeps arg alive: its id stays unique
        return _Shared(list(self._shared).index(key))

    def _slots(self) -> int:
        raise NotImplementedError

    def _put(self, arg: Any) -> Any:
        raise NotImplementedError

    def _submit(self, calls: _Calls, handles: list) -> Any:
        raise NotImplementedError

    def _add_done_callback(self, future: Any, fn: Callable[[Any], None]) -> None:
        raise NotImplementedError

    def _cancel(self, futures: list) -> None:
        raise NotImplementedError


class _DaskBackend(_ClusterBackend):
    """Fits as ``distributed`` futures; shared data as computed (recoverable) tasks."""

    def __init__(self, client: Any, retries: int, **kwargs: Any) -> None:
        super().__init__(retries, **kwargs)
        self.client = client
        self._resources: dict[str, float] | None = None

    def configure(self, n_jobs: int | None = 1, parallel: Any = None, **kwargs: Any) -> int:
        self._resources = self._gpu_resources()
        return super().configure(n_jobs, parallel, **kwargs)

    def _slots(self) -> int:
        return int(sum(self.client.nthreads().values()))

    def _gpu_resources(self) -> dict[str, float] | None:
        workers = self.client.scheduler_info().get("workers", {})
        has_gpus = any(w.get("resources", {}).get("GPU", 0) for w in workers.values())
        return {"GPU": 1} if has_gpus else None

    def _put(self, arg: Any) -> Any:
        # a computed task, not client.scatter: the scheduler keeps its recipe (the pickled
        # argument), so the data come back when the worker holding them dies
        return self.client.submit(_identity, arg, pure=False,
                                  key=f"sklearn-mtml-data-{uuid.uuid4().hex}")

    def _submit(self, calls: _Calls, handles: list) -> Any:
        return self.client.submit(_run_dask_calls, calls, *handles, pure=False,
                                  retries=self.retries, resources=self._resources,
                                  key=f"sklearn-mtml-fit-{uuid.uuid4().hex}")

    def _add_done_callback(self, future: Any, fn: Callable[[Any], None]) -> None:
        future.add_done_callback(fn)

    def _cancel(self, futures: list) -> None:
        if futures:
            self.client.cancel(futures)


class _RayFuture:
    """A Ray ``ObjectRef`` with the ``result()`` of a future."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self.future = ref.future()

    def result(self, timeout: float | None = None) -> Any:
        return self.future.result(timeout=timeout)


class _RayBackend(_ClusterBackend):
    """Fits as Ray tasks with ``max_retries``; shared data in the object store."""

    def __init__(self, retries: int, **kwargs: Any) -> None:
        super().__init__(retries, **kwargs)
        self.ray = require("ray", needed_by="on_cluster('ray')", extra="ray")
        gpus = self.ray.cluster_resources().get("GPU", 0)
        self._remote = self.ray.remote(_run_calls).options(
            max_retries=retries, retry_exceptions=False, num_cpus=1,
            num_gpus=1 if gpus else 0)

    def _slots(self) -> int:
        resources = self.ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        return gpus if gpus else int(resources.get("CPU", 1))

    def _put(self, arg: Any) -> Any:
        return self.ray.put(arg)

    def _submit(self, calls: _Calls, handles: list) -> Any:
        # Ray's num_gpus=1 already gives each task one GPU (CUDA_VISIBLE_DEVICES)
        return _RayFuture(self._remote.remote(calls, None, *handles))

    def _add_done_callback(self, future: Any, fn: Callable[[Any], None]) -> None:
        future.future.add_done_callback(lambda _: fn(future))

    def _cancel(self, futures: list) -> None:
        for fut in futures:
            with contextlib.suppress(Exception):
                self.ray.cancel(fut.ref, force=True)


def _dask_client(cluster: Any) -> tuple[Any, bool]:
    """``(client, owned)`` for a ``distributed.Client``, a Dask cluster or an address."""
    distributed = require("distributed", needed_by="on_cluster", extra="distributed",
                          instead="or pass 'ray'")
    if isinstance(cluster, distributed.Client):
        return cluster, False
    # a LocalCluster, SLURMCluster, ... or a scheduler address: a client for the block
    return distributed.Client(cluster, set_as_default=False), True


@contextlib.contextmanager
def on_cluster(cluster: Any, *, retries: int = 3, n_jobs: int | None = None
               ) -> Iterator[ParallelBackendBase]:
    """Run the joblib-parallel work inside the ``with`` block (a search) on a cluster.

    Every fit of a ``GridSearchCV`` / ``RandomizedSearchCV`` or
    :class:`~sklearn_mtml.model_selection.LossWeightSearchCV` becomes one cluster task;
    a worker that dies mid-search (killed, out of memory, its machine lost) costs only the
    fits it was running, which run again on the other workers, and the search completes
    with every result. The search's own ``n_jobs`` can stay at its default.

    Parameters
    ----------
    cluster : distributed.Client, Dask cluster, str or "ray"
        Where to run: a ``dask.distributed`` ``Client``, a Dask cluster object
        (``LocalCluster(...)``), the address of a Dask scheduler (``"tcp://host:8786"``;
        any other string is taken as one),
        or ``"ray"`` for the Ray cluster this process is connected to (``ray.init()`` is
        called first if it was not).
    retries : int, default=3
        How many times a fit task runs again after a failure. Dask: on top of the
        scheduler's own rerun of the tasks of a lost worker (``distributed.scheduler.
        allowed-failures``), a task that errs is retried; Ray: ``max_retries``, the reruns
        after the worker process running the task died (exceptions raised by a fit are not
        retried: scikit-learn's searches record them with ``error_score``).
    n_jobs : int or None, default=None
        How many tasks joblib keeps in flight; None: the cluster's worker threads (Dask) or
        CPUs (Ray; GPUs when the cluster has some), at least 2. Leave the search's own
        ``n_jobs`` at None: joblib runs ``n_jobs=1`` in this process.

    Yields
    ------
    backend : joblib.parallel.ParallelBackendBase
        The joblib backend in use inside the block.

    Raises
    ------
    ImportError
        When ``dask.distributed`` (``pip install sklearn-mtml[distributed]``) or ``ray``
        (``pip install sklearn-mtml[ray]``) is missing.
    ValueError
        For a negative ``retries`` or an unknown ``cluster``.

    Notes
    -----
    **One GPU per worker.** On Ray, each fit asks for ``num_gpus=1`` when the cluster has
    GPUs, and Ray gives the task one GPU (``CUDA_VISIBLE_DEVICES``). On Dask, start one
    worker per GPU; a worker that sees several GPUs trains on GPU ``name % n_gpus``
    (``LocalCluster`` names its workers ``0, 1, ...``), so the estimators' ``device="auto"``
    means that worker's GPU. Workers started with ``--resources GPU=1`` run one fit per GPU
    at a time. Unfitted estimators pickle to under a kilobyte (no data, no tensors), so
    sending them to the workers is cheap; the training data (arguments of 1 MiB or more)
    are sent once per search, not once per fit.

    Examples
    --------
    >>> from distributed import LocalCluster  # doctest: +SKIP
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_mtml import MultiTaskNet
    >>> from sklearn_mtml.parallel import on_cluster
    >>> search = GridSearchCV(MultiTaskNet(), {"loss_weights": [[1, 1], [1, 0.5]]})
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> with on_cluster(cluster):  # doctest: +SKIP
    ...     search.fit(X, Y)
    >>> with on_cluster("ray"):  # doctest: +SKIP
    ...     search.fit(X, Y)
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}.")
    owned = None
    backend: _ClusterBackend
    if isinstance(cluster, str) and cluster == "ray":
        ray = require("ray", needed_by="on_cluster('ray')", extra="ray",
                      instead="or pass a Dask client")
        if not ray.is_initialized():
            ray.init()  # RAY_ADDRESS, or a local Ray
        backend = _RayBackend(retries)
    elif isinstance(cluster, str) or hasattr(cluster, "submit") or hasattr(
            cluster, "scheduler_address"):
        client, owns = _dask_client(cluster)
        owned = client if owns else None
        backend = _DaskBackend(client, retries)
    else:
        raise ValueError(
            f"cluster must be a dask.distributed Client, a Dask cluster, a scheduler address "
            f"such as 'tcp://host:8786', or 'ray'; got {cluster!r}.")
    try:
        config = {} if n_jobs is None else {"n_jobs": n_jobs}
        with joblib.parallel_config(backend=backend, **config):
            yield backend
    finally:
        if owned is not None:
            owned.close()
