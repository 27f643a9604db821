"""Exact values of the mathematical core: tasks, weightings, metrics, blocks, fusion modules.

Each test pins numbers, computed by hand in a comment or by an independent reference
implementation written here, rather than a direction or a shape, so that a changed bound,
operator or constant in these modules fails a test (``python tools/mutate.py`` measures how
many such changes the tests catch; see docs/benchmarks.md). Everything here is tiny and
deterministic: no network is trained except one small pipeline, shared by a module fixture.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from torch import nn

from sklearn_mtml.blocks import ModalityBlocks, flat_feature_names
from sklearn_mtml.metrics import delta_p, task_scorer, task_scorers
from sklearn_mtml.nn.fusion import FUSIONS, AttentionFusion, ConcatFusion, GatedFusion
from sklearn_mtml.tasks import (
    TASK_KINDS,
    BinaryTask,
    MulticlassTask,
    RegressionTask,
    Task,
    TaskInferenceWarning,
    infer_task_kind,
    is_missing,
    make_task,
)
from sklearn_mtml.weighting import (
    DynamicWeightAverage,
    FixedWeighting,
    GradNorm,
    PCGrad,
    RandomLossWeighting,
    UncertaintyWeighting,
    Weighting,
    project_conflicting,
)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def torch_threads(request):
    """Run a torch test at one and at two intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


def _silent(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskInferenceWarning)
        return func(*args, **kwargs)


# ==============================================================================================
# tasks.py
# ==============================================================================================
def test_is_missing_on_real_pandas_na_nat_none_and_nan():
    values = np.array([1, pd.NA, 3, None, np.nan, pd.NaT, "a", np.float32("nan"), 0.0],
                      dtype=object)
    assert any(v is pd.NA for v in values)  # pandas 3 keeps pd.NA in an object array
    assert is_missing(values).tolist() == [False, True, False, True, True, True, False, True,
                                           False]
    # typed arrays: NaN in float and complex, never missing in int, bool or str
    assert is_missing(np.array([0.0, np.nan, np.inf])).tolist() == [False, True, False]
    assert is_missing(np.array([1 + 0j, complex(np.nan, 0)])).tolist() == [False, True]
    assert is_missing(np.array([0, 1])).tolist() == [False, False]
    assert is_missing(np.array([True, False])).tolist() == [False, False]
    assert is_missing(np.array(["", "a"])).tolist() == [False, False]
    # pandas nullable integers read through .to_numpy(dtype=object) keep pd.NA
    col = pd.array([1, None, 3], dtype="Int64").to_numpy(dtype=object)
    assert col[1] is pd.NA and is_missing(col).tolist() == [False, True, False]


def test_pandas_na_labels_are_masked_in_every_task_kind():
    labels = np.array(["b", pd.NA, "a", "b"], dtype=object)
    task = make_task("t", None, labels)
    assert isinstance(task, BinaryTask) and task.classes_.tolist() == ["a", "b"]
    target, mask = task.encode(labels)
    assert target.tolist() == [1.0, 0.0, 0.0, 1.0] and mask.tolist() == [True, False, True,
                                                                          True]
    values = np.array([1.5, pd.NA, 3.0, 4.5], dtype=object)
    assert _silent(infer_task_kind, values) == "regression"
    reg = make_task("r", None, values)
    # mean 3, population std sqrt(1.5)
    assert reg.mean_ == pytest.approx(3.0) and reg.scale_ == pytest.approx(math.sqrt(1.5))
    target, mask = reg.encode(values)
    np.testing.assert_allclose(target, [-1.5 / math.sqrt(1.5), 0.0, 0.0, 1.5 / math.sqrt(1.5)],
                               rtol=1e-6)
    assert mask.tolist() == [True, False, True, True]
    codes = np.array([0, pd.NA, 2, 1, 1, 0], dtype=object)
    multi = make_task("m", None, codes)
    assert isinstance(multi, MulticlassTask) and multi.classes_.tolist() == [0, 1, 2]
    assert multi.encode(codes)[0].tolist() == [0.0, 0.0, 2.0, 1.0, 1.0, 0.0]
    # scoring skips the pd.NA row: 4 right of 5 labelled (rows 0, 2, 4, 5; weights 1+2+4+5)
    y_pred = np.array([0, 2, 2, 0, 1, 0])
    assert multi.score(codes, y_pred) == pytest.approx(4 / 5)
    w = np.array([1.0, 100.0, 2.0, 3.0, 4.0, 5.0])
    assert multi.score(codes, y_pred, sample_weight=w) == pytest.approx((1 + 2 + 4 + 5) / 15)


def test_constant_regression_target():
    values = np.array([5.0, 5.0, 5.0, 5.0])
    assert _silent(infer_task_kind, values) == "binary"  # one value: a label, not a quantity
    with pytest.raises(ValueError, match="has 1 class in the labelled rows"):
        make_task("c", None, values)
    for loss in ("squared", "huber"):
        task = make_task("c", "regression", values, regression_loss=loss)
        # std (and IQR) 0: scale 1, so the encoded target is 0 rather than NaN
        assert (task.mean_, task.scale_, task.range_) == (5.0, 1.0, (5.0, 5.0))
        target, mask = task.encode(values)
        assert target.tolist() == [0.0] * 4 and mask.all()
        # predictions are held at the only value seen
        np.testing.assert_array_equal(task.decode(np.array([[-2.0], [3.0]])), [5.0, 5.0])
    free = make_task("c", "regression", values, regression_bounds=None)
    np.testing.assert_array_equal(free.decode(np.array([[-2.0], [3.0]])), [3.0, 8.0])
    assert free.score(values, values) == pytest.approx(r2_score(values, values))


def test_infinite_regression_targets_are_refused():
    for bad in (np.inf, -np.inf):
        values = np.array([1.0, bad, 2.5])
        assert _silent(infer_task_kind, values) == "regression"
        with pytest.raises(ValueError, match="regression targets contain inf"):
            make_task("r", None, values)
    task = make_task("r", "regression", np.array([1.0, 2.5]))
    with pytest.raises(ValueError, match="regression targets contain inf"):
        task.encode(np.array([1.0, np.inf, np.nan]))
    assert _silent(infer_task_kind, np.array([np.inf, 1.0, 2.0])) == "regression"
    assert _silent(infer_task_kind, np.array([], dtype=float)) == "regression"


def test_mixed_type_labels():
    mixed = np.array([1, "a", 2, "b"], dtype=object)
    assert _silent(infer_task_kind, mixed) == "multiclass"
    with pytest.raises(ValueError, match=r"labels of mixed, unorderable types \(\['int', "
                                         r"'str'\]\)"):
        make_task("m", None, mixed)
    pair = np.array(["a", 1.5, "a"], dtype=object)
    assert _silent(infer_task_kind, pair) == "binary"
    with pytest.raises(ValueError, match=r"mixed, unorderable types \(\['float', 'str'\]\)"):
        make_task("m", None, pair)
    # booleans mixed with ints are whole numbers; ints mixed with floats are numbers
    assert _silent(infer_task_kind, np.array([True, 0, 1, 1], dtype=object)) == "binary"
    assert _silent(infer_task_kind, np.array([1, 2.5, 3, 4], dtype=object)) == "regression"
    assert _silent(infer_task_kind, np.array([np.True_, False, None], dtype=object)) == "binary"
    assert _silent(infer_task_kind, np.array([True, False, True])) == "binary"
    # numpy and Python strings are one kind of label; numpy and Python ints too
    labels = np.array(["a", np.str_("b"), "c", "a"], dtype=object)
    task = make_task("s", None, labels)
    assert task.classes_.tolist() == ["a", "b", "c"]
    assert task.encode(labels)[0].tolist() == [0.0, 1.0, 2.0, 0.0]
    ints = np.array([np.int64(3), 1, 2, 3, 1, 2] * 3, dtype=object)
    task = make_task("i", None, ints)
    assert isinstance(task, MulticlassTask) and task.classes_.tolist() == [1, 2, 3]
    # Python ints beyond int64 are read as floats: three values from 1 stay classes (k <= 10)
    assert _silent(infer_task_kind, np.array([2**70, 1, 5], dtype=object)) == "multiclass"


def test_classes_keep_the_labels_type():
    # object columns of one plain type get that type's dtype; typed columns keep theirs
    assert make_task("s", None, np.array(["b", "a", None], dtype=object)).classes_.dtype.kind \
        == "U"
    assert make_task("i", None, np.array([2, 0, None, 1], dtype=object)).classes_.dtype.kind \
        == "i"
    assert make_task("i", None, np.array([0, 1, 2] * 5, dtype=np.int32)).classes_.dtype \
        == np.int32
    assert make_task("b", None, np.array([True, False])).classes_.dtype == bool
    mixed = make_task("m", "multiclass", np.array(["a", np.str_("b"), "c"], dtype=object))
    assert mixed.classes_.dtype == object  # two types: kept as objects


