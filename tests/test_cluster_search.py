"""Searches on real local Dask and Ray clusters (2 worker processes) that lose a worker.

Each kill test blocks the first scoring call of the search in its worker (it writes its
process id to a file and sleeps), SIGKILLs that worker process, and checks that the search
completes with every candidate on every fold and the scores of a local search: a fit was
certainly in flight on the killed worker, so the search passes only if it was run again.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_mtml import MultiTaskNet, parallel
from sklearn_mtml.features import (
    AudioFeatures,
    CategoricalFeatures,
    ImageFeatures,
    PretrainedFeatures,
    PretrainedTokenizer,
    TextFeatures,
)
from sklearn_mtml.model_selection import LossWeightSearchCV
from sklearn_mtml.parallel import on_cluster

TESTS = Path(__file__).resolve().parent
# How long the killer waits for a fit to block: it includes the cluster workers' start-up
# (importing torch), which takes minutes on a loaded 2-core machine; 60 s was too short.
KILL_WAIT = 300


class BlockFirstScore:
    """A scorer whose first call (in any process) records its pid and sleeps until killed."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __call__(self, estimator, X, y) -> float:
        try:
            fd = os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return float(estimator.score(X, y))
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(KILL_WAIT + 30)  # the test kills this process long before
        raise RuntimeError("the worker was not killed")


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 6).astype(np.float32)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] - X[:, 2]])
    return X, Y


def _search(kind: str, flag: str):
    net = MultiTaskNet(max_epochs=4, batch_size=32, random_state=0,
                       verbose=0)
    grid = {"loss_weights": [[1.0, 1.0], [1.0, 0.25]]}
    cls = GridSearchCV if kind == "grid" else LossWeightSearchCV
    return cls(net, grid, cv=KFold(2), scoring=BlockFirstScore(flag), refit=False)


def _kill_when_blocked(flag: str, record: dict) -> threading.Thread:
    """SIGKILL the process that writes ``flag`` (a worker blocked inside a fit task)."""

    def run() -> None:
        deadline = time.monotonic() + KILL_WAIT
        while time.monotonic() < deadline:
            try:
                pid = int(Path(flag).read_text())
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)
                continue
            os.kill(pid, signal.SIGKILL)
            record["pid"] = pid
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _check_complete(search, reference) -> None:
    res, ref = search.cv_results_, reference.cv_results_
    assert [p for p in res["params"]] == [p for p in ref["params"]]
    for split in ("split0_test_score", "split1_test_score"):
        assert np.isfinite(res[split]).all()
        np.testing.assert_allclose(res[split], ref[split], rtol=1e-4, atol=1e-5)


def _kill_test(kind: str, tmp_path: Path, cluster) -> None:
    X, Y = _data()
    flag = str(tmp_path / "blocked.pid")
    record: dict = {}
    killer = _kill_when_blocked(flag, record)
    search = _search(kind, flag)
    with on_cluster(cluster, retries=2):
        search.fit(X, Y)
    killer.join(5)
    # SIGKILL cannot be caught: the worker running that fit died mid-search
    assert "pid" in record, "no worker was killed: the test did not test anything"
    reference = _search(kind, flag).fit(X, Y)  # local; the flag exists: no blocking
    _check_complete(search, reference)


# ----------------------------------------------------------------------------------------
# cheap pickles, arguments
# ----------------------------------------------------------------------------------------
class _FindTensors(pickle.Pickler):
    found: list

    def persistent_id(self, obj):
        if isinstance(obj, (torch.Tensor, torch.nn.Module)):
            self.found.append(type(obj).__name__)
        return None


@pytest.mark.parametrize("obj", [
    MultiTaskNet(), AudioFeatures(), ImageFeatures(), TextFeatures(), CategoricalFeatures(),
    PretrainedFeatures("some/model"), PretrainedTokenizer("some/model")],
    ids=lambda o: type(o).__name__)
