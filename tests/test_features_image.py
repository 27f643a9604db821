import pickle
import sys

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklearn_mtml.features import ImageFeatures
from sklearn_mtml.features.image import hog

# ----------------------------------------------------------------------------- sklearn checks

# scikit-learn's common checks run in test_common.py, with their expected failures.


@pytest.mark.parametrize("output", ["pixels", "tensor", "hog", "histogram"])
def test_estimator_contract_on_images(output):
    # what the common checks (test_common.py) cannot run with non-square data, on real images
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(12, 16, 16), dtype=np.uint8)
    est = ImageFeatures(output=output, normalize="standard")
    with pytest.raises(NotFittedError):
        est.transform(X)
    assert est.fit(X) is est
    Xt = est.transform(X)
    assert Xt.dtype == np.float32 and len(Xt) == 12
    before = dict(vars(est))
    np.testing.assert_array_equal(est.fit(X).transform(X), Xt)  # idempotent
    np.testing.assert_array_equal(est.transform(X[::-1]), Xt[::-1])  # order invariant
    np.testing.assert_array_equal(est.transform(X[3:5]), Xt[3:5])  # subset invariant
    assert vars(est).keys() == before.keys()
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X), Xt)
    np.testing.assert_array_equal(clone(est).fit_transform(X), Xt)
    assert len(est.get_feature_names_out()) == Xt.reshape(12, -1).shape[1]


# ----------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def mnist(shared_data):
    data = np.load(shared_data / "mnist" / "mnist_test10k.npz")
    return data["X"], data["y"]


@pytest.mark.parametrize("output", ["pixels", "hog"])
def test_mnist_classification(mnist, output):
    X, y = mnist
    pipe = make_pipeline(ImageFeatures(output=output), LogisticRegression(max_iter=500))
    acc = pipe.fit(X[:1000], y[:1000]).score(X[1000:1500], y[1000:1500])
    assert acc > 0.8, acc