def test_object_labels_encode_against_typed_classes():
    task = make_task("t", "multiclass", np.array([10, 20, 30, 20]))
    assert task.classes_.dtype.kind == "i"
    target, mask = task.encode(np.array([30, None, 10], dtype=object))
    assert target.tolist() == [2.0, 0.0, 0.0] and mask.tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"labels \['40'\] were not seen"):
        task.encode(np.array([40], dtype=object))  # beyond the last class
    with pytest.raises(ValueError, match=r"labels \['5'\] were not seen"):
        task.encode(np.array([5, 10]))  # before the first class
    with pytest.raises(ValueError, match=r"labels \['25'\] were not seen"):
        task.encode(np.array([10, 25]))  # between two classes
    assert task.score(np.array([10, None, 30], dtype=object), np.array([10, 20, 20])) == 0.5
    with pytest.raises(ValueError, match=r"labels \['2.5'\] were not seen"):
        task.encode(np.array([10.0, 2.5]))  # never truncated to a class
    with pytest.raises(ValueError, match=r"labels \['20.5'\] were not seen"):
        task.encode(np.array([10, 20.5], dtype=object))  # nor in an object column
    assert task.encode(np.array([20.0, None], dtype=object))[0].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"labels \['a', 'b', 'c', 'd', 'e'\] were not seen"):
        task.encode(np.array(list("fedcba"), dtype=object))  # the first five are named
    with pytest.raises(ValueError, match=r"labels \['a'\] were not seen"):
        task.encode(np.array([20, "a", 10], dtype=object))  # not orderable with the classes
    words = make_task("w", None, np.array(["x", "y", "x"]))
    # a label of another type is an unseen label, not a TypeError from sorting
    with pytest.raises(ValueError, match=r"labels \['1'\] were not seen"):
        words.encode(np.array(["y", 1], dtype=object))
    assert words.encode(np.array(["y", None, "x"], dtype=object))[0].tolist() == [1.0, 0.0, 0.0]


def test_classification_outputs_and_losses():
    binary = BinaryTask("b").fit(np.array(["no", "yes", "no"]))
    assert binary.n_outputs == 1 and binary.metric_name == "acc" and binary.is_classification
    out = np.array([[0.0], [math.log(3.0)], [-math.log(3.0)]])
    np.testing.assert_allclose(binary.predict_proba(out),
                               [[0.5, 0.5], [0.25, 0.75], [0.75, 0.25]])
    assert binary.decode(out).tolist() == ["no", "yes", "no"]  # 0.5 goes to the first class
    loss = binary.loss(torch.tensor([[0.0], [math.log(3.0)]]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(loss, torch.tensor([math.log(2.0), math.log(4.0)]))
    with pytest.raises(ValueError, match="declared 'binary' but has 3 classes"):
        BinaryTask("b").fit(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="has 0 classes in the labelled rows"):
        BinaryTask("b").fit(np.array([None], dtype=object))

    multi = MulticlassTask("m").fit(np.array([2, 0, 1, 1]))
    assert multi.n_outputs == 3 and multi.classes_.tolist() == [0, 1, 2]
    z = np.array([[1000.0, 1001.0, 1002.0], [0.0, 0.0, 0.0]])  # large logits stay finite
    e = np.exp([-2.0, -1.0, 0.0])
    np.testing.assert_allclose(multi.predict_proba(z), [e / e.sum(), [1 / 3] * 3])
    assert multi.decode(z).tolist() == [2, 0]
    # logits 1000 apart: shifted by the row's maximum, exp never overflows
    np.testing.assert_allclose(multi.predict_proba(np.array([[0.0, 1000.0, -5.0]])),
                               [[0.0, 1.0, 0.0]], atol=1e-300)
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    # cross-entropy: log Σ exp(z) - z_target
    expected = [math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 1.0, math.log(3.0)]
    torch.testing.assert_close(multi.loss(logits, torch.tensor([0.0, 2.0])),
                               torch.tensor(expected))
    assert repr(multi) == "MulticlassTask('m')"
    assert TASK_KINDS == {"binary": BinaryTask, "multiclass": MulticlassTask,
                          "regression": RegressionTask}


def test_regression_standardisation_bounds_and_losses():
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0, np.nan])
    sq = make_task("r", "regression", values)
    present = values[:5]
    assert sq.mean_ == pytest.approx(present.mean())  # 21.2
    assert sq.scale_ == pytest.approx(present.std())
    assert sq.range_ == pytest.approx((0.0 - 25.0, 100.0 + 25.0))  # bounds 0.25 of the range
    assert (sq.kind, sq.metric_name, sq.n_outputs, sq.is_classification) == (
        "regression", "r2", 1, False)
    hub = make_task("r", "regression", values, regression_loss="huber", regression_bounds=0.5)
    # median 2, quartiles 1 and 3: scale IQR / 1.3489795
    assert hub.mean_ == 2.0 and hub.scale_ == pytest.approx(2.0 / 1.3489795)
    assert hub.range_ == pytest.approx((-50.0, 150.0))
    target, mask = hub.encode(np.array([2.0, 3.0, np.nan]))
    np.testing.assert_allclose(target, [0.0, 1.3489795 / 2.0, 0.0], rtol=1e-6)
    assert mask.tolist() == [True, True, False]
    np.testing.assert_allclose(hub.decode(np.array([[0.0], [1.0], [-1000.0], [1000.0]])),
                               [2.0, 2.0 + 2.0 / 1.3489795, -50.0, 150.0])
    # scales below 1 are kept (0 alone falls back): IQR 1 → 1/1.349, std 0.2, std 0.5
    small = make_task("s", "regression", np.array([0.0, 0.5, 1.0, 1.5, 100.0]),
                      regression_loss="huber")
    assert small.scale_ == pytest.approx(1.0 / 1.3489795)
    tight = make_task("t", "regression", np.array([0.0, 0.0, 0.0, 0.0, 0.5]),
                      regression_loss="huber")
    assert (tight.mean_, tight.scale_) == (0.0, pytest.approx(0.2))
    assert make_task("h", "regression", np.array([1.0, 2.0])).scale_ == pytest.approx(0.5)
    # IQR 0 but spread: the standard deviation is the scale
    spiky = make_task("s", "regression", np.array([0.0, 0.0, 0.0, 0.0, 10.0]),
                      regression_loss="huber")
    assert (spiky.mean_, spiky.scale_) == (0.0, pytest.approx(4.0))
    unbounded = make_task("u", "regression", values, regression_bounds=None)
    assert unbounded.range_ == (0.0, 100.0) and unbounded.bounds is None
    assert unbounded.decode(np.array([[100.0]]))[0] == pytest.approx(100 * sq.scale_ + 21.2)
    assert make_task("z", "regression", values, regression_bounds=0).range_ == (0.0, 100.0)
    out = torch.tensor([[0.5], [-3.0], [1.0]])
    target = torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(sq.loss(out, target), torch.tensor([0.25, 9.0, 0.0]))
    # Huber × 2: quadratic (d²) within 1, linear (2|d| - 1) beyond
    torch.testing.assert_close(hub.loss(out, target), torch.tensor([0.25, 5.0, 0.0]))
    assert (RegressionTask("r").bounds, RegressionTask("r").loss_name) == (0.25, "squared")
    for bad in (-0.1, np.inf, np.nan):
        with pytest.raises(ValueError, match="bounds must be None or a finite number >= 0"):
            RegressionTask("r", bounds=bad)
    with pytest.raises(ValueError, match="unknown regression loss 'l1'"):
        RegressionTask("r", loss="l1")
    with pytest.raises(ValueError, match="has no labelled rows"):
        RegressionTask("r").fit(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"not numeric \(found 'x'\)"):
        RegressionTask("r").fit(np.array([1.0, "x"], dtype=object))


def test_regression_score_is_weighted_r2_on_labelled_rows():
    task = make_task("r", "regression", np.array([1.0, 2.0, 4.0]))
    y_true = np.array([1.0, np.nan, 2.0, 4.0, 3.0])
    y_pred = np.array([1.5, 99.0, 2.0, 3.0, 3.5])
    w = np.array([1.0, 50.0, 2.0, 1.0, 3.0])
    keep = [0, 2, 3, 4]
    assert task.score(y_true, y_pred) == pytest.approx(r2_score(y_true[keep], y_pred[keep]))
    assert task.score(y_true, y_pred, sample_weight=w) == pytest.approx(
        r2_score(y_true[keep], y_pred[keep], sample_weight=w[keep]))
    assert task.score(y_true, y_pred, sample_weight=w) != pytest.approx(
        task.score(y_true, y_pred))


