"""scikit-learn's common estimator checks over every public estimator, in one place.

Every check that an estimator is known to fail is listed in :data:`EXPECTED_FAILURES`, the
one table of expected failures, with the reason; ``parametrize_with_checks`` marks those
checks ``xfail``. The behaviour each reason refers to is tested on real inputs in the
estimator's own test file.
"""

from __future__ import annotations

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import sklearn_mtml
from sklearn_mtml import (
    AudioFeatures,
    CategoricalFeatures,
    ImageFeatures,
    KFoldEnsemble,
    LateFusionClassifier,
    LateFusionRegressor,
    ModalityFusion,
    MultiTaskNet,
    TextFeatures,
)

#: The estimators checked: every public estimator, in its main configurations. Networks are
#: kept small (3 epochs) so that the whole module runs in seconds.
ESTIMATORS = [
    MultiTaskNet(max_epochs=3, batch_size=32, random_state=0),
    KFoldEnsemble(MultiTaskNet(max_epochs=3, batch_size=32), cv=3, random_state=0),
    KFoldEnsemble(MultiTaskNet(max_epochs=3, batch_size=32), cv=3, random_state=0,
                  blend="linear"),
    ModalityFusion([("first", StandardScaler(), [0])], output="concat",
                   remainder="passthrough"),
    ModalityFusion([("first", StandardScaler(), [0])], output="blocks",
                   remainder="passthrough"),
    LateFusionClassifier(LogisticRegression()),
    LateFusionClassifier(LogisticRegression(), combine="stack", cv=2),
    LateFusionRegressor(Ridge(), combine="weighted", cv=2),
    AudioFeatures(sr=8000),
    AudioFeatures(sr=8000, output="sequence"),
    ImageFeatures(),
    ImageFeatures(output="hog", size=16),
    TextFeatures(),
    TextFeatures(output="sequence"),
    CategoricalFeatures(),
    CategoricalFeatures(output="onehot"),
]

# -- reasons shared by several checks ----------------------------------------------------------
_MINIBATCH = (
    "integer weights equal repeated rows in the loss, but repeating rows changes the number "
    "and order of mini-batches (and the early-stopping split), so the two fits follow "
    "different optimisation paths"
)
_BLOCKS = (
    "output='blocks' returns a ModalityBlocks container, not an array: the check compares or "
    "converts outputs as arrays (output='concat' passes it)"
)
_NOT_SQUARE = (
    "the check's X has 2, 3, 5 or 10 columns; a 2-D numeric array is read as flattened square "
    "grey images (n, H*H), so a non-square width is rejected by design (tested on real images "
    "in test_features_image.py)"
)
_NUMERIC_TEXT = (
    "the check passes a numeric X with several columns (or numbers in one column); "
    "TextFeatures takes one column of strings and rejects numbers by design (tested on real "
    "texts in test_features_text.py)"
)
_IMAGE_WRONG_X = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1sample", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_fit2d_predict1d",
]
_TEXT_WRONG_X = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_positive_only_tag_during_fit",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_fit2d_predict1d",
]

#: The one table of expected failures: estimator key (see :func:`_key`) -> check -> reason.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "MultiTaskNet": {
        "check_sample_weight_equivalence_on_dense_data": _MINIBATCH,
        "check_sample_weight_equivalence_on_sparse_data": (
            "as on dense data: mini-batches differ when rows are repeated"),
    },
    "KFoldEnsemble": {
        "check_sample_weight_equivalence_on_dense_data": _MINIBATCH,
        "check_sample_weight_equivalence_on_sparse_data": (
            "as on dense data: mini-batches differ when rows are repeated"),
    },
    "ModalityFusion(output='blocks')": {
        name: _BLOCKS for name in [
            "check_pipeline_consistency", "check_estimators_pickle",
            "check_transformer_general", "check_transformer_data_not_an_array",
            "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
            "check_methods_subset_invariance", "check_fit_idempotent",
        ]
    },
    "AudioFeatures": {
        "check_n_features_in": (
            "a 2-D array holds one waveform per row: its width is a clip length, not a "
            "number of features, so n_features_in_ is not set"),
        "check_n_features_in_after_fitting": (
            "clips of any length are valid at transform; there is no feature count to check"),
        "check_transformer_general": (
            "it transforms waveforms of another length than those seen at fit, which is "
            "correct for audio; the check expects an error"),
    },
    "ImageFeatures": {
        **{name: _NOT_SQUARE for name in _IMAGE_WRONG_X},
        "check_n_features_in": (
            "the input is one column of images, not a feature matrix: n_features_in_ is not "
            "set"),
        "check_n_features_in_after_fitting": (
            "the input is one column of images, not a feature matrix: n_features_in_ is not "
            "set"),
    },
    "TextFeatures": {
        **{name: _NUMERIC_TEXT for name in _TEXT_WRONG_X},
        "check_n_features_in": (
            "the input is one column of texts, not a feature matrix: n_features_in_ is not "
            "set"),
        "check_n_features_in_after_fitting": (
            "the input is one column of texts, not a feature matrix: n_features_in_ is not "
            "set"),
        "check_fit1d": (
            "a 1-D array is a valid column of texts; its numbers raise TypeError, not "
            "ValueError"),
    },
    "CategoricalFeatures": {
        "check_fit1d": (
            "a 1-D array is one categorical column (what ModalityFusion passes for a single "
            "column name), so it is accepted rather than rejected"),
    },
    "LateFusionClassifier": {},
    "LateFusionRegressor": {},
    "ModalityFusion": {},
}


def _key(estimator) -> str:
    name = type(estimator).__name__
    if name == "ModalityFusion" and estimator.output == "blocks":
        return "ModalityFusion(output='blocks')"
    return name


def _expected_failures(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES[_key(estimator)]


# the checks' dok-matrix input makes scikit-learn's validation warn that it cannot look for NaN
@pytest.mark.filterwarnings("ignore:Can't check dok sparse matrix for nan or inf:UserWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    public = {name for name in sklearn_mtml.__all__
              if inspect.isclass(obj := getattr(sklearn_mtml, name))
              and issubclass(obj, BaseEstimator)}
    assert public == {type(e).__name__ for e in ESTIMATORS}
    assert set(EXPECTED_FAILURES) == {_key(e) for e in ESTIMATORS}
    for key, table in EXPECTED_FAILURES.items():
        for check, reason in table.items():
            assert check.startswith("check_") and len(reason) > 20, (key, check)


@pytest.mark.parametrize("key", sorted(EXPECTED_FAILURES))
def test_expected_failures_name_existing_checks(key):
    # a private helper of scikit-learn: skip rather than fail if a release renames it
    from sklearn.utils import estimator_checks

    _yield_all_checks = getattr(estimator_checks, "_yield_all_checks", None)
    if _yield_all_checks is None:
        pytest.skip("sklearn.utils.estimator_checks._yield_all_checks is gone")
    estimator = next(e for e in ESTIMATORS if _key(e) == key)
    names = set()
    for check in _yield_all_checks(estimator, legacy=True):
        names.add(getattr(check, "func", check).__name__)
    stale = set(EXPECTED_FAILURES[key]) - names
    assert not stale, f"{key}: expected failures of checks that no longer run: {stale}"
