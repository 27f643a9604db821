import pickle

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_mtml.features import TextFeatures

# ----------------------------------------------------------------------------- sklearn checks

# scikit-learn's common checks run in test_common.py, with their expected failures.


TEXTS = [
    "Love this dress, fits perfectly", "The fabric is cheap and thin", None,
    "Runs small, order a size up", "Beautiful colour, lovely dress", float("nan"),
    "Returned it: the zipper broke", "Perfect fit and lovely fabric",
]


@pytest.mark.parametrize(
    "params", [dict(), dict(dense=True), dict(svd_components=3, random_state=0),
               dict(output="sequence")]
)
def test_estimator_contract_on_texts(params):
    est = TextFeatures(**params)
    with pytest.raises(NotFittedError):
        est.transform(TEXTS)
    assert est.fit(TEXTS) is est
    Xt = est.transform(TEXTS)

    def dense(a):
        return a.toarray() if sparse.issparse(a) else a

    before = dict(vars(est))
    np.testing.assert_array_equal(dense(est.fit(TEXTS).transform(TEXTS)), dense(Xt))
    np.testing.assert_array_equal(dense(est.transform(TEXTS[::-1])), dense(Xt)[::-1])
    np.testing.assert_array_equal(dense(est.transform(TEXTS[3:5])), dense(Xt)[3:5])
    assert vars(est).keys() == before.keys()
    np.testing.assert_array_equal(dense(pickle.loads(pickle.dumps(est)).transform(TEXTS)),
                                  dense(Xt))
    np.testing.assert_array_equal(dense(clone(est).fit_transform(TEXTS)), dense(Xt))
    assert len(est.get_feature_names_out()) == Xt.shape[1]


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def reviews(shared_data):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(shared_data / "womens_ecommerce" / "womens_ecommerce.csv.gz", nrows=4000)
    return df.iloc[:3000], df.iloc[3000:]


def test_reviews_recommendation(reviews):
    train, test = reviews
    assert train["Review Text"].isna().any()  # real missing texts, kept as zero rows
    y_train, y_test = train["Recommended IND"], test["Recommended IND"]
    majority = max(y_test.mean(), 1 - y_test.mean())
    pipe = make_pipeline(TextFeatures(), LogisticRegression(max_iter=1000, C=10))
    acc = pipe.fit(train["Review Text"], y_train).score(test["Review Text"], y_test)
    assert acc > majority + 0.03, (acc, majority)


def test_grid_search_over_text_params(reviews):
    train, _ = reviews
    sub = train.iloc[:600]
    pipe = make_pipeline(TextFeatures(), LogisticRegression(max_iter=500))
    search = GridSearchCV(pipe, {"textfeatures__sublinear_tf": [False, True],
                                 "textfeatures__max_features": [200, None]}, cv=2)
    search.fit(sub["Review Text"], sub["Recommended IND"])
    assert search.best_score_ > 0.5


# ----------------------------------------------------------------------------- behaviour


def test_tfidf_output_and_missing_rows():
    est = TextFeatures().fit(TEXTS)
    Xt = est.transform(TEXTS)
    assert sparse.issparse(Xt) and Xt.format == "csr" and Xt.dtype == np.float32
    assert Xt.shape == (8, len(est.vectorizer_.vocabulary_))
    assert Xt[2].nnz == 0 and Xt[5].nnz == 0
    np.testing.assert_allclose(sparse.linalg.norm(Xt[[0, 1, 3]], axis=1), 1.0, rtol=1e-6)
    assert "dress" in est.get_feature_names_out()
    svd = TextFeatures(svd_components=4, random_state=0).fit(TEXTS)
    Z = svd.transform(TEXTS)
    assert Z.shape == (8, 4) and Z.dtype == np.float32 and (Z[2] == 0).all()
    assert svd.get_feature_names_out().tolist() == ["svd0", "svd1", "svd2", "svd3"]
    with pytest.raises(ValueError, match="every row of the modality column is missing"):
        TextFeatures().fit([None, np.nan])


def test_set_output_pandas():
    pd = pytest.importorskip("pandas")
    col = pd.Series(TEXTS, index=range(10, 18), name="review")
    out = TextFeatures(dense=True).set_output(transform="pandas").fit(col).transform(col)
    assert list(out.index) == list(range(10, 18)) and "dress" in out.columns
    with pytest.raises(ValueError, match="sparse matrix.*dense output"):
        TextFeatures().set_output(transform="pandas").fit(col).transform(col)
    seq = TextFeatures(output="sequence").set_output(transform="pandas").fit(col.to_frame())
    assert seq.transform(col.to_frame()).columns[0] == "token0"


def test_sequence_output():
    texts = ["the dress the dress fits", "a lovely lovely dress", None, "unseen words here"]
    est = TextFeatures(output="sequence").fit(texts[:2] + [None])
    # frequencies: dress 3, lovely 2, the 2, fits 1 (ties broken alphabetically)
    assert est.vocabulary_ == {"dress": 2, "lovely": 3, "the": 4, "fits": 5}
    assert est.max_length_ == 5
    S = est.transform(texts)
    assert S.dtype == np.int64 and S.shape == (4, 5)
    np.testing.assert_array_equal(S[0], [4, 2, 4, 2, 5])
    np.testing.assert_array_equal(S[1], [3, 3, 2, 0, 0])  # "a" is no token; padded with 0
    np.testing.assert_array_equal(S[2], 0)  # missing
    np.testing.assert_array_equal(S[3], [1, 1, 1, 0, 0])  # unknown tokens
    short = TextFeatures(output="sequence", max_length=2, max_features=2).fit(texts)
    np.testing.assert_array_equal(short.transform(texts[:2]), [[1, 2], [3, 3]])


def test_bad_input_messages():
    with pytest.raises(TypeError, match=r"row 1: expected a string .* got int"):
        TextFeatures().fit(["fine text", 3])
    with pytest.raises(TypeError, match=r"row 0: expected a string .* got bytes"):
        TextFeatures().fit([b"bytes"])
    with pytest.raises(TypeError, match="got a single str"):
        TextFeatures().fit("just one string")
    with pytest.raises(ValueError, match="empty vocabulary"):
        TextFeatures(stop_words="english").fit(["the", "and"])
    for params, pattern in [
        (dict(output="bow"), "'output' parameter"),
        (dict(max_features=0), "'max_features' parameter"),
        (dict(ngram_range=(2, 1)), "'ngram_range' parameter must be a pair"),
        (dict(svd_components=50), "svd_components=50 must be smaller than the vocabulary"),
        (dict(max_length=0), "'max_length' parameter"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            TextFeatures(**params).fit(TEXTS)


def test_joblib_roundtrip(tmp_path):
    for est in (TextFeatures(svd_components=3, random_state=0), TextFeatures(output="sequence")):
        est.fit(TEXTS)
        joblib.dump(est, tmp_path / "t.joblib")
        back = joblib.load(tmp_path / "t.joblib")
        np.testing.assert_array_equal(back.transform(TEXTS), est.transform(TEXTS))