def test_make_task_routing_and_errors():
    values = np.array([1.0, 2.0, 3.5, np.nan])
    task = make_task("r", "regression", values, regression_loss="huber", regression_bounds=None)
    assert (task.loss_name, task.bounds) == ("huber", None)
    assert make_task("r", None, values).loss_name == "squared"
    assert make_task("r", None, values).bounds == 0.25
    with pytest.raises(ValueError, match=r"Unknown kind 'ordinal' for task 'r'; expected one "
                                         r"of \['binary', 'multiclass', 'regression'\]"):
        make_task("r", "ordinal", values)
    with pytest.raises(ValueError, match="Task 'e' has no labelled row: every target is missing"):
        make_task("e", "regression", np.array([None, pd.NA], dtype=object))
    one = make_task("one", "regression", np.array([np.nan, 2.0]))  # one labelled row is enough
    assert (one.mean_, one.scale_, one.range_) == (2.0, 1.0, (2.0, 2.0))
    base = Task("t")
    assert base.name == "t" and repr(base) == "Task('t')"
    for call in (lambda: base.fit(values), lambda: base.encode(values),
                 lambda: base.n_outputs, lambda: base.loss(None, None),
                 lambda: base.decode(values), lambda: base.score(values, values)):
        with pytest.raises(NotImplementedError):
            call()


@pytest.mark.parametrize(("values", "kind", "warns"), [
    # k <= 10: multiclass unless few rows, odd start and float all hold
    (np.array([31.0, 32.0, 33.0, 34.0, 35.0, 36.0]), "regression", True),
    (np.array([31, 32, 33, 34, 35, 36]), "multiclass", False),  # int: not stored as float
    (np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "multiclass", False),  # starts at 1
    (np.array([0.0, 2.0, 3.0, 4.0, 5.0, 6.0]), "multiclass", False),  # starts at 0
    (np.array([31.0, 32.0, 33.0, 34.0, 35.0, 36.0, np.nan]), "multiclass", False),  # NaN
    (np.tile(np.array([31.0, 32.0, 33.0]), 5), "multiclass", False),  # 5 rows per value
    (np.tile(np.array([31.0, 32.0, 33.0]), 4), "regression", True),  # 4 rows per value
    # k > 10: regression on any sign, multiclass without one
    (np.repeat(np.arange(11), 5), "multiclass", True),
    (np.repeat(np.arange(1, 12), 5), "multiclass", True),
    (np.repeat(np.arange(2, 13), 5), "regression", True),  # odd start
    (np.repeat(np.arange(11), 4), "regression", True),  # few rows
    (np.repeat(np.arange(11), 5).astype(float), "regression", True),  # float, no NaN
    (np.r_[np.repeat(np.arange(11), 5).astype(float), np.nan], "multiclass", True),
    (np.repeat(np.r_[np.arange(1, 11), 22], 5), "multiclass", True),  # 22 - 1 + 1 = 2k
    (np.repeat(np.r_[np.arange(1, 11), 23], 5), "regression", True),  # sparse
    # object columns of whole floats are stored floats too; other kinds are quantities
    (np.array([31.0, 32.0, 33.0, 34.0, 35.0, 36.0], dtype=object), "regression", True),
    (np.array([31.0, 32.0, 33.0, 34.0, 35.0, np.nan], dtype=object), "multiclass", False),
    (np.array([1 + 1j, 2 + 0j, 1 + 1j]), "regression", False),
    (np.array(["2020-01-01", "2021-06-01"], dtype="datetime64[D]"), "regression", False),
])
def test_inference_rule_boundaries(values, kind, warns):
    if warns:
        with pytest.warns(TaskInferenceWarning):
            assert infer_task_kind(values) == kind
    else:
        assert _silent(infer_task_kind, values) == kind


def test_inference_sparse_sign_boundary():
    # 11 values spanning max - min + 1 = 22 = 2k: not sparse; 23 > 2k: sparse
    dense = np.repeat(np.r_[np.arange(10), 21], 5)
    with pytest.warns(TaskInferenceWarning, match="inferred as 'multiclass'"):
        assert infer_task_kind(dense) == "multiclass"
    sparse = np.repeat(np.r_[np.arange(10), 22], 5)
    with pytest.warns(TaskInferenceWarning, match="the values are sparse"):
        assert infer_task_kind(sparse) == "regression"


def test_warnings_point_at_the_callers_line():
    with pytest.warns(TaskInferenceWarning) as record:
        infer_task_kind(np.arange(40, 75, 3).astype(float))
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="no shared layer") as record:
        GradNorm([1.0, 1.0], ["binary"] * 2).backward(
            torch.ones(2, requires_grad=True), torch.tensor([True, True]), nn.Module())
    assert record[0].filename == __file__


def test_inference_warning_text_names_every_reason():
    values = np.arange(40, 75, 3).astype(float)  # 12 values in 12 rows, float, 34 > 2k wide
    with pytest.warns(TaskInferenceWarning) as record:
        assert infer_task_kind(values, name="age") == "regression"
    msg = str(record[0].message)
    assert msg.startswith("Task 'age' has 12 distinct integer values (40 to 73) in 12 "
                          "labelled rows and was inferred as 'regression' (fewer than 5 rows "
                          "per value; the smallest value is 40, not 0 or 1; the values are "
                          "sparse; the column is float)")
    assert 'tasks={"age": "multiclass"}' in msg and "made of class labels" in msg
    with pytest.warns(TaskInferenceWarning) as record:
        infer_task_kind(np.repeat(np.arange(11), 5))
    msg = str(record[0].message)
    assert msg.startswith("The target column has 11 distinct integer values (0 to 10) in 55")
    assert "'multiclass' (they look like class codes" in msg and "class labels" not in msg
    assert 'tasks={"<name>": "regression"}' in msg and "If it is a quantity" in msg


# ==============================================================================================
# weighting.py
# ==============================================================================================
class _Controlled(nn.Module):
    """A shared layer ``W`` (1x1, value 1) and losses ``L_t = s_t W + c_t``.

    So ``L_t = s_t + c_t`` and ``‖∇_W L_t‖ = |s_t|``: losses and gradient norms are set
    independently.
    """

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.layer.weight.fill_(1.0)

    def losses(self, s, c):
        w = self.layer.weight[0, 0]
        return torch.stack([si * w + ci for si, ci in zip(s, c)])

    def last_shared_layer(self):
        return self.layer


def _gradnorm_reference(steps, base, alpha, lr):
    """GradNorm's weights after each step, written out in plain Python from the paper."""
    t_count = len(base)
    w = [1.0] * t_count
    l0 = [None] * t_count
    m, v, k = [0.0] * t_count, [0.0] * t_count, [0] * t_count
    history = []
    for s, c, present in steps:
        losses = [si + ci for si, ci in zip(s, c)]
        for t in range(t_count):
            if present[t] and l0[t] is None:
                l0[t] = losses[t]
        on = [t for t in range(t_count) if present[t]]
        if len(on) >= 2:
            g_norm = {t: base[t] * w[t] * abs(s[t]) for t in on}
            ratio = {t: losses[t] / l0[t] for t in on}
            mean_ratio = sum(ratio.values()) / len(on)
            g_bar = sum(g_norm.values()) / len(on)
            grad = {}
            for t in on:
                target = g_bar * (ratio[t] / mean_ratio) ** alpha
                sign = math.copysign(1.0, g_norm[t] - target) if g_norm[t] != target else 0.0
                grad[t] = sign * base[t] * abs(s[t])
            new = list(w)
            for t in on:
                k[t] += 1
                m[t] = 0.9 * m[t] + 0.1 * grad[t]
                v[t] = 0.999 * v[t] + 0.001 * grad[t] ** 2
                m_hat = m[t] / (1 - 0.9 ** k[t])
                v_hat = v[t] / (1 - 0.999 ** k[t])
                new[t] = max(w[t] - lr * m_hat / (math.sqrt(v_hat) + 1e-8), 1e-3)
            total = sum(new)
            w = [x * t_count / total for x in new]
        history.append(list(w))
    return history


