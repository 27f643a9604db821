"""Task-kind inference from target columns: the rule, its borderline cases and its warning."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_linnerud

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.tasks import (
    MAX_SILENT_CLASSES,
    MIN_ROWS_PER_CLASS,
    RegressionTask,
    TaskInferenceWarning,
    infer_task_kind,
    make_task,
)

RNG = np.random.RandomState(0)


def _all_values(lo, hi, n, dtype=np.int64, seed=0):
    """``n`` rows holding every integer of ``lo..hi`` at least once (shuffled)."""
    rng = np.random.RandomState(seed)
    values = np.r_[np.arange(lo, hi + 1), rng.randint(lo, hi + 1, n - (hi - lo + 1))]
    return rng.permutation(values).astype(dtype)


def _silent(values, **kw):
    """Infer with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return infer_task_kind(values, **kw)


def _warned(values, **kw):
    with pytest.warns(TaskInferenceWarning) as record:
        kind = infer_task_kind(values, **kw)
    assert len(record) == 1
    return kind, str(record[0].message)


# -- cases that must not warn -------------------------------------------------------------------
@pytest.mark.parametrize(("values", "kind"), [
    pytest.param(np.repeat(np.arange(10), 50), "multiclass", id="digits-0-9"),
    pytest.param(RNG.randint(1, 6, 300), "multiclass", id="ratings-1-5"),
    pytest.param(np.array([1.0, 2.0, 3.0, 2.0, 1.0]), "multiclass", id="float-whole-3-values"),
    pytest.param(np.array([3.0, 4.0, 5.0] * 10), "multiclass", id="float-3-values-enough-rows"),
    pytest.param(np.array([1.0, 2.0, 1.0]), "binary", id="float-whole-2-values"),
    pytest.param(np.array([-1, 0, 1, 0, -1]), "multiclass", id="negative-ints-3-values"),
    pytest.param(np.array([-1, 1, 1, -1]), "binary", id="negative-ints-binary"),
    pytest.param(np.array([True, False, True]), "binary", id="bool"),
    pytest.param(np.array([True, False, None], dtype=object), "binary", id="bool-object"),
    pytest.param(np.array(["a", "b", "c"], dtype=object), "multiclass", id="strings"),
    pytest.param(np.array([str(i) for i in range(200)]), "multiclass", id="200-strings"),
    pytest.param(np.array([0, 2, 1, 2, None], dtype=object), "multiclass", id="object-ints"),
    pytest.param(np.array([0.5, 1.2, 3.3]), "regression", id="non-integral-floats"),
    pytest.param(np.array([1.0, np.inf, 2.0]), "regression", id="non-finite"),
    pytest.param(RNG.randn(500) * 100, "regression", id="continuous"),
    pytest.param(np.array([0.0, 1.0, 2.5, np.nan]), "regression", id="nan-non-integral"),
    pytest.param(np.array([0, 1, 2, np.nan, 1, 2, np.nan]), "multiclass", id="nan-masked-codes"),
])
def test_inference_without_warning(values, kind):
    assert _silent(values) == kind


def test_ten_values_never_warn_even_on_few_rows():
    # k = 10 in 10 rows: integer codes from 0 stay classes, silently
    assert _silent(np.arange(10)) == "multiclass"
    assert _silent(np.arange(10, dtype=float)) == "multiclass"
    assert _silent(np.arange(5, 15)) == "multiclass"  # ints: not a float measurement


# -- the brief's real cases ---------------------------------------------------------------------
def test_cifar100_like_labels_are_multiclass_with_a_warning():
    labels = np.tile(np.arange(100), 500)  # 50,000 rows
    kind, msg = _warned(labels, name="fine_label")
    assert kind == "multiclass"
    assert "'fine_label'" in msg and "100 distinct" in msg
    assert '{"fine_label": "regression"}' in msg


def test_ages_in_270_rows_are_regression():
    kind, msg = _warned(_all_values(18, 99, 270), name="age")
    assert kind == "regression"
    assert "'age'" in msg and "82 distinct" in msg and "'regression'" in msg
    assert 'tasks={"age": "multiclass"}' in msg


def test_whole_number_float_prices_are_regression():
    prices = RNG.choice([55.0, 75.0, 99.0, 120.0, 150.0, 210.0, 350.0, 480.0, 640.0, 890.0,
                         1000.0, 1200.0], 300)
    kind, _ = _warned(prices, name="price")
    assert kind == "regression"


def test_counts_0_to_60_in_300_rows_are_regression():
    kind, _ = _warned(_all_values(0, 60, 300), name="count")
    assert kind == "regression"


def test_diabetes_target_is_regression():
    y = load_diabetes().target
    assert y.dtype.kind == "f" and np.all(y == np.round(y))
    kind, msg = _warned(y, name="progression")
    assert kind == "regression"
    assert f"{np.unique(y).size} distinct" in msg


@pytest.mark.parametrize("col", [0, 1, 2])
def test_linnerud_targets_are_regression(col):
    y = load_linnerud().target[:, col]
    kind, _ = _warned(y)
    assert kind == "regression"