def test_paths_and_arrays_identical(mnist, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    X, _ = mnist
    grey = list(X[:4])
    rgb = [np.stack([x, 255 - x, x // 2], axis=-1) for x in X[4:7]]
    paths = []
    for k, img in enumerate(grey + rgb):
        path = tmp_path / f"img{k}.png"
        Image.fromarray(img).save(path)
        paths.append(path if k % 2 else str(path))
    for params in [dict(), dict(output="hog", color="grey"), dict(output="tensor", size=20)]:
        est = ImageFeatures(**params).fit(grey + rgb)
        np.testing.assert_array_equal(est.transform(paths), est.transform(grey + rgb))
    assert ImageFeatures().fit(grey + rgb).color_ == "rgb"
    assert ImageFeatures().fit(grey).transform(paths[:4]).shape == (4, 784)


def test_stacked_inputs_and_dataframe(mnist):
    pd = pytest.importorskip("pandas")
    X, _ = mnist
    est = ImageFeatures().fit(X[:5])
    ref = est.transform(X[:5])
    np.testing.assert_array_equal(ref, X[:5].reshape(5, -1) / np.float32(255))
    np.testing.assert_array_equal(ref, est.transform(X[:5].reshape(5, 784)))  # flattened
    np.testing.assert_array_equal(ref, est.transform(list(X[:5])))
    np.testing.assert_array_equal(ref, est.transform(X[:5, :, :, None]))  # (n, H, W, 1)
    df = pd.DataFrame({"image": list(X[:5])}, index=list("abcde"))
    est.set_output(transform="pandas")
    out = est.transform(df)
    assert list(out.index) == list("abcde") and out.columns[0] == "px_0_0_0"
    np.testing.assert_array_equal(out.to_numpy(), ref)
    tensor = ImageFeatures(output="tensor").set_output(transform="pandas").fit(df)
    assert tensor.transform(df["image"]).shape == (5, 1, 28, 28)  # 4-D stays an ndarray


# ----------------------------------------------------------------------------- behaviour


def test_resize_colour_and_normalisation():
    rng = np.random.default_rng(1)
    a = rng.random((30, 40, 3)).astype(np.float32)
    b = rng.random((20, 20)).astype(np.float32)
    est = ImageFeatures(output="tensor", size=(15, 10)).fit([a, b])
    T = est.transform([a, b])
    assert est.color_ == "rgb" and T.shape == (2, 3, 15, 10)
    np.testing.assert_array_equal(T[1, 0], T[1, 2])  # grey replicated
    assert abs(T[0].mean() - a.mean()) < 0.02  # resizing keeps the mean level
    const = np.full((32, 32), 0.25, dtype=np.float32)
    # a constant image carries no signal (zero row) unless detect_empty=False
    resized = ImageFeatures(size=8, detect_empty=False).fit_transform([const])
    np.testing.assert_allclose(resized, 0.25, atol=1e-6)
    grey = ImageFeatures(output="tensor", color="grey").fit([a]).transform([a])
    np.testing.assert_allclose(grey[0, 0], a @ np.array([0.299, 0.587, 0.114]), rtol=1e-5)
    u8 = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    std = ImageFeatures(normalize="standard").fit(u8)
    Z = std.transform(u8)
    assert abs(Z.mean()) < 1e-5 and abs(Z.std() - 1) < 1e-4
    raw = ImageFeatures(normalize=None).fit(u8).transform(u8)
    np.testing.assert_array_equal(raw, u8.reshape(5, -1).astype(np.float32))


def test_histogram():
    img = np.zeros((4, 4), dtype=np.uint8)
    img[:2] = 255
    est = ImageFeatures(output="histogram", bins=4).fit([img])
    np.testing.assert_array_equal(est.transform([img]), [[0.5, 0, 0, 0.5]])
    assert est.get_feature_names_out().tolist() == ["hist_0_0", "hist_0_1", "hist_0_2", "hist_0_3"]
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    out = ImageFeatures(output="histogram", bins=2).fit_transform([rgb])
    np.testing.assert_array_equal(out, [[0, 1, 1, 0, 1, 0]])


def test_hog_hand_computed_edges():
    img = np.zeros((8, 8))
    img[:, 4:] = 1.0  # vertical edge: horizontal gradients, orientation 0
    d = hog(img[None, None], orientations=9, cell=(4, 4), block=(1, 1)).reshape(2, 2, 9)
    # each cell has 4 pixels of magnitude 1 at angle 0 -> block vector e_0 after L2-Hys
    np.testing.assert_allclose(d[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(d[..., 1:], 0.0)
    d = hog(img.T[None, None], orientations=9, cell=(4, 4), block=(1, 1)).reshape(2, 2, 9)
    np.testing.assert_allclose(d[..., 4], 1.0, atol=1e-6)  # 90 degrees -> bin 4 of 20 degrees
    # L2-Hys: unit norm per block, larger blocks included
    rng = np.random.default_rng(0)
    d = hog(rng.random((3, 1, 32, 32)), orientations=9, cell=(8, 8), block=(2, 2))
    blocks = d.reshape(3, 9, 36)
    np.testing.assert_allclose(np.linalg.norm(blocks, axis=-1), 1.0, atol=1e-4)


def test_hog_rotation_by_90_degrees():
    # rotating the image by 90 degrees rotates the cells and shifts orientations by 90 degrees
    # (3 bins of 30 degrees)
    rng = np.random.default_rng(0)
    img = rng.random((24, 24))
    h0 = hog(img[None, None], orientations=6, cell=(4, 4), block=(1, 1)).reshape(6, 6, 6)
    h1 = hog(np.rot90(img)[None, None], orientations=6, cell=(4, 4), block=(1, 1))
    h1 = h1.reshape(6, 6, 6)
    np.testing.assert_allclose(h1, np.roll(np.rot90(h0, axes=(0, 1)), 3, axis=-1), atol=1e-12)


def test_missing_rows():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8))
    for output in ("pixels", "tensor", "hog", "histogram"):
        est = ImageFeatures(output=output, hog_cell=4)
        Xt = est.fit_transform([img, None, float("nan"), img])
        assert (Xt[1] == 0).all() and (Xt[2] == 0).all() and (Xt[0] != 0).any()
        np.testing.assert_array_equal(Xt[0], Xt[3])
    with pytest.raises(ValueError, match="every row of the modality column is missing"):
        ImageFeatures().fit([None, None])


# ----------------------------------------------------------------------------- bad input


def test_bad_input_messages(tmp_path):
    img = np.zeros((8, 8))
    with pytest.raises(ValueError, match=r"row 1: expected a 2-D grey image .* shape \(64,\)"):
        ImageFeatures().fit([img, np.zeros(64)])
    with pytest.raises(ValueError, match=r"row 0: expected a 2-D grey image .* \(8, 8, 2\)"):
        ImageFeatures().fit([np.zeros((8, 8, 2))])
    with pytest.raises(ValueError, match=r"row 0 is \(8, 8\) and row 1 is \(9, 9\)"):
        ImageFeatures().fit([img, np.zeros((9, 9))])
    est = ImageFeatures().fit([img])
    with pytest.raises(ValueError, match=r"row 1: image of size \(4, 4\) .* were \(8, 8\)"):
        est.transform([img, np.zeros((4, 4))])
    with pytest.raises(TypeError, match="row 0: expected an image array"):
        est.transform([{"a": 1}])
    with pytest.raises(ValueError, match="row 0: image contains NaN"):
        est.transform([np.full((8, 8), np.nan)])
    with pytest.raises(FileNotFoundError, match=r"row 1: image file not found: .*nope\.png"):
        est.transform([img, str(tmp_path / "nope.png")])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    pytest.importorskip("PIL")
    with pytest.raises(ValueError, match=r"row 0: cannot read image file .*bad\.png"):
        est.transform([bad])
    with pytest.raises(ValueError, match="width 10 is not a square"):
        ImageFeatures().fit(np.zeros((3, 10)))
    for params, pattern in [
        (dict(size=0), "'size' parameter"),
        (dict(size=(8, -1)), "'size' parameter must be a positive int or a pair"),
        (dict(output="edges"), "'output' parameter"),
        (dict(color="cmyk"), "'color' parameter"),
        (dict(hist_range=(1, 0)), "'hist_range' parameter must be a pair"),
        (dict(output="hog", hog_cell=8, hog_block=2), "fewer than one block"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            ImageFeatures(**params).fit([img])


def test_pillow_missing_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "PIL", None)
    est = ImageFeatures().fit([np.zeros((8, 8))])
    with pytest.raises(ImportError, match=r"pip install sklearn-mtml\[image\]"):
        est.transform([str(tmp_path / "a.png")])
    # arrays and resizing do not need Pillow
    assert ImageFeatures(size=4).fit_transform([np.zeros((8, 8))]).shape == (1, 16)


def test_joblib_roundtrip(tmp_path):
    X = np.random.default_rng(0).random((4, 16, 16))
    est = ImageFeatures(output="hog", normalize="standard").fit(X)
    joblib.dump(est, tmp_path / "img.joblib")
    back = joblib.load(tmp_path / "img.joblib")
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
