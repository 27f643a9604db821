"""A 3,000-review sample of the Women's E-Commerce Clothing Reviews (CC0)."""

from __future__ import annotations

import csv
import gzip
from importlib import resources

import numpy as np

from .._optional import require

__all__ = ["load_reviews"]

#: Input columns and task columns of :func:`load_reviews`.
REVIEW_INPUTS = ["Title", "Review Text", "Age", "Division Name"]
REVIEW_TASKS = ["Rating", "Recommended IND", "Department Name", "Positive Feedback Count"]


def _read_columns() -> dict[str, np.ndarray]:
    path = resources.files("sklearn_mtml.datasets") / "data" / "reviews.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [r[j] if r[j] != "" else None for r in body]
        if name in ("Age", "Rating", "Recommended IND", "Positive Feedback Count"):
            cols[name] = np.array([np.nan if v is None else float(v) for v in values])
        else:
            cols[name] = np.array(values, dtype=object)
    return cols


def load_reviews(*, as_frame: bool = True):
    """Load 3,000 clothing reviews with text, tabular inputs and four tasks.

    A random sample (seed 0) of the Women's E-Commerce Clothing Reviews data set (CC0):
    inputs ``Title`` and ``Review Text`` (free text, sometimes missing), ``Age`` and
    ``Division Name``; tasks ``Rating`` (1–5), ``Recommended IND`` (0/1),
    ``Department Name`` (6 classes, missing for 2 rows) and ``Positive Feedback Count``
    (a count).

    Parameters
    ----------
    as_frame : bool, default=True
        Return pandas DataFrames (requires pandas); else dicts of numpy columns.

    Returns
    -------
    X : DataFrame or dict of ndarray
        The input columns; missing text is ``None`` (NaN in a DataFrame).
    Y : DataFrame or dict of ndarray
        The task columns; a missing label is ``NaN``/``None``.

    Examples
    --------
    >>> from sklearn_mtml.datasets import load_reviews
    >>> X, Y = load_reviews()
    >>> X.shape, list(Y.columns)
    ((3000, 4), ['Rating', 'Recommended IND', 'Department Name', 'Positive Feedback Count'])
    """
    cols = _read_columns()
    X = {k: cols[k] for k in REVIEW_INPUTS}
    Y = {k: cols[k] for k in REVIEW_TASKS}
    Y["Rating"] = Y["Rating"].astype(int)
    Y["Recommended IND"] = Y["Recommended IND"].astype(int)
    if not as_frame:
        return X, Y
    pd = require("pandas", needed_by="load_reviews(as_frame=True)", instead="or pass "
                 "as_frame=False")
    return pd.DataFrame(X), pd.DataFrame(Y)
