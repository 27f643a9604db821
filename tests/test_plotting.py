"""Plots of fitted nets: history, modality weights, task attention, confusion matrices."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402

import sklearn_mtml  # noqa: E402
from sklearn_mtml import (  # noqa: E402
    ModalityBlocks,
    MultiTaskNet,
    plot_confusion_matrices,
    plot_history,
    plot_modality_weights,
    plot_task_attention,
)

TINY = {"max_epochs": 3, "random_state": 0}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(fig) -> bytes:
    """Render to PNG (catches drawing errors) and return the bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def _legend_below_axes(axis) -> bool:
    axis.figure.canvas.draw()
    legend = axis.get_legend()
    renderer = axis.figure.canvas.get_renderer()
    return legend.get_window_extent(renderer).y1 <= axis.get_window_extent(renderer).y0


@pytest.fixture(scope="module")
def nets():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4).astype(np.float32)
    Y = np.column_stack([(X[:, 0] > 0), X[:, 1] * 2]).astype(float)
    Y[::6, 0] = np.nan
    kw = {"tasks": {"cls": "binary", "reg": "regression"}, "max_epochs": 3,
          "random_state": 0, "module__hidden_sizes": (8,), "module__tower_sizes": ()}
    Ydf = pd.DataFrame(Y, columns=["cls", "reg"])
    plain = MultiTaskNet(weighting="dwa", **kw).fit(X, Ydf)
    valid = MultiTaskNet(train_split=0.25, **kw).fit(X, Ydf)
    return plain, valid


@pytest.fixture(scope="module")
def blocks():
    """Two blocks ("image" carries task a, "audio" task b); 20 rows lack the audio."""
    rng = np.random.RandomState(1)
    n = 120
    image, audio = rng.randn(n, 5), rng.randn(n, 3)
    Y = pd.DataFrame({"a": np.where(image[:, 0] > 0, "yes", "no"),
                      "b": (audio[:, 0] > 0).astype(int) + (audio[:, 1] > 0),
                      "r": image[:, 1] + audio[:, 2]})
    present = np.ones(n, dtype=bool)
    present[rng.permutation(n)[:20]] = False
    X = ModalityBlocks({"image": image, "audio": audio}, {"audio": present})
    return X, Y, present


@pytest.fixture(scope="module")
def attention_net(blocks):
    X, Y, _ = blocks
    return MultiTaskNet(fusion="attention", **TINY).fit(X, Y)


@pytest.fixture(scope="module")
def task_attention_net(blocks):
    X, Y, _ = blocks
    return MultiTaskNet(architecture="task_attention", **TINY).fit(X, Y)


