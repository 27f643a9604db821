"""Degraded inputs count as missing: silent/empty clips, constant images, blank texts.

Also: float images of any range are scaled like integer images (``ImageFeatures.full_scale``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.preprocessing import StandardScaler

import sklearn_mtml.features.audio as audio_module
from sklearn_mtml.blocks import ModalityBlocks
from sklearn_mtml.features import AudioFeatures, ImageFeatures, TextFeatures
from sklearn_mtml.fusion import ModalityFusion

SR = 8000


def _clips(n, seed=0, length=2000):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.1, size=length).astype(np.float32) for _ in range(n)]


def _images(n, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (8, 8)).astype(dtype) for _ in range(n)]


TEXTS = ["a lovely dress", "the dress runs small", "lovely colour", "small and lovely",
         "the colour fades", "runs large"]


def _frame(n=6):
    return pd.DataFrame({"audio": _clips(n), "image": _images(n), "text": TEXTS[:n],
                         "age": np.arange(n, dtype=float)})


def _fusion(**kwargs):
    return ModalityFusion([
        ("audio", AudioFeatures(sr=SR), "audio"),
        ("image", ImageFeatures(), "image"),
        ("text", TextFeatures(), "text"),
        ("tab", StandardScaler(), ["age"]),
    ], **kwargs)


# ----------------------------------------------------------------------------- audio


def test_silent_and_empty_clips_are_absent():
    clips = _clips(6)
    clips[1] = np.zeros(2000, dtype=np.float32)               # muted microphone
    clips[2] = np.full(2000, 5e-5, dtype=np.float32)          # below the 1e-4 threshold
    clips[3] = np.zeros(0, dtype=np.float32)                  # empty clip
    clips[4] = None                                           # missing cell
    feats = AudioFeatures(sr=SR).fit(clips)
    expected = [False, True, True, True, True, False]
    np.testing.assert_array_equal(feats.absent_items(clips), expected)
    for est in (feats, AudioFeatures(sr=SR, output="sequence").fit(clips)):
        Xt = est.transform(clips)
        assert len(Xt) == 6  # nothing dropped
        for i in range(6):
            assert (Xt[i] == 0).all() == expected[i]
    # the threshold is a parameter; 0 keeps silent clips (empty ones stay absent)
    loose = AudioFeatures(sr=SR, silence_threshold=0.0)
    np.testing.assert_array_equal(loose.absent_items(clips),
                                  [False, False, False, True, True, False])
    strict = AudioFeatures(sr=SR, silence_threshold=0.5)
    assert strict.absent_items(clips).all()  # peaks of N(0, 0.1) noise are below 0.5


def test_audio_detection_switched_off():
    clips = _clips(3)
    clips[1] = np.zeros(2000, dtype=np.float32)
    est = AudioFeatures(sr=SR, detect_empty=False).fit(clips)
    np.testing.assert_array_equal(est.absent_items(clips + [None]), [False, False, False, True])
    assert (est.transform(clips)[1] != 0).any()  # features of silence, as before
    with pytest.raises(ValueError, match="row 0: empty waveform"):
        est.transform([np.zeros(0), clips[0]])


def test_all_empty_clips_at_fit_is_an_error():
    with pytest.raises(ValueError, match=r"every row of the modality column is missing "
                                         r"\(None/NaN or empty\)"):
        AudioFeatures(sr=SR).fit([np.zeros(0), None])


def test_torch_backend_masks_silent_clips_too():
    pytest.importorskip("torch")
    clips = _clips(4)
    clips[2] = np.zeros(3000, dtype=np.float32)
    ref = AudioFeatures(sr=SR).fit(clips).transform(clips)
    out = AudioFeatures(sr=SR, backend="torch", device="cpu").fit(clips).transform(clips)
    assert (out[2] == 0).all() and (ref[2] == 0).all()
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)


def test_silent_and_empty_files(tmp_path, monkeypatch):
    good, silent, empty = tmp_path / "good.wav", tmp_path / "silent.wav", tmp_path / "empty.wav"
    sf.write(good, _clips(1)[0], SR)
    sf.write(silent, np.zeros(4000, dtype=np.float32), SR)
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    paths = [str(good), str(silent), str(empty), None]
    X = pd.DataFrame({"audio": paths})
    fusion = ModalityFusion([("audio", AudioFeatures(sr=16000), "audio")])
    Xb = fusion.fit_transform(X)  # resampled 8 -> 16 kHz; the rule reads the decoded samples
    np.testing.assert_array_equal(Xb.masks["audio"], [True, False, False, False])
    assert (Xb["audio"][1:] == 0).all() and (Xb["audio"][0] != 0).any()
    assert fusion.absent_counts_ == {"audio": 3}

    # the peaks learned while transforming are reused: the rule does not decode files again
    calls = []
    read = audio_module._read_file
    monkeypatch.setattr(audio_module, "_read_file",
                        lambda *a: calls.append(a[1]) or read(*a))
    Xb = fusion.transform(X)
    np.testing.assert_array_equal(Xb.masks["audio"], [True, False, False, False])
    assert sorted(calls) == sorted([str(good), str(silent), str(empty)])  # once each
    # a file rewritten since is read again (the memo is keyed by size and modification time)
    sf.write(silent, _clips(1, seed=3, length=4100)[0], SR)
    calls.clear()
    assert not AudioFeatures(sr=16000).absent_items([str(silent)])[0]
    assert calls == [str(silent)]
    # an empty file is still an error when detection is off
    with pytest.raises(ValueError, match=r"row 0: audio file .*empty\.wav' is empty"):
        AudioFeatures(sr=SR, detect_empty=False).fit([str(good)]).transform([str(empty)])


# ----------------------------------------------------------------------------- images


def test_constant_images_are_absent():
    rng = np.random.default_rng(0)
    imgs = _images(6)
    imgs[1] = np.zeros((8, 8), dtype=np.uint8)                 # all black
    imgs[2] = np.full((8, 8), 255, dtype=np.uint8)             # all white
    imgs[3] = np.full((8, 8, 3), 0.3)                          # uniform colour image
    colour = rng.random((8, 8, 3))
    colour[..., 0] = 0.5  # one constant channel, the others vary: a real image
    imgs[4] = colour
    imgs[5] = None
    expected = [False, True, True, True, False, True]
    for output in ("pixels", "tensor", "hog", "histogram"):
        est = ImageFeatures(output=output, hog_cell=4).fit(imgs)
        np.testing.assert_array_equal(est.absent_items(imgs), expected)
        Xt = est.transform(imgs)
        assert len(Xt) == 6
        for i in range(6):
            assert (Xt[i] == 0).all() == expected[i], (output, i)
    off = ImageFeatures(detect_empty=False).fit(imgs)
    np.testing.assert_array_equal(off.absent_items(imgs), [False] * 5 + [True])
    assert (off.transform(imgs)[2] == 1).all()


def test_constant_image_is_still_validated():
    est = ImageFeatures().fit(_images(3))
    with pytest.raises(ValueError, match=r"row 1: image of size \(4, 4\) .* were \(8, 8\)"):
        est.transform([_images(1)[0], np.zeros((4, 4))])
    assert (ImageFeatures(size=4).fit(_images(2)).transform([np.zeros((9, 9))]) == 0).all()


def test_constant_image_files(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    real, blank = tmp_path / "real.png", tmp_path / "blank.png"
    Image.fromarray(_images(1)[0]).save(real)
    Image.fromarray(np.full((8, 8), 17, dtype=np.uint8)).save(blank)
    paths = [str(real), str(blank)]
    est = ImageFeatures().fit(paths)
    np.testing.assert_array_equal(est.absent_items(paths), [False, True])  # not yet read
    Xt = est.transform(paths)
    assert (Xt[1] == 0).all() and (Xt[0] != 0).any()


# ----------------------------------------------------------------------------- texts


def test_blank_texts_are_absent():
    texts = ["a lovely dress", "", "   \n\t", None, "lovely"]
    expected = [False, True, True, True, False]
    for params in (dict(), dict(output="sequence"), dict(analyzer="char"),
                   dict(analyzer="char", output="sequence"), dict(dense=True)):
        est = TextFeatures(**params).fit(texts)
        np.testing.assert_array_equal(est.absent_items(texts), expected)
        Xt = est.transform(texts)
        Xt = Xt.toarray() if hasattr(Xt, "toarray") else Xt
        assert len(Xt) == 5
        for i in range(5):
            assert (Xt[i] == 0).all() == expected[i], (params, i)
    off = TextFeatures(analyzer="char", detect_empty=False).fit(texts)
    np.testing.assert_array_equal(off.absent_items(texts), [False, False, False, True, False])
    assert off.transform(texts)[2].nnz > 0  # the char analyzer sees the spaces


# ----------------------------------------------------------------------------- fusion


def _degraded_frame():
    X = _frame()
    X.at[1, "audio"] = np.zeros(2000, dtype=np.float32)
    X.at[2, "image"] = np.zeros((8, 8), dtype=np.uint8)
    X.at[3, "text"] = "  "
    X.at[4, "audio"] = None
    X.at[5, "age"] = 0.0  # a zero in a tabular column is a value, not a missing one
    return X


def test_fusion_masks_degraded_items():
    X = _degraded_frame()
    fusion = _fusion()
    Xb = fusion.fit_transform(X)
    assert isinstance(Xb, ModalityBlocks) and len(Xb) == 6
    np.testing.assert_array_equal(Xb.masks["audio"], [1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(Xb.masks["image"], [1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(Xb.masks["text"], [1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(Xb.masks["tab"], [1] * 6)  # StandardScaler: None/NaN only
    assert fusion.absent_counts_ == {"audio": 2, "image": 1, "text": 1, "tab": 0}
    # absent rows do not poison the features: zeros, as for None cells
    assert (Xb["audio"][[1, 4]] == 0).all() and (Xb["image"][2] == 0).all()
    assert Xb["text"][3].nnz == 0
    Xt = fusion.transform(X)
    for name in Xb.names:
        np.testing.assert_array_equal(Xt.masks[name], Xb.masks[name])
    flat = clone(fusion).set_params(output="concat").fit_transform(X)
    assert flat.shape[0] == 6
    cols = fusion.output_indices_["audio"]
    dense = flat.toarray() if hasattr(flat, "toarray") else flat
    assert (dense[1, cols] == 0).all()


def test_fusion_rule_switched_off():
    X = _degraded_frame()
    fusion = _fusion().set_params(audio__detect_empty=False, image__detect_empty=False,
                                  text__detect_empty=False)
    Xb = fusion.fit_transform(X)
    np.testing.assert_array_equal(Xb.masks["audio"], [1, 1, 1, 1, 0, 1])  # only the None
    assert Xb.masks["image"].all() and Xb.masks["text"].all()


def test_mask_missing_false_names_the_degraded_row():
    X = _degraded_frame().drop(index=4)  # no None left in the audio column
    with pytest.raises(ValueError, match=r"modality 'audio' \(column 'audio'\) carries no "
                                         r"signal in row 1 \(index 1\) \(mask_missing=False\)"
                                         r".*detect_empty=False"):
        _fusion(mask_missing=False).fit(X)
    ok = X.drop(index=[1, 2, 3])
    fusion = _fusion(mask_missing=False).fit(ok)
    with pytest.raises(ValueError, match=r"modality 'image' .* carries no signal in row 1 "
                                         r"\(index 2\) but was required at fit"):
        fusion.transform(X.drop(index=1))


class _Thresholded(TransformerMixin, BaseEstimator):
    """A user transformer with its own "no signal" rule: rows whose value is below 0."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float).reshape(len(X), -1)

    def absent_items(self, X):
        return np.asarray(X, dtype=float).reshape(len(X), -1).max(axis=1) < 0


