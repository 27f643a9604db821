"""ModalityFusion: blocks and concat outputs, masks, errors, sklearn integration."""

from __future__ import annotations

import re

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_mtml.blocks import ModalityBlocks
from sklearn_mtml.fusion import ModalityFusion

WORDS = ["cat", "dog", "bird", "fish", "lion", "wolf", "bear", "frog"]


def _missing(item) -> bool:
    return item is None or (isinstance(item, float) and np.isnan(item))


def _stack_seq(col) -> np.ndarray:
    """A 'sequence transformer': per-row (T, F) arrays, None/NaN → zeros."""
    return np.stack([np.zeros((6, 3)) if _missing(s) else np.asarray(s, float) for s in col])


def _stack_img(col) -> np.ndarray:
    """An 'image transformer': per-row (H, W) arrays → (n, 1, H, W)."""
    return np.stack([np.zeros((4, 4)) if _missing(s) else s for s in col])[:, None]


def make_frame(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.RandomState(seed)
    label = rng.randint(0, 2, n)
    seqs = [rng.randn(6, 3) + label[i] for i in range(n)]
    imgs = [rng.rand(4, 4) for _ in range(n)]
    text = [" ".join(rng.choice(WORDS[:4] if label[i] else WORDS[4:], 3)) for i in range(n)]
    X = pd.DataFrame({"seq": seqs, "img": imgs, "text": text,
                      "age": rng.randn(n) + label, "height": rng.randn(n)},
                     index=np.arange(100, 100 + n))
    X.loc[X.index[3], "seq"] = None
    X.loc[X.index[7], "img"] = np.nan
    X.loc[X.index[5], ["age", "height"]] = np.nan
    X.loc[X.index[6], "age"] = np.nan  # partly missing tabular row: present
    Y = pd.DataFrame({"label": label, "other": (rng.rand(n) > 0.5).astype(int)})
    return X, Y



def make_fusion(**kwargs) -> ModalityFusion:
    return ModalityFusion([
        ("seq", FunctionTransformer(_stack_seq), "seq"),
        ("img", FunctionTransformer(_stack_img), "img"),
        ("text", TfidfVectorizer(), "text"),
        ("tab", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "height"]),
    ], **kwargs)


def test_is_a_column_transformer():
    assert isinstance(make_fusion(), ColumnTransformer)


def test_blocks_output_shapes_and_masks():
    X, _ = make_frame()
    fusion = make_fusion()
    Xb = fusion.fit_transform(X)
    assert isinstance(Xb, ModalityBlocks)
    assert Xb.names == fusion.block_names_ == ["seq", "img", "text", "tab"]
    assert Xb.blocks["seq"].shape == (60, 6, 3)
    assert Xb.blocks["img"].shape == (60, 1, 4, 4)
    assert sp.issparse(Xb.blocks["text"]) and Xb.blocks["text"].shape == (60, 8)
    assert Xb.blocks["tab"].shape == (60, 2)
    assert fusion.block_shapes_ == {"seq": (6, 3), "img": (1, 4, 4), "text": (8,), "tab": (2,)}
    assert fusion.block_columns_ == {"seq": ["seq"], "img": ["img"], "text": ["text"],
                                     "tab": ["age", "height"]}
    assert np.flatnonzero(~Xb.masks["seq"]).tolist() == [3]
    assert np.flatnonzero(~Xb.masks["img"]).tolist() == [7]
    assert np.flatnonzero(~Xb.masks["tab"]).tolist() == [5]  # row 6 is only partly NaN
    assert Xb.masks["text"].all()
    assert fusion.absent_counts_ == {"seq": 1, "img": 1, "text": 0, "tab": 1}
    names = fusion.get_feature_names_out()
    assert len(names) == 18 + 16 + 8 + 2
    assert names[0] == "seq__x0" and "text__cat" in names and names[-1] == "tab__height"
    assert Xb.concat_feature_names().tolist() == names.tolist()
    # transform on new rows gives the same layout
    Xt = fusion.transform(X.iloc[:5])
    assert Xt.names == Xb.names and len(Xt) == 5 and not Xt.masks["seq"][3]


