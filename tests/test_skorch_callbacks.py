"""skorch's callbacks and inference methods on MultiTaskNet, used as skorch documents them."""

import numpy as np
import pandas as pd
import pytest
import skorch
import torch
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit

from sklearn_mtml import MultiTaskNet, task_scorer
from sklearn_mtml.callbacks import ProgressBar


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5).astype("float32")
    Y = pd.DataFrame({"c": (X[:, 0] > 0).astype(int), "r": X[:, 1] - X[:, 2]})
    return X, Y


def test_epoch_scoring_with_a_string_scores_the_validation_rows(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=3, random_state=0, callbacks=[
        EpochScoring("accuracy", name="valid_accuracy", lower_is_better=False)])
    net.fit(X, Y["c"])
    scores = net.history[:, "valid_accuracy"]
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores)
    # the last epoch's score is the accuracy on the validation rows the fit held out
    valid = net.history[-1, "valid_accuracy"]
    assert valid == pytest.approx(net.history[-1, "valid_acc_c"], abs=1e-6)


def test_epoch_scoring_on_train_with_a_callable_and_a_task_scorer(data):
    X, Y = data
    seen = []

    def rows(net, X_rows, y_rows):
        seen.append((len(X_rows), len(y_rows)))
        return float(len(X_rows))

    net = MultiTaskNet(max_epochs=2, random_state=0, callbacks=[
        ("rows", EpochScoring(rows, on_train=True)),
        ("r2", EpochScoring(task_scorer("r"), name="valid_r2_of_r", lower_is_better=False)),
    ]).fit(X, Y)
    n_valid = int(round(len(X) * net.validation_fraction))
    assert seen == [(len(X) - n_valid, len(X) - n_valid)] * 2
    assert net.history[-1, "valid_r2_of_r"] == pytest.approx(net.history[-1, "valid_r2_r"],
                                                               abs=1e-5)


def test_forward_and_forward_iter_return_per_task_tensors(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=2, random_state=0).fit(X, Y)
    outputs = net.forward(X)
    assert [tuple(o.shape) for o in outputs] == [(200, 1), (200, 1)]  # binary: one logit
    assert all(isinstance(o, torch.Tensor) and not o.requires_grad for o in outputs)
    np.testing.assert_allclose(outputs[1].numpy(), net.forward_outputs(X)[1], rtol=1e-6)
    batches = list(net.forward_iter(X[:10]))
    assert len(batches) == 1 and batches[0][0].shape == (10, 1)


def test_skorch_early_stopping_with_load_best_on_a_given_split(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=40, random_state=0, early_stopping=False,
                       train_split=ValidSplit(0.2, random_state=0),
                       callbacks=[EarlyStopping(patience=2, load_best=True)]).fit(X, Y)
    assert len(net.history) <= 40
    assert "valid_loss" in net.history[-1]


def test_progress_bar_knows_the_automatic_batch_size(data, capsys):
    X, Y = data
    net = MultiTaskNet(max_epochs=2, random_state=0, callbacks=[ProgressBar()]).fit(X, Y)
    assert len(net.history) == 2
    with pytest.raises(ValueError, match="use sklearn_mtml.callbacks.ProgressBar"):
        MultiTaskNet(max_epochs=1, callbacks=[skorch.callbacks.ProgressBar()]).fit(X, Y)
    MultiTaskNet(max_epochs=1, batch_size=32,
                 callbacks=[skorch.callbacks.ProgressBar()]).fit(X, Y)  # a fixed size works


def test_scoring_accepts_unnamed_targets_in_the_fitted_order(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=2, random_state=0).fit(X, Y)
    named = net.score_tasks(X, Y)
    assert net.score_tasks(X, Y.to_numpy()) == named
    with pytest.raises(ValueError, match="y has tasks \\['x', 'r'\\]"):
        net.score_tasks(X, Y.rename(columns={"c": "x"}))


def test_checkpoint_then_initialize_and_load_params_on_a_new_net(data, tmp_path):
    from skorch.callbacks import Checkpoint

    X, Y = data
    net = MultiTaskNet(max_epochs=4, random_state=0, callbacks=[
        Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best")]).fit(X, Y)
    restored = MultiTaskNet(max_epochs=4)
    restored.initialize()  # skorch's documented pattern: before any fit
    restored.load_params(checkpoint=Checkpoint(dirname=str(tmp_path)))
    best = int(np.argmin(net.history[:, "valid_loss"]))
    # the checkpoint holds the best epoch's weights: the restored net predicts as the fitted
    # one does (early stopping restored the same best weights into it)
    assert net.best_epoch_ == best + 1
    np.testing.assert_allclose(restored.forward_outputs(X)[1], net.forward_outputs(X)[1],
                               rtol=1e-5, atol=1e-6)
    assert restored.task_names_ == ["c", "r"]
    with pytest.raises(RuntimeError, match="needs the tasks and input layout"):
        MultiTaskNet().load_params(f_params=str(tmp_path / "missing.pt"))


def test_iterator_train_shuffle_false_keeps_the_row_order(data):
    X, Y = data
    orders = []

    class Spy(skorch.callbacks.Callback):
        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            if training:
                (xb, _), _ = batch
                orders.append(xb["X"][:, 0].clone())

    MultiTaskNet(max_epochs=2, random_state=0, batch_size=50, early_stopping=False,
                 iterator_train__shuffle=False, callbacks=[Spy()],
                 input_scaling=None).fit(X, Y)
    first, second = torch.cat(orders[:4]), torch.cat(orders[4:])
    np.testing.assert_allclose(first.numpy(), X[:, 0], rtol=1e-6)
    np.testing.assert_allclose(second.numpy(), X[:, 0], rtol=1e-6)