class _BadRule(_Thresholded):
    def absent_items(self, X):
        return np.zeros(len(X) + 1)


def test_custom_rule_is_read_and_checked():
    X = pd.DataFrame({"v": [1.0, -2.0, np.nan, 3.0]})
    Xb = ModalityFusion([("v", _Thresholded(), ["v"])]).fit_transform(X)
    np.testing.assert_array_equal(Xb.masks["v"], [True, False, False, True])
    with pytest.raises(ValueError, match=r"_BadRule.absent_items of block 'v' returned float64 "
                                         r"of shape \(5,\); expected a boolean array"):
        ModalityFusion([("v", _BadRule(), ["v"])]).fit(X)


# ----------------------------------------------------------------------------- image scaling


def test_float_images_are_scaled_like_integer_images():
    u8 = _images(5)
    assert max(int(img.max()) for img in u8) == 255
    as_float = [img.astype(np.float64) for img in u8]
    for output in ("pixels", "histogram", "hog"):
        a = ImageFeatures(output=output, hog_cell=4).fit(u8)
        b = ImageFeatures(output=output, hog_cell=4).fit(as_float)
        assert b.full_scale_ == 255.0 and a.full_scale_ == 1.0
        np.testing.assert_array_equal(a.transform(u8), b.transform(as_float))
    # a fixed full scale gives the same result whatever the training maximum
    dark = [np.minimum(img, 200) for img in u8]
    fixed = ImageFeatures(full_scale=255.0).fit([d.astype(np.float32) for d in dark])
    np.testing.assert_array_equal(fixed.transform([d.astype(np.float32) for d in dark]),
                                  ImageFeatures().fit(dark).transform(dark))
    # "auto" learns the training maximum: 200 here, so the float copy reaches 1 (uint8: 200/255)
    learned = ImageFeatures().fit([d.astype(np.float32) for d in dark])
    assert learned.full_scale_ == 200.0
    assert learned.transform([d.astype(np.float32) for d in dark]).max() == 1.0
    np.testing.assert_allclose(learned.transform(dark).max(), 200 / 255)  # uint8 stays / 255


