"""History plot helper."""

from __future__ import annotations

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sklearn_mtml import MultiTaskNet  # noqa: E402
from sklearn_mtml.plotting import plot_history  # noqa: E402


@pytest.fixture(scope="module")
def nets():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0), X[:, 1] * 2]).astype(float)
    Y[::6, 0] = np.nan
    kw = {"tasks": {"cls": "binary", "reg": "regression"}, "max_epochs": 3,
          "random_state": 0, "module__hidden_sizes": (8,), "module__tower_sizes": ()}
    import pandas as pd

    Ydf = pd.DataFrame(Y, columns=["cls", "reg"])
    plain = MultiTaskNet(weighting="dwa", **kw).fit(X, Ydf)
    valid = MultiTaskNet(train_split=0.25, **kw).fit(X, Ydf)
    return plain, valid


def test_loss_and_weight_panels(nets):
    plain, _ = nets
    fig = plot_history(plain)
    assert len(fig.axes) == 2
    loss_ax, weight_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert labels == ["cls (train)", "reg (train)"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(),
                               plain.history[:, "train_loss_cls"])
    np.testing.assert_allclose(weight_ax.get_lines()[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(weight_ax.get_lines()[1].get_ydata(),
                               plain.history[:, "weight_reg"])
    plt.close(fig)


def test_validation_curves_and_metric_panel(nets):
    _, valid = nets
    fig, axes = plt.subplots(1, 3)
    out = plot_history(valid, keys=("loss", "metric", "weight"), ax=axes)
    assert out is fig
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert "cls (valid)" in labels and "reg (valid)" in labels
    assert axes[0].get_lines()[1].get_linestyle() == "--"
    metric_labels = [line.get_label() for line in axes[1].get_lines()]
    assert metric_labels == ["cls (acc)", "reg (r2)"]
    np.testing.assert_allclose(axes[1].get_lines()[1].get_ydata(),
                               valid.history[:, "valid_r2_reg"])
    plt.close(fig)


def test_history_object_and_task_subset(nets):
    plain, _ = nets
    fig = plot_history(plain.history, keys="loss", tasks=["reg"])
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["reg (train)"]
    plt.close(fig)


def test_errors(nets):
    plain, _ = nets
    with pytest.raises(ValueError, match="Unknown history panels"):
        plot_history(plain, keys=("bogus",))
    with pytest.raises(ValueError, match="train_split"):
        plot_history(plain, keys=("metric",))
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="1 axes for 2 panels"):
        plot_history(plain, ax=ax)
    plt.close(fig)
    with pytest.raises(ValueError, match="fit it first"):
        plot_history(MultiTaskNet())


def test_missing_matplotlib_message(nets, monkeypatch):
    plain, _ = nets
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sklearn-mtml\[plot\]"):
        plot_history(plain)