def test_gradnorm_adam_steps_match_a_reference(torch_threads):
    # gradient magnitudes change from step to step (|s_t| moves), so the second moment, the
    # bias corrections and the per-task step counters all show in the weights; task 2 is
    # absent in the first two steps (its counter starts later) and task 0 in the fourth
    steps = [
        ([2.0, 1.0, 0.5], [1.0, 1.0, 1.0], [True, True, False]),
        ([1.0, 3.0, 0.5], [0.5, 1.0, 1.0], [True, True, False]),
        ([0.5, 2.0, 1.5], [0.2, 0.3, 2.0], [True, True, True]),
        ([3.0, 0.5, 2.5], [0.1, 0.1, 0.5], [False, True, True]),
        ([1.5, 1.0, 0.2], [0.3, 0.2, 0.1], [True, True, True]),
        ([0.7, 4.0, 1.0], [0.1, 0.4, 0.2], [True, True, True]),
    ]
    base = [1.0, 2.0, 0.5]
    expected = _gradnorm_reference(steps, base, alpha=1.5, lr=0.1)
    model = _Controlled()
    gn = GradNorm(base, ["binary", "multiclass", "regression"], alpha=1.5, lr_weights=0.1)
    for (s, c, present), w_ref in zip(steps, expected):
        model.zero_grad()
        losses = model.losses(s, c) * torch.tensor(present, dtype=torch.float32)
        before = gn.task_weights().clone()
        out = gn.backward(losses, torch.tensor(present), model)
        # the network is trained on Σ b_t w_t L_t with the weights before this step's update
        assert out.item() == pytest.approx((before * losses.detach()).sum().item(), rel=1e-6)
        assert model.layer.weight.grad.item() == pytest.approx(
            (before * torch.tensor(s) * torch.tensor(present, dtype=torch.float32)).sum().item(),
            rel=1e-6)
        np.testing.assert_allclose(gn.weights.numpy(), w_ref, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(gn.task_weights(), torch.tensor(base) * gn.weights)
    assert gn._steps.tolist() == [5.0, 6.0, 4.0]
    assert gn.initial_losses.tolist() == pytest.approx([3.0, 2.0, 3.5])
    # by hand, two steps of one task with gradients 2 then 1: m̂ = 0.28 / 0.19,
    # v̂ = 0.004996 / 0.001999, step = lr · m̂ / (√v̂ + ε) = 0.93218 lr
    m_hat, v_hat = 0.28 / 0.19, 0.004996 / 0.001999
    assert m_hat / math.sqrt(v_hat) == pytest.approx(0.93218, abs=1e-5)


def test_gradnorm_first_steps_by_hand():
    model = _Controlled()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.0, lr_weights=0.1)
    both = torch.tensor([True, True])
    gn.backward(model.losses([2.0, 1.0], [1.0, 1.0]), both, model)  # L(0) = (3, 2)
    # first step: rates 1, targets Ḡ = 1.5, G = (2, 1): grads (+2, -1) → Adam's first step
    # is ±lr: w = (0.9, 1.1), already summing to 2
    torch.testing.assert_close(gn.weights, torch.tensor([0.9, 1.1]))
    gn.backward(model.losses([2.0, 1.0], [-1.5, 1.0]), both, model)  # L = (0.5, 2)
    # ratios (1/6, 1), mean 7/12, rates (2/7, 12/7); G = (1.8, 1.1), Ḡ = 1.45,
    # targets (0.414, 2.486): grads (+2, -1) again → m̂ = (2, -1), v̂ = (4, 1): ±lr again
    torch.testing.assert_close(gn.weights, torch.tensor([0.8, 1.2]))


def test_gradnorm_rates_with_initial_losses_below_one():
    # L(0) = (0.5, 2) then L = (0.4, 1.5): ratios (0.8, 0.75), rates (1.032, 0.968); G = (1, 1)
    # = Ḡ, so task 0 is under its target (grad -1) and task 1 over it (grad +1). Adam's second
    # step after a zero first gradient: m̂ = 0.1 g / 0.19, v̂ = 0.001 g² / 0.001999,
    # step = lr · 0.744137 sign(g)
    model = _Controlled()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.0, lr_weights=0.1)
    both = torch.tensor([True, True])
    gn.backward(model.losses([1.0, 1.0], [-0.5, 1.0]), both, model)
    torch.testing.assert_close(gn.weights, torch.ones(2))  # equal rates and norms: no move
    gn.backward(model.losses([1.0, 1.0], [-0.6, 0.5]), both, model)
    step = 0.1 * (0.1 / 0.19) / math.sqrt(0.001 / 0.001999)
    assert step == pytest.approx(0.0744137, abs=1e-6)
    torch.testing.assert_close(gn.weights, torch.tensor([1.0 + step, 1.0 - step]))


def test_gradnorm_adam_epsilon_matters_for_tiny_gradients():
    # gradient norms (1e-8, 1): Ḡ ≈ 0.5, so the gradients are (-1e-8, +1); Adam's first step
    # is lr · g / (|g| + ε): half a step for the tiny gradient, a full one for the other
    model = _Controlled()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.0, lr_weights=0.1)
    gn.backward(model.losses([1e-8, 1.0], [1.0, 1.0]), torch.tensor([True, True]), model)
    torch.testing.assert_close(gn.weights, torch.tensor([1.05, 0.9]) * 2 / 1.95)


def test_gradnorm_clips_small_weights_and_renormalises():
    model = _Controlled()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=0.0, lr_weights=5.0)
    both = torch.tensor([True, True])
    gn.backward(model.losses([4.0, 1.0], [0.0, 0.0]), both, model)
    # step ±5 → (1 - 5, 1 + 5) → clipped (1e-3, 6) → renormalised to sum 2
    torch.testing.assert_close(gn.weights, torch.tensor([1e-3, 6.0]) * 2 / 6.001)


def test_gradnorm_single_present_task_keeps_weights_and_unused_layers_count_zero():
    model = _Controlled()
    gn = GradNorm([1.0, 1.0], ["regression"] * 2)
    gn.backward(model.losses([2.0, 1.0], [1.0, 1.0]), torch.tensor([True, False]), model)
    torch.testing.assert_close(gn.weights, torch.ones(2))
    assert gn._steps.tolist() == [0.0, 0.0]
    assert gn.initial_losses[0] == 3.0 and torch.isnan(gn.initial_losses[1])
    # a task whose loss does not reach the shared layer has gradient norm 0
    free = nn.Parameter(torch.tensor(2.0))
    losses = torch.stack([model.losses([2.0], [1.0])[0], free * 1.5])
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.0, lr_weights=0.1)
    gn.backward(losses, torch.tensor([True, True]), model)
    # L(0) = (3, 3), rates 1; G = (2, 0), Ḡ = 1: grads (+2, -0): w0 down by lr, w1 still
    torch.testing.assert_close(gn.weights, torch.tensor([0.9, 1.0]) * 2 / 1.9)
    assert free.grad.item() == pytest.approx(1.5)
    # a parameter of the shared layer that no loss uses (here a bias) has no gradient at all
    with_bias = _Controlled()
    with_bias.layer.bias = nn.Parameter(torch.zeros(1))  # never used by the losses
    gn = GradNorm([1.0, 1.0], ["regression"] * 2, alpha=1.0, lr_weights=0.1)
    both = torch.tensor([True, True])
    gn.backward(with_bias.losses([2.0, 1.0], [1.0, 1.0]), both, with_bias)
    torch.testing.assert_close(gn.weights, torch.tensor([0.9, 1.1]))  # as without the bias


def test_gradnorm_defaults_validation_and_models_without_shared_layer():
    gn = GradNorm([1.0, 1.0], ["binary", "regression"])
    assert (gn.alpha, gn.lr_weights) == (1.5, 0.025)
    assert GradNorm([1.0, 1.0], ["binary"] * 2, alpha=0.0).alpha == 0.0
    with pytest.raises(ValueError, match="lr_weights must be positive, got 0"):
        GradNorm([1.0, 1.0], ["binary"] * 2, lr_weights=0)
    with pytest.raises(ValueError, match="alpha must be non-negative"):
        GradNorm([1.0, 1.0], ["binary"] * 2, alpha=-0.1)
    assert gn.weights.tolist() == [1.0, 1.0] and torch.isnan(gn.initial_losses).all()

    class _Plain(nn.Module):  # no last_shared_layer() at all
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.tensor([1.0, 2.0]))

    plain = _Plain()
    with pytest.warns(UserWarning, match="GradNorm: the model has no shared layer"):
        out = gn.backward(plain.p * torch.tensor([3.0, 1.0]), torch.tensor([True, True]), plain)
    assert out.item() == pytest.approx(3.0 + 2.0) and not out.requires_grad
    torch.testing.assert_close(plain.p.grad, torch.tensor([3.0, 1.0]))