def test_concat_output_and_pandas():
    X, _ = make_frame()
    fusion = make_fusion(output="concat")
    M = fusion.fit_transform(X)
    names = fusion.get_feature_names_out()
    assert M.shape == (60, len(names)) and not sp.issparse(M)
    np.testing.assert_allclose(M[:, :18], _stack_seq(X["seq"]).reshape(60, -1))
    assert fusion.output_indices_["img"] == slice(18, 34)
    np.testing.assert_allclose(M[:, fusion.output_indices_["tab"]],
                               StandardScaler().fit_transform(
                                   SimpleImputer().fit_transform(X[["age", "height"]])))
    fusion.set_output(transform="pandas")
    frame = fusion.fit_transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert frame.columns.tolist() == names.tolist()
    assert frame.index.tolist() == X.index.tolist()
    np.testing.assert_allclose(frame.to_numpy(), M)
    assert isinstance(fusion.transform(X.iloc[:3]), pd.DataFrame)
    # the sparse TfidfVectorizer block is densified into the frame; sub-transformers untouched
    assert not hasattr(fusion.named_transformers_["tab"], "_sklearn_output_config")
    # blocks stay arrays with a pandas configuration
    Xb = fusion.set_params(output="blocks").fit_transform(X)
    assert isinstance(Xb.blocks["tab"], np.ndarray)


def test_sparse_concat_follows_sparse_threshold():
    X, _ = make_frame()
    fusion = ModalityFusion([("text", TfidfVectorizer(), "text")], output="concat",
                            sparse_threshold=1.0)
    assert sp.issparse(fusion.fit_transform(X)) and fusion.sparse_output_
    dense = fusion.set_params(sparse_threshold=0.0).fit_transform(X)
    assert not sp.issparse(dense)
    # density counts flattened 3-D/4-D blocks in full (8 sparse of 44 columns: dense-ish)
    fusion = make_fusion(output="concat", sparse_threshold=0.5)
    assert not sp.issparse(fusion.fit_transform(X)) and not fusion.sparse_output_
    assert sp.issparse(fusion.set_params(sparse_threshold=0.99).fit_transform(X))


def test_pipelines_with_sklearn_estimators():
    X, Y = make_frame()
    ridge = make_pipeline(make_fusion(output="concat"), Ridge()).fit(X, Y["label"])
    assert ridge.predict(X).shape == (60,)
    hgb = make_pipeline(
        make_fusion(output="concat", sparse_threshold=0.0),
        MultiOutputClassifier(HistGradientBoostingClassifier(max_iter=10)),
    ).fit(X, Y)
    assert hgb.predict(X).shape == (60, 2) and hgb.score(X, Y) > 0.5


def test_remainder_drop_passthrough_and_selectors():
    X, _ = make_frame()
    fusion = ModalityFusion([("text", TfidfVectorizer(), "text"), ("img", "drop", "img"),
                             ("seq", "drop", "seq")],
                            remainder="passthrough")
    Xb = fusion.fit_transform(X)
    assert Xb.names == ["text", "remainder"]
    assert Xb.blocks["remainder"].shape == (60, 2)
    assert fusion.block_columns_["remainder"] == ["age", "height"]
    assert not Xb.masks["remainder"][5]
    sel = ModalityFusion([("tab", StandardScaler(), make_column_selector(dtype_include=float))],
                         remainder=StandardScaler())
    with pytest.raises(ValueError):  # remainder transformer on object columns
        sel.fit(X)
    sel = ModalityFusion([("tab", "passthrough", make_column_selector(dtype_include=float))])
    Xb = sel.fit_transform(X)
    assert Xb.names == ["tab"] and Xb.blocks["tab"].shape == (60, 2)
    assert sel.get_feature_names_out().tolist() == ["tab__age", "tab__height"]