def test_warning_without_name_says_how_to_declare():
    _, msg = _warned(_all_values(18, 99, 270))
    assert 'tasks={"<name>": "multiclass"}' in msg


# -- borderline cases ---------------------------------------------------------------------------
def test_ten_vs_eleven_codes():
    n = 1000
    assert MAX_SILENT_CLASSES == 10
    assert _silent(_all_values(0, 9, n)) == "multiclass"
    kind, msg = _warned(_all_values(0, 10, n), name="t")
    assert kind == "multiclass" and "11 distinct" in msg


def test_exactly_five_rows_per_value_is_multiclass():
    assert MIN_ROWS_PER_CLASS == 5
    k = 11
    kind, _ = _warned(_all_values(0, k - 1, 5 * k))  # k == n / 5
    assert kind == "multiclass"
    kind, msg = _warned(_all_values(0, k - 1, 5 * k - 1))  # k > n / 5
    assert kind == "regression" and "fewer than 5 rows" in msg


def test_codes_starting_at_one_are_multiclass_but_at_two_regression():
    assert _warned(_all_values(1, 20, 1000))[0] == "multiclass"
    kind, msg = _warned(_all_values(2, 21, 1000))
    assert kind == "regression" and "smallest value is 2" in msg


def test_negative_integers_with_many_values_are_regression():
    kind, msg = _warned(_all_values(-20, 30, 5000), name="temperature")
    assert kind == "regression" and "smallest value is -20" in msg


def test_sparse_codes_are_regression():
    # 0..11 spread over 0..99: more than twice as wide as the number of values
    values = np.repeat(np.r_[0, 1, np.arange(10) * 10 + 5], 100)
    kind, msg = _warned(values)
    assert kind == "regression" and "sparse" in msg
    # at exactly twice as wide (span 24 for 12 values) they are still codes
    assert _warned(np.repeat(np.r_[0, 1, np.arange(10) * 2 + 5], 100))[0] == "multiclass"


def test_float_whole_numbers_with_many_values():
    codes = _all_values(0, 49, 5000)
    assert _warned(codes)[0] == "multiclass"
    kind, msg = _warned(codes.astype(float))
    assert kind == "regression" and "float" in msg


def test_nan_masked_float_codes_are_not_taken_for_measurements():
    # missing labels force a float dtype, so the dtype is no evidence of a quantity
    codes = _all_values(0, 49, 5000).astype(float)
    codes[::7] = np.nan
    kind, _ = _warned(codes)
    assert kind == "multiclass"
    # but a quantity with missing entries is still caught by its other signs
    ages = _all_values(18, 99, 270).astype(float)
    ages[::9] = np.nan
    assert _warned(ages)[0] == "regression"


def test_small_float_measurement_column_is_regression():
    # 3 <= k <= 10 needs all three signs: few rows, odd start and float
    assert _warned(np.array([31.0, 32.0, 33.0, 35.0, 31.0]))[0] == "regression"
    assert _silent(np.array([31, 32, 33, 35, 31])) == "multiclass"  # ints
    assert _silent(np.array([1.0, 2.0, 3.0, 5.0, 1.0])) == "multiclass"  # starts at 1
    assert _silent(np.array([31.0, 32.0, 33.0] * 5)) == "multiclass"  # 5 rows per value


def test_object_arrays_of_python_ints_follow_the_integer_rule():
    ages = np.array(_all_values(18, 99, 270).tolist() + [None], dtype=object)
    assert _warned(ages)[0] == "regression"
    codes = np.array(_all_values(0, 49, 5000).tolist(), dtype=object)
    assert _warned(codes)[0] == "multiclass"


def test_pandas_nullable_integers():
    ages = pd.array(_all_values(18, 99, 270).tolist() + [None], dtype="Int64").to_numpy()
    assert _warned(ages)[0] == "regression"


def test_booleans_never_warn():
    assert _silent(np.array([True, False] * 100)) == "binary"
    assert _silent(np.array([True, False, True], dtype=object)) == "binary"


# -- make_task and MultiTaskNet ------------------------------------------------------------------
def test_make_task_names_the_column_in_the_warning():
    with pytest.warns(TaskInferenceWarning, match="Task 'age'"):
        task = make_task("age", None, _all_values(18, 99, 270))
    assert isinstance(task, RegressionTask)


def test_declared_kind_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = make_task("age", "multiclass", _all_values(18, 99, 270))
    assert task.kind == "multiclass"


def test_multitasknet_infers_whole_number_regression_target():
    rng = np.random.RandomState(0)
    X = rng.randn(270, 5).astype(np.float32)
    age = np.clip(np.round(50 + 12 * X[:, 0] + 3 * rng.randn(270)), 18, 99).astype(np.int64)
    Y = pd.DataFrame({"age": age, "smoker": (X[:, 1] > 0).astype(int)})
    net = MultiTaskNet(max_epochs=2, random_state=0)
    with pytest.warns(TaskInferenceWarning, match="'age'"):
        net.fit(X, Y)
    assert isinstance(net.tasks_["age"], RegressionTask)
    assert net.tasks_["smoker"].kind == "binary"
    assert net.tasks_["age"].n_outputs == 1  # one output, not one logit per age
