"""Late fusion of per-modality estimators: combination rules, missing modalities, multi-task."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sklearn_mtml.blocks import ModalityBlocks
from sklearn_mtml.fusion import ModalityFusion
from sklearn_mtml.late_fusion import LateFusionClassifier, LateFusionRegressor


def make_data(n: int = 400, seed: int = 0, missing: float = 0.2):
    """'good' predicts both tasks, 'noise' is pure noise; 'good' is absent in some rows."""
    rng = np.random.RandomState(seed)
    y1 = rng.randint(0, 3, n)
    y2 = rng.randint(0, 2, n)
    good = np.column_stack([np.eye(3)[y1] * 1.5, y2[:, None] * 1.5]) + rng.randn(n, 4)
    noise = rng.randn(n, 3, 2)
    present = rng.rand(n) > missing
    Xb = ModalityBlocks({"good": good, "noise": noise}, masks={"good": present})
    return Xb, y1, y2



@pytest.mark.parametrize("combine", ["mean", "weighted", "stack"])
def test_classifier_combinations(combine):
    Xb, y, _ = make_data()
    train, test = np.arange(300), np.arange(300, 400)
    clf = LateFusionClassifier(LogisticRegression(), combine=combine, cv=3).fit(Xb[train], y[train])
    proba = clf.predict_proba(Xb[test])
    assert proba.shape == (100, 3)
    np.testing.assert_allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert set(clf.estimators_) == {"good", "noise"}
    assert clf.score(Xb[test], y[test]) > 0.5
    present = Xb[test].masks["good"]
    assert (clf.predict(Xb[test])[present] == y[test][present]).mean() > 0.6
    if combine == "weighted":
        assert clf.weights_.shape == (1, 2)
        assert clf.weights_[0, 0] > 0.9  # favours the informative modality
        assert clf.oof_scores_[0, 0] > 0.2 > clf.oof_scores_[0, 1]
    if combine == "stack":
        coef = np.abs(clf.final_estimators_[0].coef_)  # (3 classes, 3 good + 3 noise)
        assert coef[:, :3].sum() > 2 * coef[:, 3:].sum()


def test_weighted_and_stack_beat_mean_when_one_modality_is_noise():
    Xb, y, _ = make_data(missing=0.0)
    train, test = np.arange(300), np.arange(300, 400)
    scores = {c: LateFusionClassifier(LogisticRegression(), combine=c, cv=3)
              .fit(Xb[train], y[train]).score(Xb[test], y[test])
              for c in ("mean", "weighted", "stack")}
    assert scores["weighted"] >= scores["mean"] and scores["stack"] >= scores["mean"] - 0.02


def test_missing_modality_rows_use_the_other_modalities():
    Xb, y, _ = make_data()
    clf = LateFusionClassifier(LogisticRegression(), combine="mean").fit(Xb, y)
    absent = ~Xb.masks["good"]
    noise_only = clf.estimators_["noise"].predict_proba(Xb.blocks["noise"][absent].reshape(-1, 6))
    np.testing.assert_allclose(clf.predict_proba(Xb)[absent], noise_only)
    w = clf.modality_weights(Xb)
    assert w.shape == (400, 1, 2)
    np.testing.assert_allclose(w[absent, 0], [[0.0, 1.0]] * absent.sum())
    np.testing.assert_allclose(w[~absent, 0], [[0.5, 0.5]] * (~absent).sum())
    # the per-modality estimator only saw the rows where its modality is present
    assert clf.estimators_["good"].n_features_in_ == 4
    weighted = LateFusionClassifier(LogisticRegression(), combine="weighted", cv=3).fit(Xb, y)
    # a row without 'good' falls back on 'noise' even though its learned weight is ~0
    np.testing.assert_allclose(weighted.modality_weights(Xb)[absent, 0, 1], 1.0)


def test_row_without_any_modality_is_an_error():
    Xb, y, _ = make_data(n=50)
    masks = {"good": np.ones(50, bool), "noise": np.ones(50, bool)}
    masks["good"][[3, 8]] = False
    masks["noise"][[3, 8]] = False
    bad = ModalityBlocks(Xb.blocks, masks)
    with pytest.raises(ValueError, match=r"Rows \[3, 8\] have no modality present"):
        LateFusionClassifier(LogisticRegression()).fit(bad, y)
    clf = LateFusionClassifier(LogisticRegression()).fit(Xb, y)
    with pytest.raises(ValueError, match=r"Rows \[3, 8\] have no modality present"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="Block 'good' is absent in every row"):
        LateFusionClassifier(LogisticRegression()).fit(
            ModalityBlocks(Xb.blocks, {"good": np.zeros(50, bool)}), y)


def test_multi_task_classification():
    Xb, y1, y2 = make_data()
    n = len(y1)
    # task 2 is predictable from 'noise' only; task 1 from 'good' only
    rng = np.random.RandomState(1)
    other = ModalityBlocks({"good": Xb.blocks["good"][:, :3],
                            "side": y2[:, None] * 2.0 + rng.randn(n, 2)},
                           masks={"good": Xb.masks["good"]})
    Y = np.column_stack([y1, np.where(y2 == 1, "yes", "no")])
    for combine in ("weighted", "stack"):
        clf = LateFusionClassifier(MultiOutputClassifier(LogisticRegression()),
                                   combine=combine, cv=3).fit(other, Y)
        proba = clf.predict_proba(other)
        assert isinstance(proba, list) and [p.shape for p in proba] == [(n, 3), (n, 2)]
        assert clf.classes_[1].tolist() == ["no", "yes"]
        pred = clf.predict(other)
        assert pred.shape == (n, 2) and (pred[:, 1] == Y[:, 1]).mean() > 0.8
        if combine == "weighted":
            assert clf.weights_[0, 0] > 0.8 and clf.weights_[1, 1] > 0.8
    # score = mean over tasks of each task's accuracy, also as GridSearchCV's default
    expected = np.mean([(pred[:, 0] == Y[:, 0]).mean(), (pred[:, 1] == Y[:, 1]).mean()])
    assert clf.score(other, Y) == pytest.approx(expected)
    search = GridSearchCV(clf, {"combine": ["mean", "weighted"]}, cv=2).fit(other, Y)
    assert 0.5 < search.best_score_ <= 1
    with pytest.raises(ValueError, match="y has 2 tasks but the per-modality estimator is "
                                         "single-output"):
        LateFusionClassifier(LogisticRegression()).fit(other, Y)


def test_classes_missing_from_one_modality_are_aligned():
    rng = np.random.RandomState(0)
    n = 90
    y = np.repeat([0, 1, 2], 30)
    a = np.eye(3)[y] + 0.1 * rng.randn(n, 3)
    mask = y != 2  # modality 'a' never sees class 2
    Xb = ModalityBlocks({"a": a, "b": rng.randn(n, 2) + y[:, None]}, masks={"a": mask})
    for combine in ("mean", "weighted", "stack"):
        clf = LateFusionClassifier(LogisticRegression(), combine=combine, cv=3).fit(Xb, y)
        assert clf.estimators_["a"].classes_.tolist() == [0, 1]
        proba = clf.predict_proba(Xb)
        assert proba.shape == (n, 3)
        np.testing.assert_allclose(proba.sum(1), 1)


@pytest.mark.parametrize("combine", ["mean", "weighted", "stack"])
def test_regressor(combine):
    rng = np.random.RandomState(0)
    n = 300
    good = rng.randn(n, 3)
    Y = np.column_stack([good @ [1.0, -1.0, 0.5], good[:, 0] * 3])
    data = {"good": good.copy(), "noise": rng.randn(n, 4)}
    data["good"][:20] = np.nan  # dict input: all-NaN rows are absent
    reg = LateFusionRegressor(LinearRegression(), combine=combine, cv=3).fit(data, Y)
    pred = reg.predict(data)
    assert pred.shape == (n, 2)
    if combine != "mean":
        assert reg.score(data, Y) > 0.8
    if combine == "weighted":
        assert (reg.weights_[:, 0] > 0.95).all()
        assert reg.oof_scores_[0, 0] > 0.99
    single = LateFusionRegressor(Ridge(), combine=combine, cv=3).fit(data, Y[:, 0])
    assert single.predict(data).shape == (n,)


def test_dict_of_estimators_and_bad_names():
    Xb, y, _ = make_data(n=120)
    clf = LateFusionClassifier({"good": LogisticRegression(), "noise": DecisionTreeClassifier(
        max_depth=2)}).fit(Xb, y)
    assert isinstance(clf.estimators_["noise"], DecisionTreeClassifier)
    with pytest.raises(ValueError, match=r"missing \['noise'\], unknown \['audio'\]"):
        LateFusionClassifier({"good": LogisticRegression(), "audio": LogisticRegression()}
                             ).fit(Xb, y)
    with pytest.raises(ValueError, match=r"Blocks \['noise'\] were present at fit but are"):
        clf.predict(ModalityBlocks({"good": Xb.blocks["good"]}))
    with pytest.raises(ValueError, match=r"Block 'noise' has per-row shape \(6,\)"):
        clf.predict(ModalityBlocks({"good": Xb.blocks["good"],
                                    "noise": Xb.blocks["noise"].reshape(120, 6)}))
    with pytest.raises(AttributeError, match="no predict_proba"):
        from sklearn.svm import LinearSVC

        LateFusionClassifier(LinearSVC()).fit(Xb, y).predict(Xb)


def test_pickle_clone_grid_search(tmp_path):
    Xb, y, _ = make_data(n=200)
    clf = LateFusionClassifier(LogisticRegression(), combine="stack", cv=3).fit(Xb, y)
    joblib.dump(clf, tmp_path / "m.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "m.joblib").predict_proba(Xb),
                               clf.predict_proba(Xb))
    fresh = clone(clf)
    assert not hasattr(fresh, "estimators_") and fresh.get_params()["estimator__C"] == 1.0
    search = GridSearchCV(LateFusionClassifier(LogisticRegression(), combine="weighted", cv=2),
                          {"estimator__C": [0.01, 1.0]}, cv=2).fit(Xb, y)
    assert search.best_estimator_.predict(Xb).shape == (200,)


def test_after_modality_fusion_in_a_pipeline():
    rng = np.random.RandomState(0)
    n = 120
    y = rng.randint(0, 2, n)
    words = np.array(["red apple", "green pear"])
    X = pd.DataFrame({"text": words[y], "age": rng.randn(n), "h": rng.randn(n)})
    X.loc[:9, ["age", "h"]] = np.nan
    fusion = ModalityFusion([("text", TfidfVectorizer(), "text"),
                             ("tab", StandardScaler(), ["age", "h"])])
    pipe = make_pipeline(fusion, LateFusionClassifier(LogisticRegression(), combine="weighted",
                                                      cv=3))
    pipe.fit(X, y)
    assert pipe.score(X, y) == 1.0
    assert pipe[-1].weights_[0, 0] > 0.9


def test_multitasknet_per_modality():
    from sklearn_mtml import MultiTaskNet

    Xb, y1, y2 = make_data(n=120)
    net = MultiTaskNet(max_epochs=2, random_state=0, device="cpu")
    # tasks with labels of different types (ints and strings), as MultiTaskNet allows
    Y = pd.DataFrame({"digit": y1, "word": np.where(y2 == 1, "yes", "no")})
    clf = LateFusionClassifier(net, combine="mean").fit(Xb, Y)
    proba = clf.predict_proba(Xb)
    assert [p.shape for p in proba] == [(120, 3), (120, 2)]
    assert clf.classes_[0].tolist() == [0, 1, 2] and clf.classes_[1].tolist() == ["no", "yes"]
    pred = clf.predict(Xb)
    assert pred.dtype == object and isinstance(pred[0, 0], (int, np.integer))
    assert 0 <= clf.score(Xb, Y) <= 1


# scikit-learn's common checks of the late-fusion estimators run in test_common.py.


@pytest.mark.filterwarnings("ignore:Number of classes in training fold:RuntimeWarning")
def test_out_of_fold_splits_are_shuffled_for_rows_sorted_by_label():
    # several tasks give a plain KFold; unshuffled, rows stored in label order leave whole
    # classes out of every training fold and the stacked combiner learns nothing useful
    rng = np.random.RandomState(0)
    y = np.sort(np.repeat(np.arange(5), 40))
    Y = np.column_stack([y, y >= 3])
    X = {"a": y[:, None] + 0.3 * rng.randn(200, 2), "b": rng.randn(200, 2)}
    base = MultiOutputClassifier(LogisticRegression(max_iter=500))
    model = LateFusionClassifier(base, combine="stack").fit(X, Y)
    in_order = LateFusionClassifier(base, combine="stack", cv=KFold(5)).fit(X, Y)
    assert model.score(X, Y) > 0.8
    assert model.score(X, Y) > in_order.score(X, Y) + 0.2


def test_sample_weight_of_zero_equals_leaving_the_rows_out():
    """Weights reach every per-modality estimator (a pipeline's last step) on its rows."""
    rng = np.random.RandomState(0)
    n = 200
    data = {"a": rng.randn(n, 3), "b": rng.randn(n, 2)}
    y = data["a"] @ [1.0, -1.0, 0.5] + data["b"][:, 0] + 0.1 * rng.randn(n)
    data["b"][:30] = np.nan  # absent in some rows
    weight = np.where(np.arange(n) % 4 == 0, 0.0, 1.0)
    kept = weight > 0
    for est in (Ridge(), make_pipeline(FunctionTransformer(), Ridge())):
        weighted = LateFusionRegressor(est).fit(data, y, sample_weight=weight)
        subset = LateFusionRegressor(est).fit({k: v[kept] for k, v in data.items()}, y[kept])
        np.testing.assert_allclose(weighted.predict(data), subset.predict(data), rtol=1e-6)


@pytest.mark.parametrize("combine", ["weighted", "stack"])
def test_sample_weight_reaches_the_priors_skills_and_final_estimators(combine):
    Xb, y, _ = make_data(n=240)
    weight = np.where(y == 0, 3.0, 1.0)
    clf = LateFusionClassifier(LogisticRegression(), combine=combine, cv=3)
    clf.fit(Xb, y, sample_weight=weight)
    expected = np.array([np.sum(weight * (y == c)) for c in range(3)]) / weight.sum()
    np.testing.assert_allclose(clf._prior_[0], expected)
    plain = clone(clf).fit(Xb, y)
    if combine == "weighted":  # the skills are weighted losses: other weights
        assert not np.allclose(clf.oof_scores_, plain.oof_scores_)
    else:  # the final estimator learned from weighted rows
        assert not np.allclose(clf.final_estimators_[0].coef_, plain.final_estimators_[0].coef_)
    assert clf.predict_proba(Xb)[:, 0].mean() > plain.predict_proba(Xb)[:, 0].mean()
