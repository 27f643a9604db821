"""Δp and per-task scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtml import MultiTaskNet
from sklearn_mtml.metrics import delta_p, task_scorer, task_scorers


def test_delta_p_closed_form():
    # (0.9 - 0.8)/0.8 = +12.5 %, lower-is-better (2.0 vs 2.5): +20 % → mean 16.25 %
    assert delta_p([0.9, 2.0], [0.8, 2.5], [True, False]) == pytest.approx(16.25)
    assert delta_p({"b": 2.0, "a": 0.9}, {"a": 0.8, "b": 2.5},
                   {"a": True, "b": False}) == pytest.approx(16.25)
    assert delta_p([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert delta_p([0.5], [1.0], higher_is_better=False) == pytest.approx(50.0)
    assert delta_p([0.5], [1.0]) == pytest.approx(-50.0)
    # a negative baseline (e.g. R² < 0): improving from -0.5 to -0.25 is a gain
    assert delta_p([-0.25], [-0.5]) == pytest.approx(50.0)


def test_delta_p_errors():
    with pytest.raises(ValueError, match="2 tasks but baseline has 1"):
        delta_p([1, 2], [1])
    with pytest.raises(ValueError, match="baseline score is 0"):
        delta_p({"a": 1.0}, {"a": 0.0})
    with pytest.raises(ValueError, match="no score for tasks"):
        delta_p({"a": 1.0, "b": 1.0}, {"a": 1.0})
    with pytest.raises(TypeError, match="dict"):
        delta_p([1.0], {"a": 1.0})
    with pytest.raises(ValueError, match="finite"):
        delta_p([np.nan], [1.0])
    with pytest.raises(ValueError, match="higher_is_better has 1 entries"):
        delta_p([1, 2], [1, 2], [True])


def _data(n=120):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 5).astype(np.float32)
    Y = pd.DataFrame({"cls": (X[:, 0] > 0).astype(int), "reg": X[:, 1] * 2 + 0.1 * X[:, 2]})
    Y.loc[::7, "cls"] = np.nan
    return X, Y


def _net(**kw):
    return MultiTaskNet(tasks={"cls": "binary", "reg": "regression"}, max_epochs=3,
                        random_state=0, module__hidden_sizes=(8,), module__tower_sizes=(),
                        **kw)


def test_task_scorer_matches_score_tasks():
    X, Y = _data()
    net = _net().fit(X, Y)
    scores = net.score_tasks(X, Y)
    assert task_scorer("reg")(net, X, Y) == pytest.approx(scores["reg"])
    assert task_scorer("cls")(net, X, Y) == pytest.approx(scores["cls"])
    with pytest.raises(ValueError, match="Unknown task 'nope'"):
        task_scorer("nope")(net, X, Y)
    pipe = make_pipeline(StandardScaler(), _net()).fit(X, Y)
    expected = pipe[-1].score_tasks(pipe[0].transform(X), Y)["reg"]
    assert task_scorer("reg")(pipe, X, Y) == pytest.approx(expected)
    with pytest.raises(TypeError, match="score_tasks"):
        task_scorer("reg")(StandardScaler().fit(X), X, Y)


def test_task_scorers_in_grid_search_and_cross_validate():
    X, Y = _data()
    scoring = task_scorers(["cls", "reg"])
    assert set(scoring) == {"cls", "reg", "mean"}
    search = GridSearchCV(_net(), {"lr": [1e-3, 1e-2]}, scoring=scoring, refit="reg", cv=2)
    search.fit(X, Y)
    res = search.cv_results_
    assert {"mean_test_cls", "mean_test_reg", "mean_test_mean"} <= set(res)
    assert search.best_index_ == int(np.argmax(res["mean_test_reg"]))
    cv = cross_validate(_net(), X, Y, scoring=scoring, cv=2)
    np.testing.assert_allclose(cv["test_mean"], (cv["test_cls"] + cv["test_reg"]) / 2)
