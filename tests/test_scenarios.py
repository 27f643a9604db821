"""The user scenarios of DESIGN.md section 1, end to end on the shipped real data."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtml import (
    AudioFeatures,
    ImageFeatures,
    ModalityFusion,
    MultiTaskNet,
    TextFeatures,
)
from sklearn_mtml.datasets import load_av_digits

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def av_table():
    X, Y, split = load_av_digits()
    rng = np.random.RandomState(0)
    n = len(X)
    X["text"] = [f"{rng.choice(['said', 'spoke', 'read'])} {WORDS[d] if rng.rand() < 0.5 else ''}"
                 for d in Y["digit"]]
    X["age"] = rng.uniform(20, 60, n)
    audio = X["audio"].copy()
    audio[::7] = None  # some rows lack audio: a missing modality
    X["audio"] = audio
    Y = Y.astype({"digit": object})
    Y.loc[::5, "speaker"] = None  # some rows lack a speaker label
    Y["duration"] = [len(a) / 8000 if a is not None else 0.4 for a in load_av_digits()[0]["audio"]]
    return X, Y, split


def fusion(**kwargs):
    return ModalityFusion([
        ("image", ImageFeatures(output="tensor"), "image"),
        ("audio", AudioFeatures(sr=8000, backend="torch"), "audio"),
        ("text", TextFeatures(dense=True), "text"),
        ("tabular", StandardScaler(), ["age"]),
    ], **kwargs)


@pytest.mark.slow
def test_design_scenario_pipeline_grid_search_joblib(av_table, tmp_path):
    X, Y, split = av_table
    tr, te = split == "train", split == "test"
    net = MultiTaskNet(
        tasks={"digit": "multiclass", "speaker": "multiclass", "duration": "regression"},
        architecture="shared_bottom", fusion="attention",
        loss_weights={"digit": 1.0, "speaker": 1.0, "duration": 0.5},
        max_epochs=25, lr=2e-3, batch_size=32, random_state=0,
    )
    Y = Y[["digit", "speaker", "duration"]]
    pipe = make_pipeline(fusion(), net)
    search = GridSearchCV(pipe, {
        "multitasknet__loss_weights": [{"digit": 1, "speaker": 1, "duration": w}
                                       for w in (0.1, 1.0)],
        "multitasknet__architecture": ["shared_bottom", "mmoe"],
    }, cv=2, n_jobs=1)
    search.fit(X[tr], Y[tr])
    path = tmp_path / "model.joblib"
    joblib.dump(search.best_estimator_, path)
    model = joblib.load(path)
    pred = model.predict(X[te])
    assert pred.shape == (te.sum(), 3)
    np.testing.assert_array_equal(pred, search.best_estimator_.predict(X[te]))
    proba = model.predict_proba(X[te])
    assert [p.shape[1] for p in proba] == [10, 6]
    scores = model[-1].score_tasks(model[0].transform(X[te]), Y[te])
    assert scores["digit"] > 0.7 and scores["speaker"] > 0.6 and scores["duration"] > 0.3
    assert np.isfinite(model.score(X[te], Y[te]))


@pytest.mark.slow
def test_early_fusion_serves_any_sklearn_estimator(av_table):
    X, Y, split = av_table
    tr, te = split == "train", split == "test"
    concat = fusion(output="concat").set_output(transform="pandas")
    clf = make_pipeline(concat, MultiOutputClassifier(HistGradientBoostingClassifier(
        max_iter=30, random_state=0)))
    Yc = Y[["digit", "accent"]].astype(str)
    clf.fit(X[tr], Yc[tr])
    assert (clf.predict(X[te])[:, 0] == Yc[te]["digit"].to_numpy()).mean() > 0.7
    reg = make_pipeline(fusion(output="concat"), Ridge()).fit(X[tr], Y["duration"][tr])
    assert reg.score(X[te], Y["duration"][te]) > 0.5
    names = concat.fit(X[tr]).get_feature_names_out()
    assert names[0].startswith("image__") and any(n.startswith("audio__") for n in names)


@pytest.mark.slow
def test_network_alone_on_a_dict_of_arrays_and_single_modality(av_table):
    X, Y, split = av_table
    images = np.stack(X["image"]).astype(np.float32)[:, None] / 16.0
    net = MultiTaskNet(max_epochs=20, random_state=0, batch_size=32)
    net.fit({"image": images}, Y[["digit", "accent"]])  # single modality, multi-task
    assert net.predict({"image": images}).shape == (len(X), 2)
    single = MultiTaskNet(max_epochs=5, random_state=0, fusion="gated")
    single.fit({"image": images, "age": X[["age"]].to_numpy()}, Y["digit"])  # multi-modal 1 task
    assert single.predict({"image": images, "age": X[["age"]].to_numpy()}).shape == (len(X),)


def test_missing_modality_at_predict_is_masked(av_table):
    X, Y, split = av_table
    tr, te = split == "train", split == "test"
    pipe = make_pipeline(fusion(), MultiTaskNet(fusion="attention", max_epochs=15,
                                                random_state=0, batch_size=32))
    pipe.fit(X[tr], Y[tr][["digit", "accent"]])
    no_audio = X[te].copy()
    no_audio["audio"] = None
    weights = pipe[-1].modality_weights(pipe[0].transform(no_audio))
    np.testing.assert_allclose(weights[:, 1], 0.0)
    assert pipe.predict(no_audio).shape == (te.sum(), 2)
    strict = make_pipeline(fusion(mask_missing=False), MultiTaskNet(max_epochs=1))
    with pytest.raises(ValueError, match="modality 'audio'"):
        strict.fit(X[tr], Y[tr][["digit"]])


def test_empty_dataframe_is_an_error():
    with pytest.raises(ValueError):
        make_pipeline(fusion(), MultiTaskNet(max_epochs=1)).fit(
            pd.DataFrame({"image": [], "audio": [], "text": [], "age": []}),
            pd.DataFrame({"digit": []}))
