"""MultiTaskNet under HF Accelerate: AcceleratedMultiTaskNet (skipped without accelerate)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from sklearn_mtml import MultiTaskNet

accelerate = pytest.importorskip("accelerate")

from sklearn_mtml.accelerate import AcceleratedMultiTaskNet  # noqa: E402

PARAMS = {"weighting": "uncertainty", "random_state": 0, "max_epochs": 12,
          "n_iter_no_change": 4}


@pytest.fixture(autouse=True)
def _fresh_accelerator_state():
    """Each test configures its own Accelerator (their state is process-wide)."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def _data(n=1200):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 8).astype(np.float32)
    Y = np.column_stack([(X[:, 0] + X[:, 1] > 0), X[:, 2] - 0.5 * X[:, 3]]).astype(float)
    Y[::7, 0] = np.nan
    return X, Y


def test_single_process_fit_matches_a_plain_fit_and_its_checkpoint_loads_anywhere(tmp_path):
    X, Y = _data()
    net = AcceleratedMultiTaskNet(accelerator=accelerate.Accelerator(cpu=True), **PARAMS)
    net.fit(X, Y)
    plain = MultiTaskNet(**PARAMS).fit(X, Y)
    scores, plain_scores = net.score_tasks(X, Y), plain.score_tasks(X, Y)
    for task, score in plain_scores.items():
        assert scores[task] > score - 0.02, (scores, plain_scores)
    assert len(net.history) == len(plain.history)
    assert {"valid_acc_task_0", "valid_r2_task_1", "valid_score"} <= set(net.history[-1])
    # unwrapped after training: plain modules and optimizer, no wrapper left behind
    assert type(net.optimizer_) is torch.optim.AdamW
    assert not {"_accelerated_module", "_ddp_module"} & set(net.__dict__)

    # the checkpoint loads into an ordinary single-process MultiTaskNet
    net.save_params(f_params=str(tmp_path / "params.pt"))
    other = MultiTaskNet(weighting="uncertainty")
    other.initialize()
    other.load_params(f_params=str(tmp_path / "params.pt"))
    np.testing.assert_allclose(other.predict(X), net.predict(X))
    # the fitted net pickles (with its accelerator) and predicts the same
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(again.predict(X), net.predict(X))
    # partial_fit prepares the net again and trains on
    n_epochs = len(net.history)
    net.partial_fit(X, Y)
    assert len(net.history) > n_epochs


def test_mixed_precision_and_gradient_accumulation_train_through_the_accelerator():
    X, Y = _data(600)
    acc = accelerate.Accelerator(cpu=True, mixed_precision="bf16",
                                 gradient_accumulation_steps=2)
    net = AcceleratedMultiTaskNet(accelerator=acc, random_state=0, max_epochs=6,
                                  early_stopping=False, batch_size=64)
    net.fit(X, Y)
    scores = net.score_tasks(X, Y)
    assert scores["task_0"] > 0.85 and scores["task_1"] > 0.8, scores
    # the mixed-precision forward was undone: the fitted net predicts in float32
    assert "forward" not in net.module_.__dict__
    assert net.forward_outputs(X[:4])[0].dtype == np.float32
    np.testing.assert_allclose(pickle.loads(pickle.dumps(net)).predict(X), net.predict(X))


def test_refused_settings_say_what_to_do():
    X, Y = _data(200)
    acc = accelerate.Accelerator(cpu=True)
    with pytest.raises(ValueError, match="mixed_precision"):
        AcceleratedMultiTaskNet(accelerator=acc, precision="bf16", max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="device must be None"):
        AcceleratedMultiTaskNet(accelerator=acc, device="cpu", max_epochs=1).fit(X, Y)
    with pytest.raises(RuntimeError, match="torchrun"):  # no process group here
        AcceleratedMultiTaskNet(accelerator=acc, distributed=True, max_epochs=1).fit(X, Y)
    with pytest.raises(TypeError, match="accelerate.Accelerator, got str"):
        AcceleratedMultiTaskNet(accelerator="cpu", max_epochs=1).fit(X, Y)
    # a net still prepared by its accelerator cannot be pickled, and says so
    kept = AcceleratedMultiTaskNet(accelerator=acc, unwrap_after_train=False,
                                   max_epochs=1).fit(X, Y)
    with pytest.raises(TypeError, match="unwrap_after_train=True"):
        pickle.dumps(kept)


def test_per_task_gradients_refuse_accumulation():
    X, Y = _data(200)
    acc = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="weighting='gradnorm' computes per-task gradients"):
        AcceleratedMultiTaskNet(accelerator=acc, weighting="gradnorm", max_epochs=1).fit(X, Y)


SCRIPT = """
import json, os, sys
import numpy as np, torch
from accelerate import Accelerator
from sklearn_mtml.accelerate import AcceleratedMultiTaskNet

out = sys.argv[1]
acc = Accelerator(cpu=True)
d = np.load(os.path.join(out, "data.npz"))
net = AcceleratedMultiTaskNet(accelerator=acc, **json.loads(sys.argv[2]))
net.fit(d["X"], d["Y"])
rank = acc.process_index
assert acc.num_processes == 2, acc.num_processes
torch.save(net.module_.state_dict(), os.path.join(out, f"module_{rank}.pt"))
with open(os.path.join(out, f"history_{rank}.json"), "w") as f:
    json.dump([{k: v for k, v in row.items() if k not in ("batches", "dur")}
               for row in net.history], f)
net.save_params(f_params=os.path.join(out, "params.pt"))  # every process; rank 0 writes
"""


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="needs gloo")
def test_two_cpu_processes_under_torchrun_train_one_model(tmp_path):
    X, Y = _data()
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(tmp_path), json.dumps(PARAMS)],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    m0, m1 = (torch.load(tmp_path / f"module_{r}.pt") for r in (0, 1))
    for key in m0:
        torch.testing.assert_close(m0[key], m1[key])
    h0, h1 = (json.loads((tmp_path / f"history_{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1 and len(h0) >= 5  # per-task metrics summed across the processes
    single = MultiTaskNet(**PARAMS).fit(X, Y)
    assert h0[0]["train_batch_count"] == pytest.approx(
        single.history[0, "train_batch_count"] / 2, abs=1)

    net = MultiTaskNet(weighting="uncertainty")
    net.initialize()
    net.load_params(f_params=str(tmp_path / "params.pt"))
    for key, value in net.module_.state_dict().items():
        torch.testing.assert_close(value, m0[key])
    scores, single_scores = net.score_tasks(X, Y), single.score_tasks(X, Y)
    for task, score in single_scores.items():
        assert scores[task] > score - 0.05, (task, scores, single_scores)


def test_scikit_learn_estimator_checks_pass_as_for_multitasknet():
    # the estimator contract of MultiTaskNet (tests/test_common.py), with its expected
    # failures: skorch's mixin rewrote callbacks__print_log__sink at fit and the accelerator
    # kept every network it prepared (unhashable parameters, a leak across a search's fits)
    from sklearn.utils.estimator_checks import check_estimator
    from test_common import EXPECTED_FAILURES

    net = AcceleratedMultiTaskNet(accelerator=accelerate.Accelerator(cpu=True), max_epochs=3,
                                  batch_size=32, random_state=0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' convergence and inference notices
        results = check_estimator(net, expected_failed_checks=EXPECTED_FAILURES["MultiTaskNet"],
                                  on_fail=None)
    failed = {r["check_name"]: repr(r["exception"])[:300] for r in results
              if r["status"] == "failed"}
    assert not failed, failed
    assert len(net.accelerator._models) == 0  # nothing of the checks' fits is kept
