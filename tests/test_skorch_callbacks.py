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


# ------------------------------------------------------------------------------------------
# training goes through skorch's hooks: subclasses that override them are called
# ------------------------------------------------------------------------------------------
def test_overridden_training_hooks_are_called(data):
    X, Y = data
    calls = {"get_iterator": [], "infer": 0, "get_loss": [], "train_step_single": 0,
             "validation_step": 0}

    class Spy(MultiTaskNet):
        def get_iterator(self, dataset, training=False):
            calls["get_iterator"].append(training)
            return super().get_iterator(dataset, training)

        def infer(self, x, **fit_params):
            calls["infer"] += 1
            return super().infer(x, **fit_params)

        def get_loss(self, y_pred, y_true, X=None, training=False):
            calls["get_loss"].append(training)
            return super().get_loss(y_pred, y_true, X=X, training=training)

        def train_step_single(self, batch, **fit_params):
            calls["train_step_single"] += 1
            return super().train_step_single(batch, **fit_params)

        def validation_step(self, batch, **fit_params):
            calls["validation_step"] += 1
            return super().validation_step(batch, **fit_params)

    net = Spy(max_epochs=2, batch_size=50, train_split=0.2, random_state=0).fit(X, Y)
    train_batches = net.history[:, "train_batch_count"]
    assert calls["get_iterator"][:2] == [True, False]
    assert calls["train_step_single"] == sum(train_batches) == 2 * 4  # 160 rows: 3 × 50 + 10
    assert calls["validation_step"] == sum(net.history[:, "valid_batch_count"]) == 2
    assert calls["get_loss"].count(True) == 8 and calls["get_loss"].count(False) == 2
    n_infer = calls["infer"]
    net.predict(X)
    assert calls["infer"] == n_infer + 1  # prediction goes through infer (one chunk)


def test_a_get_loss_override_changes_what_is_trained(data):
    X, Y = data

    class OnlyFirstTask(MultiTaskNet):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            losses = super().get_loss(y_pred, y_true, X=X, training=training)
            return losses * torch.tensor([1.0, 0.0])  # the regression task is not trained

    kw = dict(max_epochs=30, early_stopping=False, random_state=0)
    plain = MultiTaskNet(**kw).fit(X, Y).score_tasks(X, Y)
    masked = OnlyFirstTask(**kw).fit(X, Y).score_tasks(X, Y)
    assert plain["r"] > 0.8 and masked["r"] < 0.3
    assert masked["c"] > 0.85

    class Scalar(MultiTaskNet):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            return super().get_loss(y_pred, y_true, X=X, training=training).sum()

    with pytest.raises(ValueError, match=r"get_loss must return one loss per task, shape \(2,\)"):
        Scalar(max_epochs=1).fit(X, Y)


def test_on_batch_end_receives_the_step_with_per_task_losses(data):
    X, Y = data
    steps = []

    class Steps(skorch.callbacks.Callback):
        def on_batch_end(self, net, batch=None, training=None, **step):
            if training:
                steps.append(step)

    net = MultiTaskNet(max_epochs=1, batch_size=100, early_stopping=False,
                       callbacks=[Steps()]).fit(X, Y)
    assert len(steps) == 2
    assert set(steps[0]) >= {"loss", "y_pred", "task_losses", "task_counts"}
    assert steps[0]["task_losses"].shape == (2,) and len(steps[0]["y_pred"]) == 2
    counts = sum(s["task_counts"] for s in steps)
    assert counts.tolist() == [200.0, 200.0]
    # the epoch's per-task loss is the count-weighted mean of the batches' losses
    mean = sum(s["task_losses"] * s["task_counts"] for s in steps) / counts
    np.testing.assert_allclose(mean.numpy(), [net.history[-1, "train_loss_c"],
                                              net.history[-1, "train_loss_r"]], rtol=1e-5)