def test_integer_columns_on_arrays_and_dict_input():
    rng = np.random.RandomState(0)
    A = rng.randn(20, 4)
    A[2, :2] = np.nan
    fusion = ModalityFusion([("a", StandardScaler(), [0, 1]), ("b", "passthrough", [2, 3])])
    Xb = fusion.fit_transform(A)
    assert Xb.names == ["a", "b"] and not Xb.masks["a"][2] and Xb.masks["b"][2]
    assert fusion.get_feature_names_out().tolist() == ["a__x0", "a__x1", "b__x2", "b__x3"]
    X, _ = make_frame(10)
    as_dict = {"text": X["text"].tolist(), "seq": np.stack(_stack_seq(X["seq"]))}
    fusion = ModalityFusion([("text", TfidfVectorizer(), "text"),
                             ("seq", FunctionTransformer(_stack_seq), "seq")])
    Xb = fusion.fit_transform(as_dict)
    assert Xb.blocks["seq"].shape == (10, 6, 3)


def test_mask_missing_false():
    X, _ = make_frame()
    fusion = make_fusion(mask_missing=False)
    with pytest.raises(ValueError, match=r"modality 'seq' \(column 'seq'\) is missing in row 3 "
                                         r"\(index 103\) \(mask_missing=False\)"):
        fusion.fit(X)
    full = X.drop(index=X.index[[3, 5, 7]])
    Xb = fusion.fit_transform(full)
    assert all(m.all() for m in Xb.masks.values())
    with pytest.raises(ValueError, match=re.escape(
            "modality 'seq' (column 'seq') is missing in row 3 (index 103) but was required "
            "at fit (mask_missing=False)")):
        fusion.transform(X)
    with pytest.raises(ValueError, match=r"modality 'tab' \(columns \['age', 'height'\]\)"):
        fusion.transform(X.drop(index=X.index[[3, 7]]))


def test_bad_input_errors():
    X, _ = make_frame()
    with pytest.raises(ValueError, match=r"columns \['audio'\] of block 'audio' are not in X"):
        ModalityFusion([("audio", StandardScaler(), "audio")]).fit(X)
    with pytest.raises(ValueError, match=r"duplicate block names \['tab'\]"):
        ModalityFusion([("tab", StandardScaler(), ["age"]),
                        ("tab", StandardScaler(), ["height"])]).fit(X)
    with pytest.raises(ValueError, match=r"block 'tab' selects columns by name .*needs a pandas "
                                         "DataFrame.*got ndarray"):
        ModalityFusion([("tab", StandardScaler(), ["age"])]).fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="X has 0 rows"):
        make_fusion().fit(X.iloc[:0])
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        make_fusion().fit(pd.DataFrame(index=range(3)))
    bad_rows = FunctionTransformer(lambda d: np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"block 'bad' returned 3 rows for 60 input rows"):
        ModalityFusion([("bad", bad_rows, ["age"])]).fit(X)
    one_d = FunctionTransformer(lambda d: np.zeros(len(d)))
    with pytest.raises(ValueError, match=r"block 'flat' returned ndarray of shape \(60,\)"):
        ModalityFusion([("flat", one_d, ["age"])]).fit(X)
    fusion = make_fusion().fit(X)
    with pytest.raises(ValueError, match=r"columns \['text'\] of block 'text' were present at "
                                         r"fit but are not in X"):
        fusion.transform(X.drop(columns="text"))
    with pytest.raises(ValueError, match=r"columns \['age', 'height'\] of block 'tab'"):
        fusion.transform(X.drop(columns=["age", "height"]))
    longer = X.copy()
    longer["seq"] = [np.zeros((7, 3))] * len(X)
    with pytest.raises(ValueError, match=r"block 'seq' has per-row shape \(7, 3\) at transform "
                                         r"but \(6, 3\) at fit"):
        fusion.transform(longer)
    with pytest.raises(ValueError, match="output"):
        make_fusion(output="stack").fit(X)
    with pytest.raises(ValueError, match="no block to output"):
        ModalityFusion([("t", "drop", "text")]).fit(X)