def test_fixed_uncertainty_dwa_rlw_values():
    losses = torch.tensor([2.0, 0.5, 4.0], requires_grad=True)
    present = torch.tensor([True, True, True])
    fixed = FixedWeighting([1.0, 2.0, 0.25], ["binary", "multiclass", "regression"])
    assert isinstance(fixed, Weighting) and fixed.n_tasks == 3
    out = fixed.backward(losses, present, nn.Module())
    assert out.item() == pytest.approx(2.0 + 1.0 + 1.0) and not out.requires_grad
    torch.testing.assert_close(losses.grad, torch.tensor([1.0, 2.0, 0.25]))
    fixed.epoch_end(torch.tensor([1.0, 1.0, 1.0]))  # no-op
    torch.testing.assert_close(fixed.task_weights(), torch.tensor([1.0, 2.0, 0.25]))
    assert fixed.base_weights.dtype == torch.float32
    assert FixedWeighting([1, 2], ["binary"] * 2).base_weights.dtype == torch.float32

    unc = UncertaintyWeighting([1.0, 2.0, 1.0], ["regression", "binary", "multiclass"])
    torch.testing.assert_close(unc.log_vars.detach(), torch.zeros(3))
    torch.testing.assert_close(unc.task_weights(), torch.tensor([0.5, 2.0, 1.0]))
    assert unc.factors.dtype == torch.float32
    unc = UncertaintyWeighting([1.0], ["regression"], init_log_var=math.log(2.0))
    assert unc.task_weights().item() == pytest.approx(0.25)
    # objective 0.5 e^{-s} L + s/2 at s = log 2, L = 3: 0.75 + log(2)/2; absent: 0
    assert unc.combine(torch.tensor([3.0]), torch.tensor([True])).item() == pytest.approx(
        0.75 + math.log(2.0) / 2)
    assert unc.combine(torch.tensor([3.0]), torch.tensor([False])).item() == 0.0

    dwa = DynamicWeightAverage([1.0, 1.0], ["binary"] * 2)
    assert dwa.temperature == 2.0 and dwa.n_epochs.dtype == torch.long
    dwa.epoch_end([0.0, 1.0])  # a zero loss in the denominator is clamped, not divided by
    dwa.epoch_end([1.0, 1.0])
    assert int(dwa.n_epochs) == 2
    ratio = torch.tensor([1e12, 1.0])
    torch.testing.assert_close(dwa.task_weights(), 2 * torch.softmax(ratio / 2.0, dim=0))
    assert torch.isfinite(dwa.task_weights()).all()
    dwa64 = DynamicWeightAverage([1.0, 1.0], ["binary"] * 2, temperature=0.5)
    dwa64.epoch_end(np.array([2.0, 4.0]))  # numpy float64 in, stored as the buffer's float32
    dwa64.epoch_end(np.array([1.0, 4.0]))
    r = torch.tensor([0.5, 1.0])
    torch.testing.assert_close(dwa64.task_weights(), 2 * torch.softmax(r / 0.5, dim=0))
    assert dwa64.loss_history.dtype == torch.float32

    torch.manual_seed(3)
    z = torch.randn(3)
    rlw = RandomLossWeighting([1.0, 2.0, 1.0], ["binary"] * 3)
    torch.manual_seed(3)
    out = rlw.combine(torch.tensor([1.0, 1.0, 2.0]), present)
    lam = 3 * torch.softmax(z, dim=0)
    torch.testing.assert_close(rlw.lambdas, lam)
    assert out.item() == pytest.approx((torch.tensor([1.0, 2.0, 2.0]) * lam).sum().item(),
                                       rel=1e-6)
    rlw.eval()  # in evaluation the weights are not redrawn
    rlw.combine(torch.tensor([1.0, 1.0, 2.0]), present)
    torch.testing.assert_close(rlw.lambdas, lam)


def _pcgrad_reference(grads, generator):
    """PCGrad's projection in plain Python, drawing the same task orders."""
    rows = [list(map(float, g)) for g in grads.tolist()]
    out = [list(r) for r in rows]
    n = len(rows)
    for i in range(n):
        order = torch.randperm(n, generator=generator).tolist()
        for j in order:
            norm = sum(x * x for x in rows[j])
            if j == i or norm == 0.0:
                continue
            dot = sum(a * b for a, b in zip(out[i], rows[j]))
            if dot < 0:
                out[i] = [a - dot / norm * b for a, b in zip(out[i], rows[j])]
    return out


def test_pcgrad_projection_matches_a_reference_on_random_gradients(torch_threads):
    rng = np.random.RandomState(0)
    for seed in range(25):
        grads = torch.tensor(rng.randn(5, 3), dtype=torch.float64)
        grads[seed % 5] = 0.0 if seed % 7 == 0 else grads[seed % 5]  # sometimes a zero task
        out = project_conflicting(grads, torch.Generator().manual_seed(seed))
        ref = _pcgrad_reference(grads, torch.Generator().manual_seed(seed))
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-9, atol=1e-12)
    # g0 projected on g1's then g2's normal plane points against g0 itself: a task is never
    # projected against its own gradient, whatever the order
    g = torch.tensor([[1.0, 0.0], [-1.0, 0.1], [-1.0, -1.0]], dtype=torch.float64)
    orders = set()
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        orders.add(tuple(torch.randperm(3, generator=torch.Generator().manual_seed(seed))
                         .tolist()))
        out = project_conflicting(g, gen)
        ref = _pcgrad_reference(g, torch.Generator().manual_seed(seed))
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-9, atol=1e-12)
    assert (1, 2, 0) in orders
    # a positive dot product below 1 is no conflict
    g = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    torch.testing.assert_close(project_conflicting(g), g)


def test_pcgrad_with_two_shared_parameters_and_accumulated_gradients():
    class _TwoShared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.zeros(2))
            self.b = nn.Parameter(torch.zeros(1))
            self.head = nn.Parameter(torch.tensor(1.0))
            self.unused = nn.Parameter(torch.zeros(2))  # shared, but in no loss

        def shared_parameters(self):
            return iter([self.a, self.unused, self.b])

    model = _TwoShared()
    # L_0 = a·(1, 0) + 2 b, L_1 = a·(-1, 1) + 0 b + head²: flattened (a, b) gradients
    # g0 = (1, 0, 2), g1 = (-1, 1, 0): g0·g1 = -1 → g0' = g0 + ½ g1 = (0.5, 0.5, 2);
    # g1' = g1 + 1/5 g0 = (-0.8, 1, 0.4); total (-0.3, 1.5, 2.4)
    losses = torch.stack([model.a @ torch.tensor([1.0, 0.0]) + 2 * model.b[0],
                          model.a @ torch.tensor([-1.0, 1.0]) + model.head ** 2])
    model.b.grad = torch.tensor([10.0])  # an earlier gradient is added to, not replaced
    pc = PCGrad([1.0, 1.0], ["regression"] * 2)
    out = pc.backward(losses, torch.tensor([True, True]), model)
    torch.testing.assert_close(model.a.grad, torch.tensor([-0.3, 1.5]))
    torch.testing.assert_close(model.b.grad, torch.tensor([12.4]))
    torch.testing.assert_close(model.head.grad, torch.tensor(2.0))
    torch.testing.assert_close(model.unused.grad, torch.zeros(2))
    assert out.item() == pytest.approx(1.0) and not out.requires_grad
    # fewer than two tasks present: the plain gradient, and the objective is still returned
    def fresh_losses():
        return torch.stack([model.a @ torch.tensor([1.0, 0.0]) + 2 * model.b[0],
                            model.a @ torch.tensor([-1.0, 1.0]) + model.head ** 2])

    model.zero_grad()
    out = pc.backward(fresh_losses() * torch.tensor([1.0, 0.0]), torch.tensor([True, False]),
                      model)
    assert out.item() == pytest.approx(0.0) and not out.requires_grad
    torch.testing.assert_close(model.a.grad, torch.tensor([1.0, 0.0]))
    model.zero_grad()
    out = pc.backward(fresh_losses() * 0.0, torch.tensor([False, False]), model)
    assert out.item() == 0.0
    torch.testing.assert_close(model.a.grad, torch.zeros(2))

    class _NoShared(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([1.0, 2.0]))

        def shared_parameters(self):
            return iter([])

    plain = _NoShared()
    out = pc.backward(plain.w * torch.tensor([3.0, -1.0]), torch.tensor([True, True]), plain)
    assert out.item() == pytest.approx(1.0)
    torch.testing.assert_close(plain.w.grad, torch.tensor([3.0, -1.0]))


# ==============================================================================================
# metrics.py
# ==============================================================================================
def test_delta_p_values():
    # three tasks: +12.5 %, -(2.0 - 2.5)/2.5 = +20 %, (-0.2 + 0.5)/0.5 = +60 % → 30.8333 %
    assert delta_p([0.9, 2.0, -0.2], [0.8, 2.5, -0.5], [True, False, True]) == pytest.approx(
        (12.5 + 20.0 + 60.0) / 3)
    assert delta_p(np.array([0.9, 2.0]), (0.8, 2.5), np.True_) == pytest.approx(
        (12.5 - 20.0) / 2)
    assert delta_p([0.9, 2.0], [0.8, 2.5], np.False_) == pytest.approx((-12.5 + 20.0) / 2)
    assert delta_p({"a": 3.0}, {"a": 2.0, "b": 1.0}) == pytest.approx(50.0)  # extra ignored
    assert delta_p({"a": 3.0, "b": 1.0}, {"b": 2.0, "a": 2.0},
                   {"b": False, "a": True}) == pytest.approx((50.0 + 50.0) / 2)
    assert delta_p([[0.9], [2.0]], [[0.8], [2.5]], [True, False]) == pytest.approx(16.25)