# ----------------------------------------------------------------------------------------
# plot_history
# ----------------------------------------------------------------------------------------
def test_loss_and_weight_panels(nets):
    plain, _ = nets
    fig = plot_history(plain)  # DWA moves the weights: loss and weight panels
    assert [a.get_title() for a in fig.axes] == ["Per-task loss", "Task weights"]
    loss_ax, weight_ax = fig.axes
    labels = [line.get_label() for line in loss_ax.get_lines()]
    assert labels == ["cls (train)", "reg (train)"]
    np.testing.assert_allclose(loss_ax.get_lines()[0].get_ydata(),
                               plain.history[:, "train_loss_cls"])
    np.testing.assert_allclose(weight_ax.get_lines()[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(weight_ax.get_lines()[1].get_ydata(),
                               plain.history[:, "weight_reg"])
    _render(fig)


def test_default_panels_add_the_metric_with_a_validation_split(nets):
    _, valid = nets
    # fixed, equal weights: no weight panel; a validation split: a metric panel
    fig = plot_history(valid)
    assert [a.get_title() for a in fig.axes] == ["Per-task loss", "Validation metric"]
    metric_ax = fig.axes[1]
    lines = {line.get_label(): line for line in metric_ax.get_lines()}
    np.testing.assert_allclose(lines["mean (valid_score)"].get_ydata(),
                               valid.history[:, "valid_score"])
    assert metric_ax.get_ylabel() == "validation accuracy / R²"
    _render(fig)


def test_one_legend_per_panel_below_the_axes(nets):
    _, valid = nets
    fig = plot_history(valid, keys=("loss", "weight", "metric"))
    for axis in fig.axes:
        assert axis.get_legend() is not None
        assert _legend_below_axes(axis), axis.get_title()
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    # colours name the tasks, line styles train/validation, a grey line the best epoch
    # (laid out in rows: the tasks, then the line styles and the restored epoch)
    assert [t for t in texts if t] == ["cls", "train", "reg", "validation",
                                       f"best epoch ({valid.best_epoch_})"]
    weight_texts = [t.get_text() for t in fig.axes[1].texts]
    assert any("weigh the same" in t for t in weight_texts)


def test_validation_curves_and_metric_panel(nets):
    _, valid = nets
    fig, axes = plt.subplots(1, 3)
    out = plot_history(valid, keys=("loss", "metric", "weight"), ax=axes)
    assert out is fig
    labels = [line.get_label() for line in axes[0].get_lines()]
    assert "cls (valid)" in labels and "reg (valid)" in labels
    assert axes[0].get_lines()[1].get_linestyle() == "--"
    metric_labels = [line.get_label() for line in axes[1].get_lines()]
    assert metric_labels[:2] == ["cls (acc)", "reg (r2)"]
    np.testing.assert_allclose(axes[1].get_lines()[1].get_ydata(),
                               valid.history[:, "valid_r2_reg"])
    assert valid.best_epoch_ is not None
    best = [line for line in axes[0].get_lines() if line.get_label() == "best epoch"]
    assert best and best[0].get_xdata()[0] == valid.best_epoch_


def test_history_object_and_task_subset(nets):
    plain, _ = nets
    fig = plot_history(plain.history, keys="loss", tasks=["reg"])
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["reg (train)"]


def test_history_on_a_real_multi_block_net(attention_net):
    fig = plot_history(attention_net, keys=("loss", "weight"))
    assert len(fig.axes[0].get_lines()) == 3
    assert _render(fig)


def test_errors(nets):
    plain, _ = nets
    with pytest.raises(ValueError, match="Unknown history panels"):
        plot_history(plain, keys=("bogus",))
    with pytest.raises(ValueError, match="train_split"):
        plot_history(plain, keys=("metric",))
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="1 axes for 2 panels"):
        plot_history(plain, ax=ax)
    with pytest.raises(ValueError, match="fit it first"):
        plot_history(MultiTaskNet())


def test_missing_matplotlib_message(nets, attention_net, blocks, monkeypatch):
    plain, _ = nets
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sklearn-mtml\[plot\]"):
        plot_history(plain)
    with pytest.raises(ImportError, match=r"plot_modality_weights needs matplotlib"):
        plot_modality_weights(attention_net, blocks[0])


def test_exported():
    for name in ("plot_history", "plot_modality_weights", "plot_task_attention",
                 "plot_confusion_matrices"):
        assert name in sklearn_mtml.__all__
        assert getattr(sklearn_mtml, name).__doc__.count("Examples") == 1


# ----------------------------------------------------------------------------------------
# plot_modality_weights
# ----------------------------------------------------------------------------------------
def test_modality_weights_rows(attention_net, blocks):
    X, _, present = blocks
    weights = attention_net.modality_weights(X)
    fig = plot_modality_weights(attention_net, X, rows=[0, 1, 2, 3])
    ax = fig.axes[0]
    image_bars, audio_bars = ax.containers
    np.testing.assert_allclose([b.get_width() for b in image_bars], weights[:4, 0], rtol=1e-6)
    np.testing.assert_allclose([b.get_width() for b in audio_bars], weights[:4, 1], rtol=1e-6)
    np.testing.assert_allclose([b.get_x() for b in audio_bars], weights[:4, 0], rtol=1e-6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"row {i}" + ("" if present[i] else " (no audio)") for i in range(4)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["image", "audio"]
    assert _legend_below_axes(ax)
    _render(fig)


def test_modality_weights_default_rows_show_missing_ones(attention_net, blocks):
    X, _, present = blocks
    fig = plot_modality_weights(attention_net, X, n_rows=10)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 10
    assert sum("(no audio)" in s for s in labels) == 5
    missing_row = int(np.flatnonzero(~present)[0])
    assert f"row {missing_row} (no audio)" in labels
    # a row without audio gives the image all the weight
    image_bars = fig.axes[0].containers[0]
    widths = dict(zip(labels, (b.get_width() for b in image_bars)))
    assert widths[f"row {missing_row} (no audio)"] == pytest.approx(1.0)


def test_modality_weights_distribution(attention_net, blocks):
    X, _, present = blocks
    fig = plot_modality_weights(attention_net, X, kind="distribution")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [f"image + audio\n({int(present.sum())} rows)",
                      f"image\n({int((~present).sum())} rows)"]
    _render(fig)


def test_modality_weights_late_fusion_and_pipeline(blocks):
    X, Y, present = blocks
    dense = np.hstack([X.blocks["image"], np.where(present[:, None], X.blocks["audio"],
                                                   np.nan)])
    to_blocks = FunctionTransformer(lambda A: {"image": A[:, :5], "audio": A[:, 5:]})
    pipe = make_pipeline(to_blocks, MultiTaskNet(**TINY)).fit(dense, Y)  # late fusion
    fig = plot_modality_weights(pipe, dense, rows=np.flatnonzero(~present)[:3])
    assert "late fusion" in fig.axes[0].get_title()
    assert [b.get_width() for b in fig.axes[0].containers[0]] == pytest.approx([1, 1, 1])


def test_modality_weights_errors(nets, blocks, task_attention_net):
    X, Y, _ = blocks
    plain, _ = nets
    with pytest.raises(ValueError, match="several input blocks"):
        plot_modality_weights(plain, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="plot_task_attention"):
        plot_modality_weights(task_attention_net, X)
    concat = MultiTaskNet(fusion="concat", **TINY).fit(X, Y)
    with pytest.raises(ValueError, match="fusion='concat'"):
        plot_modality_weights(concat, X)
    with pytest.raises(NotFittedError, match="plot_modality_weights needs a fitted"):
        plot_modality_weights(MultiTaskNet(), X)
    with pytest.raises(TypeError, match="expects a fitted MultiTaskNet"):
        plot_modality_weights(LogisticRegression(), X)
    with pytest.raises(ValueError, match="Unknown kind"):
        plot_modality_weights(concat, X, kind="pie")
    with pytest.raises(ValueError, match="out of range"):
        plot_modality_weights(MultiTaskNet(fusion="gated", **TINY).fit(X, Y), X, rows=[500])


# ----------------------------------------------------------------------------------------
# plot_task_attention
# ----------------------------------------------------------------------------------------
def test_task_attention_heatmap(task_attention_net, blocks):
    X, _, present = blocks
    attention = task_attention_net.attention_weights(X)
    fig = plot_task_attention(task_attention_net, X)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), attention.mean(0), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["image", "audio"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "r"]
    assert len(ax.texts) == 6 and "mean over 120 rows" in ax.get_title()
    assert len(fig.axes) == 2  # the colour bar
    _render(fig)
    row = int(np.flatnonzero(~present)[0])
    fig, axes = plt.subplots(1, 2)
    plot_task_attention(task_attention_net, X, rows=row, ax=axes[0], colorbar=False)
    np.testing.assert_allclose(axes[0].images[0].get_array(), [[1, 0]] * 3, atol=1e-6)
    assert f"row {row}, no audio" in axes[0].get_title()
    plot_task_attention(task_attention_net, X, rows=present, ax=axes[1], annotate=False)
    np.testing.assert_allclose(axes[1].images[0].get_array(), attention[present].mean(0),
                               rtol=1e-6)
    assert not axes[1].texts


def test_task_attention_feature_groups_and_mmoe(blocks):
    X, Y, _ = blocks
    image = X.blocks["image"]
    groups = MultiTaskNet(architecture="task_attention", module__n_groups=4,
                          **TINY).fit(image, Y)
    fig = plot_task_attention(groups, image)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "group 0", "group 1", "group 2", "group 3"]
    mmoe = MultiTaskNet(architecture="mmoe", module__n_experts=3, **TINY).fit(image, Y)
    fig = plot_task_attention(mmoe, image)
    gates = fig.axes[0].images[0].get_array()
    assert gates.shape == (3, 3) and "MMoE gates" in fig.axes[0].get_title()
    np.testing.assert_allclose(gates.sum(1), 1.0, rtol=1e-5)
    _render(fig)


