"""Data-parallel training with torch.distributed (2 CPU processes, gloo), launched by torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sklearn_mtml import MultiTaskNet

pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(1200, 8).astype(np.float32)
    Y = np.column_stack([(X[:, 0] + X[:, 1] > 0), X[:, 2] - 0.5 * X[:, 3]]).astype(float)
    Y[::7, 0] = np.nan
    return X, Y


SCRIPT = """
import json, os, sys
import numpy as np, torch
import torch.distributed as dist
from sklearn_mtml import MultiTaskNet

out = sys.argv[1]
dist.init_process_group("gloo")
rank = dist.get_rank()
d = np.load(os.path.join(out, "data.npz"))
X, Y = d["X"], d["Y"]
net = MultiTaskNet(weighting="uncertainty", random_state=0, max_epochs=12, n_iter_no_change=4)
net.fit(X, Y)
torch.save({k: v for k, v in net.module_.state_dict().items()},
           os.path.join(out, f"module_{rank}.pt"))
torch.save(net.weighting_.state_dict(), os.path.join(out, f"weighting_{rank}.pt"))
with open(os.path.join(out, f"history_{rank}.json"), "w") as f:
    json.dump([{k: v for k, v in row.items() if k not in ("batches", "dur")}
               for row in net.history], f)
if rank == 0:  # a rank-0 checkpoint, to be loaded by an ordinary single-process net
    net.save_params(f_params=os.path.join(out, "params.pt"))
dist.destroy_process_group()
"""


def test_two_processes_train_one_model_that_loads_in_a_single_process(tmp_path):
    X, Y = _data()
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # both processes hold the same network, the same loss weighting and the same history
    m0, m1 = (torch.load(tmp_path / f"module_{r}.pt") for r in (0, 1))
    for key in m0:
        torch.testing.assert_close(m0[key], m1[key])
    w0, w1 = (torch.load(tmp_path / f"weighting_{r}.pt") for r in (0, 1))
    for key in w0:
        torch.testing.assert_close(w0[key], w1[key])
    h0, h1 = (json.loads((tmp_path / f"history_{r}.json").read_text()) for r in (0, 1))
    assert h0 == h1 and len(h0) >= 5
    # each process trained on half of the rows: half the batches of a single-process fit
    single = MultiTaskNet(weighting="uncertainty", random_state=0, max_epochs=12,
                          n_iter_no_change=4).fit(X, Y)
    assert h0[0]["train_batch_count"] == pytest.approx(
        single.history[0, "train_batch_count"] / 2, abs=1)

    # the rank-0 checkpoint loads into an ordinary net, and predicts as well as a
    # single-process fit (the same model class, trained on the same rows)
    with pytest.raises(ValueError, match="create the net with the weighting it was trained"):
        other = MultiTaskNet()  # the default weighting: not the one trained
        other.initialize()
        other.load_params(f_params=str(tmp_path / "params.pt"))
    net = MultiTaskNet(weighting="uncertainty")
    net.initialize()
    net.load_params(f_params=str(tmp_path / "params.pt"))
    for key, value in net.module_.state_dict().items():
        torch.testing.assert_close(value, m0[key])
    ddp_scores = net.score_tasks(X, Y)
    single_scores = single.score_tasks(X, Y)
    for task, score in single_scores.items():
        assert ddp_scores[task] > score - 0.05, (task, ddp_scores, single_scores)


def test_distributed_true_without_a_process_group_says_how_to_start_one():
    X, Y = _data()
    with pytest.raises(RuntimeError, match="torchrun"):
        MultiTaskNet(distributed=True, max_epochs=1).fit(X, Y)
    with pytest.raises(ValueError, match="distributed must be True, False or 'auto'"):
        MultiTaskNet(distributed="yes").fit(X, Y)