def test_delta_p_with_one_nan_among_several_tasks():
    for scores, baseline in [([0.9, np.nan, 2.0], [0.8, 0.5, 2.5]),
                             ([0.9, 0.5, 2.0], [0.8, np.nan, 2.5]),
                             ([0.9, 0.5, np.inf], [0.8, 0.5, 2.5])]:
        with pytest.raises(ValueError, match="scores and baseline must be finite"):
            delta_p(scores, baseline)
    with pytest.raises(ValueError, match="must be finite"):
        delta_p({"a": 0.9, "b": np.nan}, {"a": 0.8, "b": 0.5})


def test_delta_p_errors_name_the_tasks():
    with pytest.raises(ValueError, match=r"baseline score is 0 for tasks \['b'\]"):
        delta_p({"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 0.0})
    with pytest.raises(ValueError, match=r"baseline score is 0 for tasks \[0, 2\]"):
        delta_p([1.0, 1.0, 1.0], [0.0, 2.0, 0.0])
    with pytest.raises(ValueError, match=r"higher_is_better has no entry for tasks \['b'\]"):
        delta_p({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0}, {"a": True})
    with pytest.raises(TypeError, match="higher_is_better is a dict: pass scores as a dict"):
        delta_p([1.0], [1.0], {"a": True})
    with pytest.raises(TypeError, match="baseline is a dict but scores is not"):
        delta_p([1.0], {"a": 1.0})
    with pytest.raises(ValueError, match="delta_p needs at least one task"):
        delta_p([], [])
    with pytest.raises(ValueError, match="scores must hold numbers"):
        delta_p(["x"], [1.0])
    with pytest.raises(ValueError, match="baseline has no score for tasks"):
        delta_p({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match="higher_is_better has 3 entries for 2 tasks"):
        delta_p([1.0, 1.0], [1.0, 1.0], [True, True, False])


class _ScoresSum(BaseEstimator):
    """A stand-in final step: its 'score' of a task is a known function of X."""

    def fit(self, X, y=None):
        return self

    def score_tasks(self, X, y):
        X = np.asarray(X, dtype=float)
        return {"first": float(X[:, 0].sum()), "all": float(X.sum()), "gap": float("nan")}


def test_scorers_through_a_three_step_pipeline_with_passthrough():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    pipe = Pipeline([("plus", FunctionTransformer(lambda a: a + 1.0)),
                     ("skip", "passthrough"),
                     ("swap", FunctionTransformer(lambda a: a[:, ::-1] * 10.0)),
                     ("none", None),
                     ("final", _ScoresSum())]).fit(X)
    # X + 1 = [[2, 3], [4, 5]], reversed × 10 = [[30, 20], [50, 40]]
    assert task_scorer("first")(pipe, X, None) == 80.0
    assert task_scorer("all")(pipe, X, None) == 140.0
    scoring = task_scorers(["first", "all"])
    assert list(scoring) == ["first", "all", "mean"]
    assert scoring["mean"](pipe, X, None) == pytest.approx((80.0 + 140.0) / 2)  # NaN skipped
    assert list(task_scorers(["first"], mean=False)) == ["first"]
    assert task_scorer("all").__name__ == "task_scorer_all"
    assert task_scorer("all").__qualname__ == "task_scorer_all"
    direct = _ScoresSum()
    assert task_scorer("first")(direct, X, None) == 4.0
    with pytest.raises(ValueError, match=r"Unknown task 'x'; the model's tasks are "
                                         r"\['first', 'all', 'gap'\]"):
        task_scorer("x")(direct, X, None)
    with pytest.raises(TypeError, match="task must be a task name"):
        task_scorer(0)
    with pytest.raises(TypeError, match="Pipeline has no score_tasks"):
        task_scorer("first")(Pipeline([("s", StandardScaler())]).fit(X), X, None)


@pytest.fixture(scope="module")
def three_step_pipeline():
    """A fitted scaler → column reversal → MultiTaskNet pipeline and its data."""
    from sklearn_mtml import MultiTaskNet

    rng = np.random.RandomState(0)
    X = rng.randn(80, 4).astype(np.float32)
    Y = pd.DataFrame({"cls": (X[:, 0] > 0).astype(int), "reg": 2.0 * X[:, 1] + X[:, 3]})
    net = MultiTaskNet(tasks={"cls": "binary", "reg": "regression"}, max_epochs=2,
                       random_state=0, module__hidden_sizes=(8,), module__tower_sizes=())
    pipe = Pipeline([("scale", StandardScaler()),
                     ("reverse", FunctionTransformer(lambda a: a[:, ::-1].copy())),
                     ("net", net)]).fit(X, Y)
    return pipe, X, Y


def test_scorers_on_a_fitted_three_step_pipeline(three_step_pipeline):
    pipe, X, Y = three_step_pipeline
    Xt = pipe[1].transform(pipe[0].transform(X))
    expected = pipe[-1].score_tasks(Xt, Y)
    for task in ("cls", "reg"):
        assert task_scorer(task)(pipe, X, Y) == pytest.approx(expected[task])
    assert task_scorers(["cls", "reg"])["mean"](pipe, X, Y) == pytest.approx(
        (expected["cls"] + expected["reg"]) / 2)
    # skipping the reversal gives other scores: the scorer really applies every step
    assert pipe[-1].score_tasks(pipe[0].transform(X), Y)["reg"] != pytest.approx(
        expected["reg"])


# ==============================================================================================
# blocks.py
# ==============================================================================================
def test_sparse_blocks_with_partial_masks():
    dense = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [4.0, 0.0, 5.0], [0.0, 0.0, 6.0]])
    tab = np.array([[1, 2], [3, 4], [5, 6], [7, 8]])
    Xb = ModalityBlocks({"text": sp.csc_matrix(dense), "tab": tab},
                        masks={"text": [True, False, True, False], "tab": [1, 1, 0, 1]})
    assert Xb.blocks["text"].format == "csr"
    kept = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [4.0, 0.0, 5.0], [0.0, 0.0, 0.0]])
    tab_kept = np.array([[1, 2], [3, 4], [0, 0], [7, 8]])
    M = Xb.concat()
    assert sp.issparse(M) and M.format == "csr" and M.dtype == np.float32
    np.testing.assert_array_equal(M.toarray(), np.hstack([kept, tab_kept]))
    D = Xb.concat(sparse=False, dtype=np.float64)
    assert isinstance(D, np.ndarray) and D.dtype == np.float64
    np.testing.assert_array_equal(D, np.hstack([kept, tab_kept]))
    N = Xb.concat(absent=np.nan)
    assert isinstance(N, np.ndarray)
    expected = np.hstack([kept, tab_kept]).astype(np.float32)
    expected[[1, 3], :3] = np.nan
    expected[2, 3:] = np.nan
    np.testing.assert_array_equal(N, expected)
    ones = Xb.concat(absent=1.0)
    assert ones[1, :3].tolist() == [1.0] * 3 and ones[2, 3:].tolist() == [1.0, 1.0]
    minus = Xb.concat(absent=-1.0)
    assert minus[1, :3].tolist() == [-1.0] * 3 and minus[2, 3:].tolist() == [-1.0, -1.0]
    assert minus[0].tolist() == [1.0, 0.0, 2.0, 1.0, 2.0]
    # the stored blocks are untouched by masking
    np.testing.assert_array_equal(Xb.blocks["text"].toarray(), dense)
    np.testing.assert_array_equal(Xb.blocks["tab"], tab)
    # to_dict fills absent rows, densifying the sparse block
    out = Xb.to_dict(absent=np.nan)
    assert isinstance(out["text"], np.ndarray) and out["text"].dtype == np.float64
    assert np.isnan(out["text"][[1, 3]]).all() and out["text"][2].tolist() == [4.0, 0.0, 5.0]
    assert out["tab"].dtype == np.float64 and np.isnan(out["tab"][2]).all()
    assert out["tab"][3].tolist() == [7.0, 8.0]
    zero = Xb.to_dict(absent=0.0)
    np.testing.assert_array_equal(zero["text"], kept)
    f32 = ModalityBlocks({"a": np.ones((2, 1), np.float32)}, masks={"a": [False, True]})
    assert f32.to_dict(absent=np.nan)["a"].dtype == np.float32
    # rows of the sparse block follow row selection, masks too
    sub = Xb[[2, 1]]
    np.testing.assert_array_equal(sub.blocks["text"].toarray(), dense[[2, 1]])
    assert sub.masks["text"].tolist() == [True, False]
    np.testing.assert_array_equal(sub.concat().toarray()[:, :3], kept[[2, 1]])
    # all-dense blocks turned sparse on request
    S = ModalityBlocks({"tab": tab}, masks={"tab": [1, 0, 1, 1]}).concat(sparse=True)
    assert sp.issparse(S) and S.format == "csr"
    np.testing.assert_array_equal(S.toarray(), [[1, 2], [0, 0], [5, 6], [7, 8]])