def test_task_attention_errors(nets, attention_net, blocks):
    plain, _ = nets
    with pytest.raises(ValueError, match="architecture='task_attention'.*'shared_bottom'"):
        plot_task_attention(plain, np.zeros((3, 4)))
    X, Y, _ = blocks
    late = MultiTaskNet(architecture="mmoe", **TINY).fit(X, Y)
    with pytest.raises(ValueError, match="fusion='late'"):
        plot_task_attention(late, X)
    with pytest.raises(NotFittedError, match="plot_task_attention"):
        plot_task_attention(MultiTaskNet(architecture="task_attention"), X)


# ----------------------------------------------------------------------------------------
# plot_confusion_matrices
# ----------------------------------------------------------------------------------------
def test_confusion_matrices(attention_net, blocks):
    X, Y, _ = blocks
    Y = Y.copy()
    Y.loc[:9, "a"] = None  # missing labels are skipped
    fig = plot_confusion_matrices(attention_net, X, Y)
    assert len(fig.axes) == 2  # a and b; r is a regression task
    pred = attention_net.predict(X)
    labelled = Y["a"].notna().to_numpy()
    expected = confusion_matrix(Y["a"][labelled].astype(str), pred[labelled, 0].astype(str),
                                labels=["no", "yes"])
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), expected)
    accuracy = np.mean(Y["a"][labelled].to_numpy() == pred[labelled, 0])
    assert fig.axes[0].get_title() == f"a: accuracy {accuracy:.3f}\n(110 labelled rows)"
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["0", "1", "2"]
    _render(fig)