def test_load_digits_range_and_unit_floats():
    from sklearn.datasets import load_digits

    digits = load_digits().images[:50]  # float64 in [0, 16]
    est = ImageFeatures().fit(digits)
    assert est.full_scale_ == 16.0
    Xt = est.transform(digits)
    assert Xt.min() >= 0 and Xt.max() == 1.0
    np.testing.assert_allclose(Xt, digits.reshape(50, -1) / 16, rtol=1e-6)
    unit = np.random.default_rng(0).random((4, 8, 8))
    est = ImageFeatures().fit(unit)
    assert est.full_scale_ == 1.0
    np.testing.assert_allclose(est.transform(unit), unit.reshape(4, -1), rtol=1e-6)
    raw = ImageFeatures(normalize=None).fit(digits)
    assert raw.full_scale_ == 1.0 and raw.transform(digits).max() == 16.0
    with pytest.raises(ValueError, match="'full_scale' parameter"):
        ImageFeatures(full_scale=0).fit(digits)


# ----------------------------------------------------------------------------- real data


def test_av_digits_muted_test_clips_are_masked():
    from sklearn_mtml.datasets import load_av_digits

    X, Y, split = load_av_digits()
    rng = np.random.default_rng(0)
    train = rng.choice(np.flatnonzero(split == "train"), 60, replace=False)
    test = rng.choice(np.flatnonzero(split == "test"), 40, replace=False)
    X_train = X.iloc[train].reset_index(drop=True)
    X_test = X.iloc[test].reset_index(drop=True)
    muted = np.zeros(len(X_test), dtype=bool)
    muted[::2] = True  # half of the test clips replaced by silent waveforms
    X_test["audio"] = [np.zeros_like(clip) if m else clip
                       for clip, m in zip(X_test["audio"], muted)]
    fusion = ModalityFusion([
        ("image", ImageFeatures(), "image"),
        ("audio", AudioFeatures(sr=SR), "audio"),
    ])
    Xb_train = fusion.fit_transform(X_train)
    assert Xb_train.masks["audio"].all() and Xb_train.masks["image"].all()
    assert fusion.named_transformers_["image"].full_scale_ == 16.0  # 0-16 images in [0, 1]
    assert 0.0 <= Xb_train["image"].min() and Xb_train["image"].max() <= 1.0
    Xb = fusion.transform(X_test)
    assert len(Xb) == len(X_test) == 40  # no row dropped
    np.testing.assert_array_equal(Xb.masks["audio"], ~muted)
    assert Xb.masks["image"].all()
    assert (Xb["audio"][muted] == 0).all()
    assert (np.abs(Xb["audio"][~muted]).sum(axis=1) > 0).all()