def test_unfitted_objects_pickle_cheaply(obj):
    import io

    buffer = io.BytesIO()
    pickler = _FindTensors(buffer)
    pickler.found = []
    pickler.dump(obj)
    assert pickler.found == []  # no tensors, no modules: nothing on a device
    assert len(buffer.getvalue()) < 4_000, len(buffer.getvalue())  # ~0.2-0.7 kB now


def test_on_cluster_rejects_bad_arguments(monkeypatch):
    with pytest.raises(ValueError, match="retries must be an int >= 0, got -1"):
        with on_cluster("ray", retries=-1):
            pass
    with pytest.raises(ValueError, match="cluster must be a dask.distributed Client.*got 42"):
        with on_cluster(42):
            pass
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs ray; install it with .*sklearn-mtml\[ray\]"):
        with on_cluster("ray"):
            pass


def test_gpu_slot_and_pinning(monkeypatch):
    assert [parallel._gpu_slot(n, 2) for n in (0, 1, 2, "3")] == [0, 1, 0, 1]
    assert parallel._gpu_slot("tcp://a:1", 4) == parallel._gpu_slot("tcp://a:1", 4)
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    parallel._pin_one_gpu(6)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    parallel._pin_one_gpu(6)  # one visible GPU (CUDA_VISIBLE_DEVICES, Ray): left alone
    assert chosen == [2]


def test_argument_sizes():
    X = np.zeros((600, 600))  # 2.9 MB
    assert parallel._nbytes(X) == X.nbytes
    assert parallel._nbytes({"a": X, "b": X[:10]}) == X.nbytes + X[:10].nbytes
    assert parallel._nbytes(MultiTaskNet()) == 0


class _ThreadBackend(parallel._ClusterBackend):
    """The cluster backend's logic on a local thread pool (puts counted)."""

    def __init__(self):
        super().__init__(retries=0)
        self.pool = ThreadPoolExecutor(1)  # one: concurrent fits would share torch's RNG
        self.puts = []

    def _slots(self):
        return 2

    def _put(self, arg):
        self.puts.append(arg)
        return arg

    def _submit(self, calls, handles):
        return self.pool.submit(parallel._run_calls, calls, None, *handles)

    def _add_done_callback(self, future, fn):
        future.add_done_callback(fn)

    def _cancel(self, futures):
        for fut in futures:
            fut.cancel()


@pytest.mark.parametrize("kind", ["grid", "lossweight"])
def test_large_arguments_are_sent_once_per_search(kind, tmp_path, monkeypatch):
    X, Y = _data()
    monkeypatch.setattr(parallel, "SHARED_BYTES", 900)  # X, Y shared; the folds' indices not
    flag = str(tmp_path / "blocked.pid")
    Path(flag).write_text("0")  # nothing blocks
    backend = _ThreadBackend()
    search = _search(kind, flag)
    with joblib.parallel_config(backend=backend):
        search.fit(X, Y)
    backend.pool.shutdown()
    assert len(backend.puts) == 2 and backend.puts[0] is X and backend.puts[1] is Y
    _check_complete(search, _search(kind, flag).fit(X, Y))


# ----------------------------------------------------------------------------------------
# Dask
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    # spawned worker processes inherit sys.path: they import this module (the scorer)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        client.run(__import__, "sklearn_mtml")  # import torch once per worker, up front
        yield client


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["grid", "lossweight"])
def test_dask_search_survives_a_killed_worker(kind, tmp_path, dask_client, monkeypatch):
    # X and y as shared data tasks (the arguments that joblib's Dask backend scatters)
    monkeypatch.setattr(parallel, "SHARED_BYTES", 1)
    dask_client.wait_for_workers(2)
    _kill_test(kind, tmp_path, dask_client)


# ----------------------------------------------------------------------------------------
# Ray
# ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray session is already running in this process")
    # Ray's worker processes get the driver's environment: let them import this module
    path = os.pathsep.join([str(TESTS), *sys.path])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield "ray"
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_search_survives_a_killed_worker(tmp_path, ray_cluster, monkeypatch):
    monkeypatch.setattr(parallel, "SHARED_BYTES", 1)  # X and y through the object store
    _kill_test("grid", tmp_path, ray_cluster)