def test_confusion_matrices_options(attention_net, blocks):
    X, Y, _ = blocks
    fig, axes = plt.subplots(1, 1)
    plot_confusion_matrices(attention_net, X, Y, tasks=["b"], normalize="true", ax=[axes])
    np.testing.assert_allclose(axes.images[0].get_array().sum(1), 1.0)
    fig = plot_confusion_matrices(attention_net, X, Y, n_cols=1, colorbar=True)
    assert len(fig.axes) == 4  # two matrices, two colour bars


def test_confusion_matrices_errors(nets, attention_net, blocks):
    X, Y, _ = blocks
    with pytest.raises(ValueError, match=r"not classification tasks.*\['a', 'b'\]"):
        plot_confusion_matrices(attention_net, X, Y, tasks=["r"])
    with pytest.raises(ValueError, match="fitted on"):
        plot_confusion_matrices(attention_net, X, Y[["a", "b"]])
    with pytest.raises(ValueError, match=r"1 axes for 2 tasks \[.a., .b.\]"):
        fig, ax = plt.subplots()
        plot_confusion_matrices(attention_net, X, Y, ax=ax)
    regression = MultiTaskNet(**TINY).fit(X, Y[["r"]])
    with pytest.raises(ValueError, match="at least one classification task"):
        plot_confusion_matrices(regression, X, Y[["r"]])
    with pytest.raises(NotFittedError, match="plot_confusion_matrices"):
        plot_confusion_matrices(MultiTaskNet(), X, Y)