def test_single_block_concat():
    seq = np.arange(24, dtype=np.float64).reshape(3, 4, 2)
    Xb = ModalityBlocks({"seq": seq})
    M = Xb.concat()
    assert M.shape == (3, 8) and M.dtype == np.float32
    np.testing.assert_array_equal(M, seq.reshape(3, 8))
    M[0, 0] = 99.0  # a copy, never a view of the block
    assert seq[0, 0, 0] == 0.0
    masked = ModalityBlocks({"seq": seq}, masks={"seq": [True, False, True]})
    out = masked.concat()
    np.testing.assert_array_equal(out[1], np.zeros(8))
    np.testing.assert_array_equal(out[[0, 2]], seq[[0, 2]].reshape(2, 8))
    assert np.isnan(masked.concat(absent=np.nan)[1]).all()
    assert seq[1].sum() > 0  # the block itself is not zeroed
    frame = masked.concat(as_frame=True)
    assert frame.columns.tolist() == [f"seq__x{i}" for i in range(8)]
    np.testing.assert_array_equal(frame.to_numpy(), out)
    one_sparse = ModalityBlocks({"s": sp.csr_matrix(np.eye(3))}, masks={"s": [0, 1, 1]})
    S = one_sparse.concat()
    assert sp.issparse(S)
    np.testing.assert_array_equal(S.toarray(), np.diag([0.0, 1.0, 1.0]))
    frame = one_sparse.concat(as_frame=True)  # always dense
    np.testing.assert_array_equal(frame.to_numpy(), np.diag([0.0, 1.0, 1.0]))


def test_from_dict_masks_only_rows_that_are_nan_everywhere():
    seq = np.ones((4, 2, 2))
    seq[1] = np.nan
    seq[2, 0, 0] = np.nan  # partly NaN: present
    ints = np.array([[1], [2], [3], [4]])
    text = sp.csr_matrix(np.eye(4))
    Xb = ModalityBlocks.from_dict({"seq": seq, "ints": ints, "text": text})
    assert Xb.masks["seq"].tolist() == [True, False, True, True]
    assert Xb.masks["ints"].all() and Xb.masks["text"].all()
    assert Xb.blocks["ints"] is ints and sp.issparse(Xb.blocks["text"])
    assert (Xb.blocks["seq"][1] == 0).all() and np.isnan(Xb.blocks["seq"][2, 0, 0])
    assert np.isnan(seq[1]).all()  # the input is not modified
    full = np.ones((2, 2))
    assert ModalityBlocks.from_dict({"a": full}).blocks["a"] is full  # nothing absent: no copy


def test_row_selection_bounds():
    Xb = ModalityBlocks({"a": np.arange(8.0).reshape(4, 2)}, masks={"a": [1, 0, 1, 1]})
    assert Xb[-4].blocks["a"].tolist() == [[0.0, 1.0]]
    assert Xb[3].blocks["a"].tolist() == [[6.0, 7.0]]
    assert Xb[np.int64(1)].masks["a"].tolist() == [False]
    for bad in (4, -5):
        with pytest.raises(IndexError, match=f"Row {bad} is out of range for 4 rows"):
            Xb[bad]
    assert Xb[[3, -4]].blocks["a"][:, 0].tolist() == [6.0, 0.0]
    for bad in ([0, 4], [-5, 0]):
        with pytest.raises(IndexError, match="Row indices out of range for 4 rows"):
            Xb[bad]
    assert len(Xb[[True, False, True, False]]) == 2
    assert len(Xb[np.array([True, False, True, False]), :]) == 2
    assert len(Xb[1:, ...]) == 3
    assert len(Xb[[]]) == 0
    with pytest.raises(IndexError, match="integer array"):
        Xb[np.array([[0, 1]])]
    with pytest.raises(IndexError, match=r"Boolean row mask has shape \(\); expected \(4,\)"):
        Xb[True]


def test_equality_repr_and_presence():
    a = np.array([[1.0, np.nan], [2.0, 3.0]])
    Xb = ModalityBlocks({"a": a, "s": sp.csr_matrix(np.eye(2))}, masks={"s": [True, False]})
    same = ModalityBlocks({"a": a.copy(), "s": sp.csr_matrix(np.eye(2))},
                          masks={"s": [True, False]})
    assert Xb == same  # NaN equals NaN in float blocks
    assert not Xb != same
    assert Xb != ModalityBlocks({"a": a.copy(), "s": sp.csr_matrix(np.eye(2))})  # masks
    assert Xb != ModalityBlocks({"a": a.copy(), "s": np.eye(2)}, masks={"s": [True, False]})
    assert Xb != ModalityBlocks({"b": a.copy(), "s": sp.csr_matrix(np.eye(2))},
                                masks={"s": [True, False]})
    assert Xb != ModalityBlocks({"a": a[:, :1].copy(), "s": sp.csr_matrix(np.eye(2))},
                                masks={"s": [True, False]})
    other = a.copy()
    other[0, 0] = 5.0
    assert Xb != ModalityBlocks({"a": other, "s": sp.csr_matrix(np.eye(2))},
                                masks={"s": [True, False]})
    assert Xb.__eq__("x") is NotImplemented
    assert (Xb == ModalityBlocks({"b": a.copy()})) is False
    assert (Xb == ModalityBlocks({"a": a.copy(), "s": np.eye(2)}, masks={"s": [1, 0]})) is False
    assert (Xb == ModalityBlocks({"a": other, "s": sp.csr_matrix(np.eye(2))},
                                 masks={"s": [True, False]})) is False
    assert (Xb == ModalityBlocks({"a": a.copy(), "s": sp.csr_matrix(np.eye(2))})) is False
    assert (Xb == same) is True
    ints = ModalityBlocks({"i": np.array([[1], [2]])})
    assert ints == ModalityBlocks({"i": np.array([[1], [2]])})
    assert repr(Xb) == "ModalityBlocks(n_samples=2, {'a': (2,), 's': sparse (2,), 1 absent})"
    assert Xb.presence.tolist() == [[True, True], [True, False]]
    assert Xb.presence.dtype == bool
    assert (Xb.n_blocks, Xb.ndim, Xb.shape, len(Xb)) == (2, 2, (2, 2), 2)


def test_mask_and_feature_name_validation():
    a = np.zeros((3, 2))
    assert ModalityBlocks({"a": a}, masks={"a": np.array([0, 1, 1], dtype=np.uint8)}
                          ).masks["a"].tolist() == [False, True, True]
    assert ModalityBlocks({"a": a}, masks={"a": None}).masks["a"].all()
    for bad in ([0, 2, 1], [0.0, 1.0, 1.0], ["a", "b", "c"]):
        with pytest.raises(ValueError, match="must be boolean"):
            ModalityBlocks({"a": a}, masks={"a": bad})
    with pytest.raises(TypeError, match="Block names must be strings"):
        ModalityBlocks({1: a})
    seq = np.zeros((3, 2, 4))
    Xb = ModalityBlocks({"seq": seq, "a": a}, feature_names={"seq": list("pqrs"), "a": None})
    assert list(Xb.feature_names) == ["seq"]
    assert Xb.concat_feature_names()[:5].tolist() == ["seq__p_t0", "seq__q_t0", "seq__r_t0",
                                                      "seq__s_t0", "seq__p_t1"]
    assert Xb.concat_feature_names()[-2:].tolist() == ["a__x0", "a__x1"]
    flat = ModalityBlocks({"seq": seq}, feature_names={"seq": [f"f{i}" for i in range(8)]})
    assert flat.concat_feature_names()[-1] == "seq__f7"
    assert ModalityBlocks({"a": a}).feature_names is None
    with pytest.raises(ValueError, match=r"per-row shape \(2, 4\) but 3 feature names; "
                                         r"expected 8 \(flattened\) or 4"):
        ModalityBlocks({"seq": seq}, feature_names={"seq": ["x", "y", "z"]})


def test_flat_feature_names_of_4d_blocks():
    names = flat_feature_names(list("abcd"), (2, 3, 4))  # one name per feature of the last axis
    assert len(names) == 24 and names[:5].tolist() == ["a_i0_j0", "b_i0_j0", "c_i0_j0",
                                                       "d_i0_j0", "a_i0_j1"]
    assert names[-1] == "d_i1_j2"
    Xb = ModalityBlocks({"img": np.zeros((2, 2, 3, 4))}, feature_names={"img": list("abcd")})
    assert Xb.concat_feature_names()[4] == "img__a_i0_j1"
    with pytest.raises(ValueError, match="expected 24 \\(flattened\\) or 4"):
        ModalityBlocks({"img": np.zeros((2, 2, 3, 4))}, feature_names={"img": list("abc")})
    assert flat_feature_names(["a", "b"], (2, 2, 2))[:4].tolist() == [
        "a_i0_j0", "b_i0_j0", "a_i0_j1", "b_i0_j1"]
    assert flat_feature_names(["a", "b"], (2, 2, 2))[-1] == "b_i1_j1"
    assert flat_feature_names(["w"], (3, 1)).tolist() == ["w_t0", "w_t1", "w_t2"]
    assert flat_feature_names(np.array([["a", "b"]]), (2,)).tolist() == ["a", "b"]
    assert flat_feature_names(None, (2, 2)).tolist() == ["x0", "x1", "x2", "x3"]
    assert flat_feature_names(["a", "b", "c"], (3, 2)).tolist() == [f"x{i}" for i in range(6)]


