"""CategoricalFeatures: categorical columns as token ids in one vocabulary, or one-hot."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_mtml import CategoricalFeatures, ModalityFusion, MultiTaskNet

pd = pytest.importorskip("pandas")


def shops():
    return pd.DataFrame({
        "shop": ["a", "b", "a", "b", "c", None, "a", "b"],
        "item": [7, 7, 9, 9, 7, 9, 7, np.nan],
    })


# ---------------------------------------------------------------- the vocabulary
def test_columns_share_one_vocabulary_with_offsets():
    cat = CategoricalFeatures().fit(shops())
    # shop: "c" is seen once (< min_frequency=2): it shares the unknown id of its column
    assert [c.tolist() for c in cat.categories_] == [["a", "b"], [7, 9]]
    assert cat.categories_[1].dtype.kind == "i"  # numeric IDs stay numbers
    assert cat.infrequent_categories_[0].tolist() == ["c"]
    assert cat.infrequent_categories_[1] is None
    # 0 missing | shop: 1 unknown, 2 "a", 3 "b" | item: 4 unknown, 5 7, 6 9
    assert cat.offsets_.tolist() == [1, 4]
    assert cat.vocabulary_size_ == 7
    ids = cat.transform(shops())
    assert ids.dtype == np.int64 and ids.shape == (8, 2)
    np.testing.assert_array_equal(ids, [[2, 5], [3, 5], [2, 6], [3, 6], [1, 5], [0, 6],
                                         [2, 5], [3, 0]])
    # every id of a column lies in its own range: no collision between columns
    assert set(ids[:, 0]) <= {0, 1, 2, 3} and set(ids[:, 1]) <= {0, 4, 5, 6}
    assert cat.get_feature_names_out().tolist() == ["shop", "item"]


def test_unknown_and_rare_categories_share_the_unknown_id():
    X = pd.DataFrame({"id": ["x"] * 5 + ["y"] * 3 + ["rare1", "rare2"]})
    cat = CategoricalFeatures(min_frequency=2).fit(X)
    unknown = cat.offsets_[0]
    out = cat.transform(pd.DataFrame({"id": ["x", "y", "rare1", "never seen", "rare2"]}))
    assert out[:, 0].tolist() == [unknown + 1, unknown + 2, unknown, unknown, unknown]
    assert sorted(cat.infrequent_categories_[0].tolist()) == ["rare1", "rare2"]
    # min_frequency=None (or 1) keeps every category; the unknown id is still there
    keep = CategoricalFeatures(min_frequency=None).fit(X)
    assert len(keep.categories_[0]) == 4 and keep.vocabulary_size_ == 6
    assert keep.transform(pd.DataFrame({"id": ["never seen"]}))[0, 0] == keep.offsets_[0]
    # a fraction of the rows, and a cap on the ids per column (unknown included)
    assert CategoricalFeatures(min_frequency=0.35).fit(X).categories_[0].tolist() == ["x"]
    capped = CategoricalFeatures(min_frequency=None, max_categories=2).fit(X)
    assert capped.categories_[0].tolist() == ["x"]


@pytest.mark.parametrize("missing", [None, np.nan, "pd.NA"])
def test_missing_values_are_id_zero_and_all_missing_rows_are_absent(missing):
    missing = pd.NA if missing == "pd.NA" else missing
    X = pd.DataFrame({"a": pd.Series(["u", "v", missing, "u", missing, "v"], dtype=object),
                      "b": pd.Series([1, 2, 2, missing, missing, 1], dtype=object)})
    cat = CategoricalFeatures().fit(X)
    ids = cat.transform(X)
    assert ids[2, 0] == 0 and ids[3, 1] == 0 and (ids[4] == 0).all()
    assert (ids[[0, 1, 5]] > 0).all()
    assert cat.absent_items(X).tolist() == [False, False, False, False, True, False]
    onehot = CategoricalFeatures(output="onehot", dense=True).fit(X).transform(X)
    assert (onehot[4] == 0).all() and onehot[2].sum() == 1  # only column b's indicator


def test_pandas_categorical_and_nullable_columns():
    X = pd.DataFrame({"c": pd.Categorical(["x", "y", None, "x", "y"]),
                      "n": pd.array([3, 4, 4, None, 3], dtype="Int64")})
    cat = CategoricalFeatures().fit(X)
    assert [c.tolist() for c in cat.categories_] == [["x", "y"], [3, 4]]
    ids = cat.transform(X)
    assert ids[2, 0] == 0 and ids[3, 1] == 0


def test_one_column_as_series_list_or_1d_array():
    series = pd.Series(["a", "b", "a", "b"], name="shop")
    cat = CategoricalFeatures().fit(series)
    assert cat.get_feature_names_out().tolist() == ["shop"]
    expected = cat.transform(series)
    assert expected.shape == (4, 1)
    plain = CategoricalFeatures().fit(["a", "b", "a", "b"])
    np.testing.assert_array_equal(plain.transform(np.array(["a", "b", "a", "b"])), expected)
    assert plain.get_feature_names_out().tolist() == ["x0"]


def test_set_output_pandas_and_input_is_not_modified():
    X = shops()
    before = X.copy()
    cat = CategoricalFeatures().set_output(transform="pandas").fit(X)
    out = cat.transform(X)
    assert list(out.columns) == ["shop", "item"]
    pd.testing.assert_frame_equal(X, before)
    arr = np.array([["a", None], ["b", "z"]], dtype=object)
    CategoricalFeatures(min_frequency=None).fit_transform(arr)
    assert arr[0, 1] is None


# ---------------------------------------------------------------- one-hot output
def test_onehot_output_matches_the_ids():
    X = shops()
    ids = CategoricalFeatures().fit_transform(X)
    onehot = CategoricalFeatures(output="onehot").fit(X)
    M = onehot.transform(X)
    assert sp.issparse(M) and M.dtype == np.float32 and M.shape == (8, 6)
    dense = M.toarray()
    for i, row in enumerate(ids):
        assert set(np.flatnonzero(dense[i]) + 1) == {v for v in row if v}
    assert onehot.get_feature_names_out().tolist() == [
        "shop_infrequent_or_unknown", "shop_a", "shop_b",
        "item_infrequent_or_unknown", "item_7", "item_9"]
    assert not hasattr(onehot, "vocabulary_size_")  # numbers, not token ids
    assert isinstance(CategoricalFeatures(output="onehot", dense=True).fit_transform(X),
                      np.ndarray)


def test_onehot_into_logistic_regression():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 30, size=400)
    label_of = rng.randint(0, 3, size=30)
    X = pd.DataFrame({"product": [f"p{i}" for i in ids]})
    y = label_of[ids]
    pipe = make_pipeline(CategoricalFeatures(output="onehot"), LogisticRegression(C=10.0))
    pipe.fit(X[:300], y[:300])
    assert pipe.score(X[300:], y[300:]) > 0.9  # chance: about 0.4
    fusion = ModalityFusion([("product", CategoricalFeatures(output="onehot"), ["product"])],
                            output="concat")
    Z = fusion.fit_transform(X)
    assert fusion.get_feature_names_out()[1] == "product__product_p0"
    assert Z.shape[1] == len(fusion.get_feature_names_out())


# ---------------------------------------------------------------- fusion and the network
def test_modality_fusion_declares_a_token_block():
    X = shops().assign(age=np.arange(8.0))
    fusion = ModalityFusion([("cat", CategoricalFeatures(), ["shop", "item"]),
                             ("tab", "passthrough", ["age"])])
    Xb = fusion.fit_transform(X)
    assert Xb.vocab_sizes == {"cat": 7}
    assert Xb["cat"].dtype == np.int64 and Xb["cat"].shape == (8, 2)
    assert Xb.masks["cat"].tolist() == [True] * 8
    one = ModalityFusion([("shop", CategoricalFeatures(), "shop")]).fit_transform(X)
    assert one.vocab_sizes == {"shop": 4} and one.masks["shop"].tolist()[5] is False
    onehot = ModalityFusion([("cat", CategoricalFeatures(output="onehot"), ["shop"])])
    assert onehot.fit_transform(X).vocab_sizes == {}


def _id_data(n, rng, label_of):
    ids = rng.randint(0, len(label_of), size=n)
    X = pd.DataFrame({"product": [f"p{i:02d}" for i in ids], "noise": rng.randn(n)})
    Y = pd.DataFrame({"kind": label_of[ids], "price": ids % 5 + 0.1 * rng.randn(n)})
    return X, Y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_learns_a_task_that_depends_only_on_the_id(seed):
    rng = np.random.RandomState(0)
    label_of = rng.randint(0, 4, size=40)
    X, Y = _id_data(600, rng, label_of)
    X_new, Y_new = _id_data(400, rng, label_of)
    model = make_pipeline(
        ModalityFusion([("product", CategoricalFeatures(), ["product"]),
                        ("tab", "passthrough", ["noise"])]),
        MultiTaskNet(random_state=seed, max_epochs=30))
    model.fit(X, Y)
    net = model[-1]
    assert net.layout_.vocab_sizes == {"product": 42}
    scores = net.score_tasks(model[0].transform(X_new), Y_new)
    chance = np.bincount(Y["kind"]).max() / len(Y)  # about 0.3
    # measured: accuracy 1.00, R² 0.96, noise only 0.30-0.33, for seeds 0-2 with 1 and 2
    # torch threads
    assert scores["kind"] > max(0.9, chance + 0.5)
    assert scores["price"] > 0.8
    # the noise column alone cannot do it
    noise_only = MultiTaskNet(random_state=seed, max_epochs=30).fit(X[["noise"]], Y)
    assert noise_only.score_tasks(X_new[["noise"]], Y_new)["kind"] < chance + 0.15


# ---------------------------------------------------------------- estimator behaviour
def test_pickle_and_clone():
    cat = CategoricalFeatures(min_frequency=3, max_categories=10).fit(shops())
    again = pickle.loads(pickle.dumps(cat))
    np.testing.assert_array_equal(again.transform(shops()), cat.transform(shops()))
    assert again.vocabulary_size_ == cat.vocabulary_size_
    fresh = clone(cat)
    assert fresh.get_params() == cat.get_params()
    assert not hasattr(fresh, "categories_")
    fusion = ModalityFusion([("cat", CategoricalFeatures(), ["shop", "item"])])
    fusion.fit(shops())
    blocks = pickle.loads(pickle.dumps(fusion)).transform(shops())
    assert blocks.vocab_sizes == {"cat": 7}


# ---------------------------------------------------------------- errors
def test_mixed_types_in_a_column_name_it():
    X = pd.DataFrame({"ok": ["a", "b"], "bad": pd.Series(["a", 1], dtype=object)})
    with pytest.raises(TypeError, match=r"column 'bad' holds both strings and numbers; "
                                        r"expected one type per column"):
        CategoricalFeatures().fit(X)
    lists = np.empty((2, 1), dtype=object)
    lists[0, 0], lists[1, 0] = [1], [2]
    with pytest.raises(TypeError, match=r"column 'x0' holds values of type list \(\[1\]\)"):
        CategoricalFeatures().fit(lists)


def test_type_or_width_changes_after_fit_are_errors():
    cat = CategoricalFeatures().fit(pd.DataFrame({"id": [1, 2, 1, 2]}))
    with pytest.raises(TypeError, match=r"column 'id' held number values at fit but holds "
                                        r"str values now"):
        cat.transform(pd.DataFrame({"id": ["1", "2"]}))
    with pytest.raises(ValueError, match="feature names"):
        cat.transform(pd.DataFrame({"other": [1, 2]}))
    with pytest.raises(ValueError, match="X has 2 features, but CategoricalFeatures is "
                                         "expecting 1"):
        CategoricalFeatures().fit([1, 2, 1]).transform(np.array([[1, 2]]))
    two = CategoricalFeatures().fit(np.array([[1, 2], [1, 2]]))
    with pytest.raises(ValueError, match="1-D array of 2 values.*2 columns were seen at fit. "
                                         "Reshape your data"):
        two.transform(np.array([1, 2]))


def test_bad_input_and_parameters():
    with pytest.raises(ValueError, match="every value is missing"):
        CategoricalFeatures().fit(pd.DataFrame({"a": [None, np.nan]}))
    with pytest.raises(ValueError, match="column 'a' holds an infinite value"):
        CategoricalFeatures().fit(pd.DataFrame({"a": [1.0, np.inf]}))
    with pytest.raises(TypeError, match="sparse input is not supported"):
        CategoricalFeatures().fit(sp.csr_matrix(np.eye(3)))
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        CategoricalFeatures().fit("abc")
    with pytest.raises(ValueError, match="0 sample"):
        CategoricalFeatures().fit(np.empty((0, 2), dtype=object))
    with pytest.raises(ValueError, match="expected a 2-D table .* shape \\(2, 2, 2\\)"):
        CategoricalFeatures().fit(np.zeros((2, 2, 2)))
    with pytest.raises(InvalidParameterError, match="'output' parameter .* must be a str "
                                                    "among"):
        CategoricalFeatures(output="embedding").fit(shops())
    with pytest.raises(InvalidParameterError, match="'min_frequency' parameter"):
        CategoricalFeatures(min_frequency=0).fit(shops())
    with pytest.raises(AttributeError, match="output='ids' only"):
        CategoricalFeatures(output="onehot").fit(shops()).vocabulary_size_  # noqa: B018


# ---------------------------------------------------------------- the categorical token settings
def test_category_vocabulary_reaches_the_encoder():
    import torch

    from sklearn_mtml.blocks import CategoryVocabulary, ModalityBlocks
    from sklearn_mtml.nn.encoders import CATEGORICAL_TOKEN_PARAMS, TokenEncoder, make_encoder

    cat = CategoricalFeatures().fit(shops())
    size = cat.vocabulary_size_
    assert isinstance(size, CategoryVocabulary) and size == 7 and repr(size) == "7"
    assert isinstance(pickle.loads(pickle.dumps(size)), CategoryVocabulary)
    Xb = ModalityFusion([("cat", CategoricalFeatures(), ["shop", "item"])]).fit_transform(shops())
    # kept through slicing, re-wrapping and pickling of the blocks
    for blocks in (Xb, Xb[:4], ModalityBlocks(Xb), pickle.loads(pickle.dumps(Xb))):
        assert isinstance(blocks.vocab_sizes["cat"], CategoryVocabulary)
    enc = make_encoder((2,), 16, vocab_size=size)
    assert isinstance(enc, TokenEncoder) and enc.pooling == CATEGORICAL_TOKEN_PARAMS["pooling"]
    assert enc.dropout.p == 0.0
    bound = 1 / np.sqrt(7)
    weight = enc.embedding.weight.detach()
    assert (weight[0] == 0).all() and weight.abs().max() <= bound
    ids = torch.tensor([[2, 5], [2, 0], [0, 0]])
    out = enc(ids)
    torch.testing.assert_close(out[0], weight[2] + weight[5])  # the sum of the columns
    torch.testing.assert_close(out[1], weight[2])              # a missing column adds nothing
    assert (out[2] == 0).all()                                 # all missing: zeros
    # a plain int keeps the text settings; encoder_params override the categorical ones
    plain = make_encoder((2,), 16, vocab_size=7)
    assert plain.pooling == "mean" and plain.dropout.p == 0.3
    assert make_encoder((2,), 16, vocab_size=size, pooling="mean").pooling == "mean"
    with pytest.raises(ValueError, match="Unknown token embedding init 'zeros'"):
        TokenEncoder((2,), 16, 7, init="zeros")


def test_network_reads_the_block_with_the_categorical_settings():
    X = shops().assign(age=np.arange(8.0))
    Y = pd.DataFrame({"t": [0, 1, 0, 1, 0, 1, 0, 1] * 1})
    fusion = ModalityFusion([("cat", CategoricalFeatures(), ["shop", "item"]),
                             ("tab", "passthrough", ["age"])])
    net = MultiTaskNet(max_epochs=2, random_state=0).fit(fusion.fit_transform(X), Y)
    encoder = net.module_.encoders["cat"]
    assert encoder.pooling == "sum" and encoder.dropout.p == 0.0
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(fusion.transform(X)),
                                  net.predict(fusion.transform(X)))
    override = MultiTaskNet(max_epochs=2, random_state=0,
                            module__encoder_params={"cat": {"pooling": "mean"}})
    override.fit(fusion.transform(X), Y)
    assert override.module_.encoders["cat"].pooling == "mean"
