"""Resuming a fit killed with SIGKILL from its last checkpoint (skorch's documented pattern)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from sklearn_mtml import MultiTaskNet

KILLED_AT = 6  # epochs completed and checkpointed before the process is killed


def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 6).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0).astype(float), X[:, 1] * 2 + 0.1 * rng.randn(300)])
    return X, Y


def _params():
    return dict(weighting="dwa", max_epochs=50, early_stopping=False, batch_size=32,
                random_state=0)


class _StateAtStart(Callback):
    """The state the resumed fit starts from (after LoadInitState, which runs first)."""

    def on_train_begin(self, net, **kwargs):
        self.history_len = len(net.history)
        self.weighting = {k: v.clone() for k, v in net.weighting_.state_dict().items()}
        self.module = {k: v.clone() for k, v in net.module_.state_dict().items()}
        self.optimizer_steps = {int(s["step"]) for s in net.optimizer_.state_dict()["state"]
                                .values()}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_fit_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        from skorch.callbacks import Callback, Checkpoint
        from sklearn_mtml import MultiTaskNet
        from tests_resume_data import X, Y, PARAMS

        class Kill(Callback):
            def on_epoch_end(self, net, **kwargs):
                if len(net.history) == {KILLED_AT}:
                    os.kill(os.getpid(), signal.SIGKILL)

        cp = Checkpoint(monitor=None, dirname={str(tmp_path / "cp")!r})
        MultiTaskNet(callbacks=[cp, Kill()], **PARAMS).fit(X, Y)
    """)
    X, Y = _data()
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    (tmp_path / "tests_resume_data.py").write_text(
        "import numpy as np\n"
        f"_d = np.load({str(tmp_path / 'data.npz')!r})\n"
        "X, Y = _d['X'], _d['Y']\n"
        f"PARAMS = {_params()!r}\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", **_environ()})
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    saved = torch.load(tmp_path / "cp" / "params.pt", weights_only=True)

    cp = Checkpoint(monitor=None, dirname=str(tmp_path / "cp"))
    start = _StateAtStart()
    params = {**_params(), "max_epochs": 4}
    net = MultiTaskNet(callbacks=[cp, LoadInitState(cp), start], **params).fit(X, Y)

    # every completed epoch is kept: the history continues from the checkpoint
    assert start.history_len == KILLED_AT
    assert len(net.history) == KILLED_AT + 4
    assert net.history[:, "epoch"] == list(range(1, KILLED_AT + 5))
    # the weights, the optimizer and the loss weighting are those of the last checkpoint
    for key, value in saved.items():
        torch.testing.assert_close(start.module[key], value)
    batches = net.history[0, "train_batch_count"]
    assert start.optimizer_steps == {KILLED_AT * batches}
    assert int(start.weighting["n_epochs"]) == KILLED_AT  # DWA's epoch count and losses
    last_losses = [net.history[KILLED_AT - 1, f"train_loss_task_{t}"] for t in range(2)]
    np.testing.assert_allclose(start.weighting["loss_history"][1].numpy(), last_losses,
                               rtol=1e-6)
    assert net.score(X, Y) > 0.8

    # the other documented pattern: a new net loads the checkpoint, partial_fit goes on
    other = MultiTaskNet(**params)
    other.initialize()
    other.load_params(checkpoint=Checkpoint(monitor=None, dirname=str(tmp_path / "cp")))
    assert len(other.history) == KILLED_AT + 4 and int(other.weighting_.n_epochs) == 10
    other.partial_fit(X, Y)
    assert len(other.history) == KILLED_AT + 8


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