def test_token_blocks_and_their_vocabulary():
    from sklearn_mtml.blocks import check_token_block

    ids = np.array([[0, 3], [2, 1]])
    assert check_token_block("t", ids) == 4  # the largest id plus one
    assert check_token_block("t", ids, 4) == 4 and check_token_block("t", ids, np.int64(9)) == 9
    assert type(check_token_block("t", ids, np.int64(9))) is int
    assert check_token_block("t", ids.astype(np.uint8)) == 4
    assert check_token_block("t", np.array([[0, 1]])) == 2
    assert check_token_block("t", np.zeros((0, 3), dtype=int), 5) == 5
    for bad in (3, 1, True, 2.0, "4"):
        with pytest.raises(ValueError):
            check_token_block("t", ids, bad)
    with pytest.raises(ValueError, match=r"ids in \[-1, 3\]"):
        check_token_block("t", np.array([[-1, 3]]), 10)
    with pytest.raises(ValueError, match="int >= 2"):
        check_token_block("t", np.zeros((0, 3), dtype=int))
    for bad in (ids.astype(float), ids[0], ids[None], sp.csr_matrix(ids)):
        with pytest.raises(ValueError, match="Token block 't' must"):
            check_token_block("t", bad)
    Xb = ModalityBlocks({"tok": ids, "x": np.ones((2, 1))}, vocab_sizes={"tok": 6})
    assert Xb.vocab_sizes == {"tok": 6}
    assert Xb[[1]].vocab_sizes == {"tok": 6}
    assert "tokens (vocabulary 6)" in repr(Xb)
    assert Xb != ModalityBlocks({"tok": ids, "x": np.ones((2, 1))})
    assert Xb == ModalityBlocks({"tok": ids, "x": np.ones((2, 1))}, vocab_sizes={"tok": 6})
    assert ModalityBlocks(Xb).vocab_sizes == {"tok": 6}
    with pytest.raises(ValueError, match="vocab_sizes names no block 'z'"):
        ModalityBlocks({"tok": ids}, vocab_sizes={"z": 6})


def test_copying_a_container_keeps_its_masks_and_names():
    Xb = ModalityBlocks({"a": np.ones((3, 2))}, masks={"a": [True, False, True]},
                        feature_names={"a": ["p", "q"]})
    again = ModalityBlocks(Xb)
    assert again == Xb
    assert again.masks["a"].tolist() == [True, False, True]
    assert again.feature_names["a"].tolist() == ["p", "q"]
    assert ModalityBlocks(Xb, masks={"a": [1, 1, 1]}).masks["a"].all()


# ==============================================================================================
# nn/fusion.py
# ==============================================================================================
def _embeddings(n=5, d=4, m=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g) for _ in range(m)]


#: Presence patterns, including a row with every modality absent and rows with one.
MASK = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=torch.bool)


def test_attention_fusion_is_a_masked_softmax_weighted_sum(torch_threads):
    torch.manual_seed(0)
    fusion = AttentionFusion([4, 4, 4], hidden=6)
    emb = _embeddings()
    h, alpha = fusion(emb, MASK)
    lin1, lin2 = fusion.score[0], fusion.score[2]
    for r in range(5):
        present = [k for k in range(3) if MASK[r, k]]
        scores = {k: (lin2(torch.tanh(lin1(emb[k][r]))))[0] for k in present}
        expected_alpha = torch.zeros(3)
        if present:
            z = torch.stack([scores[k] for k in present])
            expected_alpha[present] = torch.softmax(z, dim=0)
        torch.testing.assert_close(alpha[r], expected_alpha.detach())
        expected_h = sum((expected_alpha[k] * emb[k][r] for k in range(3)), torch.zeros(4))
        torch.testing.assert_close(h[r], expected_h.detach())
    assert torch.equal(h[3], torch.zeros(4)) and torch.equal(alpha[3], torch.zeros(3))
    torch.testing.assert_close(alpha[[0, 1, 2, 4]].sum(1), torch.ones(4))
    assert alpha[2].tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(h[2], emb[2][2])
    assert fusion.out_features == 4 and fusion.needs_equal_dims
    assert AttentionFusion([4, 4]).score[0].out_features == 64  # default hidden width
    assert fusion.score[0].in_features == 4 and fusion.score[2].out_features == 1


def test_gated_fusion_is_a_normalised_gate_weighted_sum(torch_threads):
    torch.manual_seed(0)
    fusion = GatedFusion([4, 4, 4])
    emb = _embeddings()
    h, w = fusion(emb, MASK)
    W, b = fusion.gate.weight, fusion.gate.bias
    assert W.shape == (3, 12)
    for r in range(5):
        m = MASK[r].float()
        x = torch.cat([emb[k][r] * m[k] for k in range(3)])  # absent embeddings are zeroed
        g = torch.sigmoid(W @ x + b) * m
        expected_w = g / g.sum() if g.sum() > 0 else torch.zeros(3)
        torch.testing.assert_close(w[r], expected_w.detach())
        expected_h = sum((expected_w[k] * emb[k][r] for k in range(3)), torch.zeros(4))
        torch.testing.assert_close(h[r], expected_h.detach())
    assert torch.equal(h[3], torch.zeros(4)) and torch.equal(w[3], torch.zeros(3))
    torch.testing.assert_close(w[[0, 1, 2, 4]].sum(1), torch.ones(4))
    # an absent modality's values change nothing, not even the gates of the others
    changed = [e.clone() for e in emb]
    changed[1][1] += 100.0
    h2, w2 = fusion(changed, MASK)
    torch.testing.assert_close(h2, h)
    torch.testing.assert_close(w2, w)
    assert fusion.out_features == 4 and fusion.needs_equal_dims


def test_concat_fusion_zeroes_absent_modalities():
    fusion = ConcatFusion([2, 3])
    assert fusion.out_features == 5 and not fusion.needs_equal_dims
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    b = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    mask = torch.tensor([[True, False], [False, True], [False, False]])
    h, w = fusion([a, b], mask)
    assert w is None
    torch.testing.assert_close(h, torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0],
                                                [0.0, 0.0, 2.0, 2.0, 2.0],
                                                [0.0, 0.0, 0.0, 0.0, 0.0]]))
    single, w = ConcatFusion([2])([a], torch.ones(3, 1, dtype=torch.bool))
    assert single is a and w is None
    assert ConcatFusion([2]).out_features == 2
    assert {"concat", "attention", "gated"} <= set(FUSIONS)
    assert (FUSIONS["concat"], FUSIONS["attention"], FUSIONS["gated"]) == (
        ConcatFusion, AttentionFusion, GatedFusion)


@pytest.mark.parametrize("cls", [AttentionFusion, GatedFusion])
def test_weighted_fusions_of_one_modality(cls):
    torch.manual_seed(0)
    e = torch.randn(3, 4)
    h, w = cls([4])([e], torch.tensor([[True], [False], [True]]))
    torch.testing.assert_close(w, torch.tensor([[1.0], [0.0], [1.0]]))
    torch.testing.assert_close(h, e * torch.tensor([[1.0], [0.0], [1.0]]))


def test_fusions_are_differentiable_and_finite_with_an_all_absent_row():
    torch.manual_seed(0)
    for cls in (AttentionFusion, GatedFusion):
        fusion = cls([4, 4, 4])
        emb = [e.requires_grad_(True) for e in _embeddings()]
        h, w = fusion(emb, MASK)
        h.sum().backward()
        for e in emb:
            assert torch.isfinite(e.grad).all()
            assert torch.equal(e.grad[3], torch.zeros(4))  # the empty row passes no gradient
        assert all(torch.isfinite(p.grad).all() for p in fusion.parameters())


@pytest.mark.parametrize("fusion", ["concat", "attention", "gated", "late"])
def test_network_output_for_a_row_without_any_modality(fusion):
    from sklearn_mtml.nn import MultiTaskModule

    torch.manual_seed(0)
    module = MultiTaskModule({"a": (3,), "b": (4,)}, [1, 3], fusion=fusion).eval()
    blocks = {"a": torch.randn(3, 3), "b": torch.randn(3, 4)}
    mask = torch.tensor([[True, True], [False, False], [True, False]])
    with torch.no_grad():
        outputs = module(blocks, mask)
        # the empty row's output does not depend on the values behind its absent blocks
        again = module({"a": blocks["a"] + torch.tensor([[0.0], [50.0], [0.0]]),
                        "b": blocks["b"] - 7.0 * torch.tensor([[0.0], [1.0], [0.0]])}, mask)
    for out, out2 in zip(outputs, again):
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[1], out2[1])