def test_default_callbacks_can_be_removed(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=2, train_split=0.2, random_state=0,
                       callbacks__valid_scores=None, callbacks__task_weights=None).fit(X, Y)
    row = net.history[-1]
    assert "valid_loss" in row and "valid_loss_c" in row
    assert not any(k.startswith(("valid_acc", "valid_r2", "valid_score", "weight_"))
                   for k in row)
    names = [name for name, _ in net.callbacks_]
    assert names == ["epoch_timer", "early_stopping", "print_log"]  # skorch: PrintLog last


def test_iterator_train_dataloader_trains_like_the_sliced_batches(data):
    X, Y = data
    kw = dict(max_epochs=3, batch_size=32, early_stopping=False, random_state=0,
              iterator_train__shuffle=False)
    sliced = MultiTaskNet(**kw).fit(X, Y)
    loader = MultiTaskNet(iterator_train=torch.utils.data.DataLoader, **kw).fit(X, Y)
    np.testing.assert_allclose(loader.history[:, "train_loss"],
                               sliced.history[:, "train_loss"], rtol=1e-5)
    np.testing.assert_allclose(loader.predict(X).astype(float), sliced.predict(X).astype(float),
                               rtol=1e-4, atol=1e-5)
    # an iterator_train__ parameter other than batch size, shuffle, drop_last: DataLoader
    collated = []

    def collate(rows):
        collated.append(len(rows))
        return torch.utils.data.default_collate(rows)

    MultiTaskNet(iterator_train__collate_fn=collate, **kw).fit(X, Y)
    assert sum(collated) == 3 * 200


@pytest.mark.filterwarnings("ignore:You set iterator_valid__shuffle=True:UserWarning")
def test_iterator_valid_batch_size_and_drop_last(data):
    X, Y = data
    net = MultiTaskNet(max_epochs=1, batch_size=64, iterator_train__drop_last=True,
                       iterator_valid__batch_size=7, train_split=0.25,
                       random_state=0).fit(X, Y)
    assert net.history[-1, "train_batch_count"] == 150 // 64  # the short batch dropped
    assert net.history[-1, "valid_batch_count"] == 7  # 50 rows: 7 × 7, the last row merged
    with pytest.raises(ValueError, match="iterator_valid__shuffle must be False"):
        MultiTaskNet(max_epochs=1, iterator_valid__shuffle=True).fit(X, Y).predict(X)


def test_tensorboard_callback_receives_every_epoch_value(data):
    from skorch.callbacks import TensorBoard

    X, Y = data

    class Writer:  # the part of torch's SummaryWriter that skorch's callback uses
        def __init__(self):
            self.scalars = {}
            self.closed = False

        def add_scalar(self, tag, scalar_value, global_step=None):
            self.scalars.setdefault(tag, []).append((global_step, scalar_value))

        def close(self):
            self.closed = True

    writer = Writer()
    MultiTaskNet(max_epochs=3, train_split=0.25, random_state=0,
                 callbacks=[TensorBoard(writer)]).fit(X, Y)
    assert writer.closed
    tags = set(writer.scalars)
    assert {"Loss/train_loss", "Loss/valid_loss"} <= tags
    assert any(t.endswith("valid_acc_c") for t in tags) and any("weight_r" in t for t in tags)
    assert all(len(v) == 3 for v in writer.scalars.values())


def test_a_fitted_net_pickles_after_a_library_replaced_print(data, monkeypatch, capsys):
    # Ray's ray.init() replaces builtins.print; skorch's callbacks kept a reference to the
    # original, which then failed to pickle ("it's not the same object as builtins.print")
    import builtins
    import pickle

    from sklearn_mtml.callbacks import print_sink

    X, Y = data
    net = MultiTaskNet(max_epochs=2, verbose=1, random_state=0).fit(X, Y)
    original = builtins.print
    monkeypatch.setattr(builtins, "print", lambda *a, **k: original("[worker]", *a, **k))
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(restored.predict(X).astype(float), net.predict(X).astype(float))
    sinks = {name: cb.sink for name, cb in net.callbacks_ if hasattr(cb, "sink")}
    assert sinks and all(s is print_sink for s in sinks.values()), sinks
    net.set_params(max_epochs=1).fit(X, Y)  # the sink looks print up when it is called
    assert "[worker]" in capsys.readouterr().out
