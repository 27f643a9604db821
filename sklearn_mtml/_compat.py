"""Every private scikit-learn name the package uses, imported in one place.

scikit-learn does not promise to keep its private names; when an upgrade moves one, this is
the only file to change (and the test suite, which imports the package, says so at once).
"""

from __future__ import annotations

from sklearn.base import _fit_context
from sklearn.compose._column_transformer import _check_X
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils._indexing import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils._set_output import ADAPTERS_MANAGER, _get_output_config
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_feature_names_in, _check_method_params, _num_samples

__all__ = [
    "ADAPTERS_MANAGER",
    "BaseSearchCV",
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_X",
    "_check_feature_names_in",
    "_check_method_params",
    "_fit_and_score",
    "_fit_context",
    "_get_output_config",
    "_insert_error_scores",
    "_num_samples",
    "_safe_indexing",
    "_safe_split",
    "_score",
    "_warn_or_raise_about_fit_failures",
]
