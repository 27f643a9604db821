"""What counts as missing: one rule for labels, modality cells and table columns.

``None``, a float NaN (Python or NumPy), ``pandas.NA``, ``pandas.NaT`` and NumPy's ``NaT``
are missing; anything else — including an empty string, an empty array or a path to an
empty file — is a value (transformers decide separately whether a value carries signal).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["is_missing_value", "missing_mask"]


def is_missing_value(item: Any) -> bool:
    """Whether one value is missing (see the module docstring for the rule).

    Parameters
    ----------
    item : object
        A label or a cell of a modality column.

    Returns
    -------
    missing : bool
    """
    if item is None:
        return True
    if isinstance(item, (float, np.floating)):
        return math.isnan(item)
    if isinstance(item, np.datetime64):
        return bool(np.isnat(item))
    # pandas.NA / pandas.NaT, without importing pandas
    return type(item).__name__ in ("NAType", "NaTType")


def missing_mask(values: Any) -> np.ndarray:
    """Boolean mask, ``True`` where an entry of ``values`` is missing.

    Parameters
    ----------
    values : array-like
        Any dtype; float, complex and datetime columns are checked without a Python loop.

    Returns
    -------
    mask : ndarray of bool, same shape as ``values``
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind in "mM":
        return np.isnat(values)
    if kind != "O":
        return np.zeros(values.shape, dtype=bool)
    flat = values.reshape(-1)
    return np.fromiter((is_missing_value(v) for v in flat), dtype=bool,
                       count=flat.size).reshape(values.shape)
