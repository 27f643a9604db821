"""ModalityBlocks: validation, row slicing through scikit-learn's utilities, conversions, CV."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, train_test_split
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils.validation import _num_samples, check_consistent_length

from sklearn_mtml.blocks import ModalityBlocks, flat_feature_names


@pytest.fixture
def blocks() -> ModalityBlocks:
    rng = np.random.RandomState(0)
    n = 10
    return ModalityBlocks(
        {
            "tab": rng.randn(n, 3),
            "seq": rng.randn(n, 4, 2),
            "img": rng.randn(n, 1, 2, 2),
            "text": sp.random(n, 5, density=0.4, format="coo", random_state=0),
        },
        masks={"seq": np.arange(n) % 3 != 0},
        feature_names={"tab": ["a", "b", "c"], "seq": ["f0", "f1"]},
    )


def test_basic_attributes(blocks):
    assert blocks.shape == (10, 4)
    assert len(blocks) == blocks.n_samples == 10
    assert blocks.names == ["tab", "seq", "img", "text"]
    assert blocks.n_blocks == 4 and blocks.ndim == 2
    assert sp.isspmatrix_csr(blocks.blocks["text"]) or sp.issparse(blocks.blocks["text"])
    assert blocks.blocks["text"].format == "csr"
    assert blocks.masks["tab"].all() and blocks.masks["seq"].sum() == 6
    assert blocks.presence.shape == (10, 4)
    assert "4 absent" in repr(blocks)
    assert blocks["tab"] is blocks.blocks["tab"]
    with pytest.raises(KeyError, match="No block 'nope'"):
        blocks["nope"]


def test_validation_errors():
    a, b = np.zeros((5, 2)), np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"Block 'b' has 4 rows but block 'a' has 5"):
        ModalityBlocks({"a": a, "b": b})
    with pytest.raises(ValueError, match=r"Masks \['zzz'\] name no block"):
        ModalityBlocks({"a": a}, masks={"zzz": np.ones(5, bool)})
    with pytest.raises(ValueError, match=r"Mask of block 'a' has shape \(4,\); expected \(5,\)"):
        ModalityBlocks({"a": a}, masks={"a": np.ones(4, bool)})
    with pytest.raises(ValueError, match="must be boolean"):
        ModalityBlocks({"a": a}, masks={"a": np.full(5, 0.5)})
    with pytest.raises(ValueError, match=r"Block 'a' has shape \(5,\)"):
        ModalityBlocks({"a": np.zeros(5)})
    with pytest.raises(ValueError, match="at least one block"):
        ModalityBlocks({})
    with pytest.raises(TypeError, match="mapping"):
        ModalityBlocks([a])
    with pytest.raises(ValueError, match=r"feature_names \['q'\] name no block"):
        ModalityBlocks({"a": a}, feature_names={"q": ["x"]})
    with pytest.raises(ValueError, match="3 feature names"):
        ModalityBlocks({"a": a}, feature_names={"a": ["x", "y", "z"]})
    # 0/1 integer masks are accepted
    assert ModalityBlocks({"a": a}, masks={"a": [1, 0, 1, 1, 1]}).masks["a"].dtype == bool


@pytest.mark.parametrize("key", [
    np.array([1, 3, 5]), [1, 3, 5], np.array([False, True, False, True, False, True,
                                                         False, False, False, False]),
])
def test_getitem_rows(blocks, key):
    sub = blocks[key]
    assert isinstance(sub, ModalityBlocks) and len(sub) == 3
    np.testing.assert_array_equal(sub.blocks["tab"], blocks.blocks["tab"][[1, 3, 5]])
    np.testing.assert_array_equal(sub.masks["seq"], blocks.masks["seq"][[1, 3, 5]])
    np.testing.assert_array_equal(sub.blocks["text"].toarray(),
                                  blocks.blocks["text"].toarray()[[1, 3, 5]])
    assert {k: v.tolist() for k, v in sub.feature_names.items()} == {
        "tab": ["a", "b", "c"], "seq": ["f0", "f1"]}


def test_getitem_slice_scalar_ellipsis(blocks):
    assert len(blocks[2:5]) == 3
    assert len(blocks[-1]) == 1
    assert len(blocks[np.array([1, 2]), ...]) == 2
    assert len(blocks[np.array([], dtype=int)]) == 0
    with pytest.raises(IndexError, match="Boolean row mask"):
        blocks[np.ones(3, bool)]
    with pytest.raises(IndexError, match="out of range"):
        blocks[[0, 10]]
    with pytest.raises(IndexError, match="rows only"):
        blocks[0, 1]
    with pytest.raises(IndexError, match="integer array"):
        blocks[np.array([0.5])]


def test_sklearn_row_utilities(blocks):
    """The exact paths of sklearn 1.9: _num_samples (shape) and _safe_indexing (_array_indexing)."""
    assert _num_samples(blocks) == 10
    check_consistent_length(blocks, np.zeros(10))
    X, y = indexable(blocks, np.arange(10))
    assert X is blocks
    for key, n in [(np.array([0, 2]), 2), (np.arange(10) < 4, 4), (slice(1, 4), 3), ([7], 1),
                   ((1, 3, 5), 3), (3, 1)]:
        out = _safe_indexing(blocks, key)
        assert isinstance(out, ModalityBlocks) and len(out) == n
    X_tr, X_te, y_tr, y_te = train_test_split(blocks, np.arange(10), test_size=0.3,
                                              random_state=0)
    assert isinstance(X_tr, ModalityBlocks) and len(X_tr) == 7 and len(X_te) == 3
    np.testing.assert_array_equal(X_te.blocks["tab"], blocks.blocks["tab"][y_te])
    folds = list(KFold(3).split(blocks))
    assert sum(len(te) for _, te in folds) == 10


def test_not_an_iterable_nor_an_array(blocks):
    with pytest.raises(TypeError, match="not iterable"):
        list(blocks)
    with pytest.raises(TypeError, match=r"\.concat\(\)"):
        np.asarray(blocks)


def test_concat_and_names(blocks):
    M = blocks.concat()
    assert M.shape == (10, 3 + 8 + 4 + 5) and M.dtype == np.float32 and sp.issparse(M)
    names = blocks.concat_feature_names()
    assert len(names) == M.shape[1]
    assert names[:3].tolist() == ["tab__a", "tab__b", "tab__c"]
    assert names[3:5].tolist() == ["seq__f0_t0", "seq__f1_t0"]
    assert names[11] == "img__x0" and names[-1] == "text__x4"
    dense = blocks.concat(sparse=False)
    assert isinstance(dense, np.ndarray)
    absent = ~blocks.masks["seq"]
    assert (dense[absent, 3:11] == 0).all()
    np.testing.assert_allclose(dense[~absent, 3:11],
                               blocks.blocks["seq"][~absent].reshape(-1, 8), rtol=1e-6)
    nan = blocks.concat(absent=np.nan)
    assert np.isnan(nan[absent, 3:11]).all() and not np.isnan(nan[~absent]).any()
    frame = blocks.concat(as_frame=True)
    assert list(frame.columns) == names.tolist()


def test_flat_feature_names():
    assert flat_feature_names(None, (2,)).tolist() == ["x0", "x1"]
    assert flat_feature_names(["a", "b"], (3, 2))[:3].tolist() == ["a_t0", "b_t0", "a_t1"]
    assert len(flat_feature_names(["c"], (2, 2, 1))) == 4
    assert flat_feature_names(["p", "q", "r"], (2,)).tolist() == ["x0", "x1"]


def test_dict_conversions():
    a = np.arange(12, dtype=float).reshape(4, 3)
    a[1] = np.nan
    b = np.ones((4, 2, 2))
    Xb = ModalityBlocks.from_dict({"a": a, "b": b})
    assert Xb.masks["a"].tolist() == [True, False, True, True] and Xb.masks["b"].all()
    assert (Xb.blocks["a"][1] == 0).all() and np.isnan(a[1]).all()  # input untouched
    back = Xb.to_dict(absent=np.nan)
    assert np.isnan(back["a"][1]).all() and back["b"] is Xb.blocks["b"]
    assert Xb.to_dict()["a"] is Xb.blocks["a"]


def test_pickle_and_equality(blocks, tmp_path):
    again = pickle.loads(pickle.dumps(blocks))
    assert again == blocks
    joblib.dump(blocks, tmp_path / "b.joblib")
    assert joblib.load(tmp_path / "b.joblib") == blocks
    assert blocks[[0, 1]] != blocks[[1, 0]]


def _cv_data(n: int = 90):
    rng = np.random.RandomState(0)
    tab = rng.randn(n, 4).astype(np.float32)
    seq = rng.randn(n, 5, 3).astype(np.float32)
    present = rng.rand(n) > 0.25
    Y = np.column_stack([(tab[:, 0] > 0).astype(int), tab[:, 1] * 2.0 + seq[:, 0, 0]])
    return ModalityBlocks({"tab": tab, "seq": seq}, masks={"seq": present}), Y


def test_cross_val_score_and_grid_search_with_multitasknet():
    from sklearn_mtml import MultiTaskNet

    Xb, Y = _cv_data()
    net = MultiTaskNet(max_epochs=2, batch_size=32, random_state=0, device="cpu")
    scores = cross_val_score(net, Xb, Y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    search = GridSearchCV(net, {"fusion": ["concat", "attention"]}, cv=2).fit(Xb, Y)
    assert search.best_estimator_.predict(Xb).shape == (90, 2)
    # the dict convention (all-NaN row = absent) reads the same blocks and masks
    fitted = search.best_estimator_
    np.testing.assert_allclose(fitted.predict(Xb), fitted.predict(Xb.to_dict(absent=np.nan)))
