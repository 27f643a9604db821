"""MultiTaskNet on slices of the real data in ../shared/data beats trivial predictors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.io import arff
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_mtml import MultiTaskNet

#: every test here reads the real data sets of ../shared/data and trains on them
pytestmark = pytest.mark.slow


def _load_arff(path, n_targets):
    data, _ = arff.loadarff(path)
    frame = pd.DataFrame(data)
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].str.decode("utf-8").astype(int)
    X = frame.iloc[:, :-n_targets].to_numpy(np.float32)
    return X, frame.iloc[:, -n_targets:]


def _split_scaled(X, Y):
    Xtr, Xte, Ytr, Yte = train_test_split(X, Y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), Ytr, Yte


def test_emotions_six_binary_tasks_beat_majority(shared_data):
    X, Y = _load_arff(shared_data / "mulan" / "emotions.arff", 6)
    Xtr, Xte, Ytr, Yte = _split_scaled(X, Y)
    net = MultiTaskNet(max_epochs=40, random_state=0, module__dropout=0.2,
                       module__hidden_sizes=(128,)).fit(Xtr, Ytr)
    scores = net.score_tasks(Xte, Yte)
    assert list(scores) == list(Y.columns)
    for task in Y.columns:
        majority = DummyClassifier().fit(Xtr, Ytr[task]).score(Xte, Yte[task])
        assert scores[task] > majority, (task, scores[task], majority)


def test_enb_two_regression_tasks_beat_mean(shared_data):
    X, Y = _load_arff(shared_data / "mulan" / "enb.arff", 2)
    Xtr, Xte, Ytr, Yte = _split_scaled(X, Y)
    net = MultiTaskNet(tasks={"Y1": "regression", "Y2": "regression"}, max_epochs=60, lr=3e-3,
                       random_state=0).fit(Xtr, Ytr)
    scores = net.score_tasks(Xte, Yte)
    for task in Y.columns:
        mean = DummyRegressor().fit(Xtr, Ytr[task]).score(Xte, Yte[task])
        assert scores[task] > mean + 0.8, (task, scores[task], mean)


def test_reviews_mixed_tasks_with_missing_labels_beat_trivial(shared_data):
    frame = pd.read_csv(shared_data / "womens_ecommerce" / "womens_ecommerce.csv.gz",
                        nrows=3000)
    from sklearn.feature_extraction.text import TfidfVectorizer

    text = (frame["Title"].fillna("") + " " + frame["Review Text"].fillna("")).to_numpy()
    Y = pd.DataFrame({
        "rating": frame["Rating"].astype(float),  # as a regression task
        "recommended": frame["Recommended IND"],
        "department": frame["Department Name"].astype(object),
    })
    Y.loc[::10, "department"] = None  # unlabelled rows stay in training for the other tasks
    tr, te = train_test_split(np.arange(len(text)), test_size=0.3, random_state=0)
    tfidf = TfidfVectorizer(max_features=2000, min_df=3, sublinear_tf=True).fit(text[tr])
    net = MultiTaskNet(tasks={"rating": "regression"}, max_epochs=8, random_state=0,
                       module__hidden_sizes=(128,), module__dropout=0.3)
    net.fit(tfidf.transform(text[tr]), Y.iloc[tr])  # sparse TF-IDF input
    scores = net.score_tasks(tfidf.transform(text[te]), Y.iloc[te])
    for task in ("recommended", "department"):
        labelled_tr = Y.iloc[tr][task].notna().to_numpy()
        labelled_te = Y.iloc[te][task].notna().to_numpy()
        majority = DummyClassifier().fit(np.zeros((labelled_tr.sum(), 1)),
                                         Y.iloc[tr][task][labelled_tr].astype(str))
        base = majority.score(np.zeros((labelled_te.sum(), 1)),
                              Y.iloc[te][task][labelled_te].astype(str))
        assert scores[task] > base, (task, scores[task], base)
    assert scores["rating"] > 0.2  # the mean predictor scores R² <= 0 on held-out rows


@pytest.mark.parametrize("n_rows", [1, 2])
def test_tiny_inputs(n_rows):
    X = np.arange(n_rows * 3, dtype=np.float32).reshape(n_rows, 3)
    y = np.arange(n_rows, dtype=float) + 0.5
    net = MultiTaskNet(max_epochs=1).fit(X, y)
    assert net.predict(X).shape == (n_rows,)