def test_n_jobs_pickle_clone(tmp_path):
    X, _ = make_frame()
    ref = make_fusion().fit_transform(X)
    with joblib.parallel_config(backend="threading"):  # no process start-up in tests
        par = make_fusion(n_jobs=2).fit(X)
        assert par.transform(X) == ref
        joblib.dump(par, tmp_path / "f.joblib")
        loaded = joblib.load(tmp_path / "f.joblib")
        assert loaded.transform(X) == ref
    cl = clone(par)
    assert cl.get_params()["text__lowercase"] is True and not hasattr(cl, "transformers_")
    cl.set_params(text__max_features=3, n_jobs=None)
    assert cl.fit_transform(X).blocks["text"].shape == (60, 3)


def test_grid_search_nested_parameter_concat():
    X, Y = make_frame()
    pipe = make_pipeline(make_fusion(output="concat"), LogisticRegression())
    search = GridSearchCV(pipe, {"modalityfusion__text__max_features": [2, 8]}, cv=3)
    search.fit(X, Y["label"])
    assert search.best_params_["modalityfusion__text__max_features"] in (2, 8)
    assert search.best_score_ > 0.8


def test_pipeline_with_multitasknet_attention():
    from sklearn_mtml import MultiTaskNet

    X, Y = make_frame()
    net = MultiTaskNet(max_epochs=2, fusion="attention", batch_size=32, random_state=0,
                       device="cpu")
    pipe = make_pipeline(make_fusion(), net)
    search = GridSearchCV(pipe, {"modalityfusion__text__max_features": [4, 8]}, cv=2)
    search.fit(X, Y)
    best = search.best_estimator_
    assert best.predict(X).shape == (60, 2)
    Xb = best[0].transform(X)
    w = best[-1].modality_weights(Xb)
    assert w.shape == (60, 4)
    assert w[3, 0] == 0 and w[7, 1] == 0 and w[5, 3] == 0  # absent modalities weigh 0
    np.testing.assert_allclose(w.sum(1), 1, rtol=1e-5)


def test_with_sklearn_mtml_feature_transformers():
    """Integration with the package's modality transformers, when they are available."""
    from sklearn_mtml import features

    if not hasattr(getattr(features, "AudioFeatures", None), "fit"):
        pytest.skip("sklearn_mtml.features.AudioFeatures is not available")
    rng = np.random.RandomState(0)
    clips = [rng.randn(2000).astype(np.float32) for _ in range(6)]
    clips[2] = None
    X = pd.DataFrame({"audio": clips, "age": rng.randn(6)})
    parts = [("audio", features.AudioFeatures(sr=8000, output="sequence"), "audio"),
             ("tab", StandardScaler(), ["age"])]
    if hasattr(getattr(features, "TextFeatures", None), "fit"):
        X["text"] = ["a cat", "a dog", None, "the cat", "no dog", "a bird"]
        parts.append(("text", features.TextFeatures(), "text"))
    if hasattr(getattr(features, "ImageFeatures", None), "fit"):
        X["image"] = [rng.rand(8, 8) for _ in range(5)] + [None]
        parts.append(("image", features.ImageFeatures(output="tensor"), "image"))
    fusion = ModalityFusion(parts)
    Xb = fusion.fit_transform(X)
    assert Xb.blocks["audio"].ndim == 3 and not Xb.masks["audio"][2]
    assert (Xb.blocks["audio"][2] == 0).all()
    if "text" in X:
        assert not Xb.masks["text"][2]
    if "image" in X:
        assert Xb.blocks["image"].ndim == 4 and not Xb.masks["image"][5]
    names = fusion.get_feature_names_out()
    assert names[0].startswith("audio__mfcc0")
    assert len(names) == Xb.concat().shape[1] == len(set(names))
    M = fusion.set_params(output="concat").fit_transform(X)
    assert M.shape == (6, len(names))
    frame = fusion.set_output(transform="pandas").fit_transform(X)
    assert frame.columns.tolist() == names.tolist()


# scikit-learn's common checks of ModalityFusion run in test_common.py.
