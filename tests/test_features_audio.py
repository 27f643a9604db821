import pickle
import re
from pathlib import Path

import joblib
import numpy as np
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mtml.features import AudioFeatures

ALL_FEATURES = (
    "mfcc", "delta", "delta2", "logmel", "chroma", "contrast",
    "centroid", "bandwidth", "rolloff", "zcr", "rms",
)


def _rel_diff(a, b):
    """Per output column: max |a - b| / max |b| over rows; returns the worst column."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    scale = np.abs(b).max(axis=0)
    scale[scale == 0] = 1.0
    return float((np.abs(a - b).max(axis=0) / scale).max())


@pytest.fixture(scope="module")
def fsdd(shared_data):
    folder = shared_data / "fsdd" / "recordings"
    files = sorted(folder.glob("*.wav"))
    if not files:
        pytest.skip(f"no FSDD recordings in {folder}")
    return files


@pytest.fixture(scope="module")
def clips20(fsdd):
    return [str(f) for f in fsdd[:: len(fsdd) // 20][:20]]


def _rng_clips(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.1, size=n).astype(np.float32) for n in lengths]


# ----------------------------------------------------------------------------- sklearn checks

# scikit-learn's common checks run in test_common.py, with their expected failures.


# ----------------------------------------------------------------------------- real data


@pytest.mark.parametrize("output", ["stats", "sequence"])
def test_torch_matches_librosa_on_fsdd(clips20, output):
    feats = ("mfcc", "delta", "delta2", "logmel")
    ref = AudioFeatures(feats, sr=8000, output=output).fit(clips20)
    fast = AudioFeatures(feats, sr=8000, output=output, backend="torch", device="cpu")
    A, B = ref.transform(clips20), fast.fit(clips20).transform(clips20)
    assert A.shape == B.shape and B.dtype == np.float32
    assert ref.get_feature_names_out().tolist() == fast.get_feature_names_out().tolist()
    names = ref.frame_feature_names_

    def kind(name):
        return name.split("_")[1] if "_" in name else name.rstrip("0123456789")

    for group in ("mfcc", "delta", "delta2", "logmel"):
        cols = [k for k, n in enumerate(names) if kind(n) == group]
        assert len(cols) == (40 if group == "logmel" else 13)
        if output == "stats":  # stat-major blocks of len(names) columns
            cols = [s * len(names) + c for s in range(4) for c in cols]
            a, b = A[:, cols], B[:, cols]
        else:
            a, b = A[:, :, cols], B[:, :, cols]
        assert _rel_diff(b, a) < 1e-4, group
    if output == "sequence":
        # padding frames are exact zeros in both backends, at the same places
        np.testing.assert_array_equal(A == 0, B == 0)


def test_torch_matches_librosa_all_features(clips20):
    ref = AudioFeatures(ALL_FEATURES, sr=8000).fit(clips20)
    fast = AudioFeatures(ALL_FEATURES, sr=8000, backend="torch", device="cpu",
                         precision="float64").fit(clips20)
    assert _rel_diff(fast.transform(clips20), ref.transform(clips20)) < 1e-4
    # float32: everything but the contrast valleys (quietest bins) within 1e-4
    fast32 = AudioFeatures(ALL_FEATURES[:5] + ALL_FEATURES[6:], sr=8000, backend="torch",
                           device="cpu").fit(clips20)
    ref32 = AudioFeatures(ALL_FEATURES[:5] + ALL_FEATURES[6:], sr=8000).fit(clips20)
    assert _rel_diff(fast32.transform(clips20), ref32.transform(clips20)) < 1e-4


def test_short_clips_same_in_both_backends():
    # fewer frames than the delta window (and a single sample): window shrinks, then 0
    clips = _rng_clips([1, 200, 600, 1000, 1200, 3000])
    feats = ("mfcc", "delta", "delta2", "rms", "zcr")
    A = AudioFeatures(feats, sr=8000).fit(clips).transform(clips)
    B = AudioFeatures(feats, sr=8000, backend="torch", device="cpu").fit(clips).transform(clips)
    assert np.isfinite(A).all()
    assert _rel_diff(B, A) < 1e-4


def test_paths_and_waveforms_identical(clips20):
    waves = [sf.read(f, dtype="float32")[0] for f in clips20]
    for backend in ("librosa", "torch"):
        est = AudioFeatures(sr=8000, backend=backend, device="cpu").fit(clips20)
        np.testing.assert_array_equal(est.transform(clips20), est.transform(waves))
        np.testing.assert_array_equal(
            est.transform([Path(f) for f in clips20]), est.transform(np.array(waves, dtype=object))
        )


def test_sample_rates(clips20, tmp_path):
    est = AudioFeatures(sr=None).fit(clips20[:3])
    assert est.sr_ == 8000.0
    up = AudioFeatures(sr=16000).fit(clips20[:3])
    assert up.sr_ == 16000.0 and up.transform(clips20[:3]).shape == (3, 104)
    y, _ = sf.read(clips20[0], dtype="float32")
    other = tmp_path / "clip16k.wav"
    sf.write(other, np.repeat(y, 2), 16000)
    with pytest.raises(ValueError, match=r"row 1 at 16000 Hz"):
        AudioFeatures(sr=None).fit([clips20[0], str(other)])
    with pytest.raises(ValueError, match=r"row 0: file .*clip16k.wav.* 16000 Hz"):
        est.transform([str(other)])
    with pytest.raises(ValueError, match="row 0: sr=None"):
        AudioFeatures(sr=None).fit([y])
    # a 16 kHz copy resampled to 8 kHz gives nearly the same features as the original
    a = AudioFeatures(sr=8000).fit([clips20[0]])
    assert np.corrcoef(a.transform([clips20[0]])[0], a.transform([str(other)])[0])[0, 1] > 0.99


def test_classify_digits(fsdd):
    def index(f):
        return int(Path(f).stem.split("_")[2])

    train = [f for f in fsdd if 5 <= index(f) < 13]  # 480 clips
    test = [f for f in fsdd if index(f) < 5]  # the 300 clips of the official test split
    y_train = [int(Path(f).stem[0]) for f in train]
    y_test = [int(Path(f).stem[0]) for f in test]
    pipe = make_pipeline(
        AudioFeatures(sr=8000, backend="torch", device="cpu"), StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    acc = pipe.fit(train, y_train).score(test, y_test)
    assert acc > 0.6, acc


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("backend", ["librosa", "torch"])
def test_missing_rows_give_zero_rows(backend):
    clips = _rng_clips([3000, 4000])
    col = [clips[0], None, float("nan"), clips[1]]
    for output in ("stats", "sequence"):
        est = AudioFeatures(sr=8000, output=output, backend=backend, device="cpu")
        Xt = est.fit_transform(col)
        assert Xt.shape[0] == 4 and Xt.dtype == np.float32
        assert (Xt[1] == 0).all() and (Xt[2] == 0).all()
        assert (Xt[0] != 0).any() and (Xt[3] != 0).any()
    with pytest.raises(ValueError, match="every row of the modality column is missing"):
        AudioFeatures(sr=8000).fit([None, np.nan])


def test_sequence_padding_and_truncation():
    clips = _rng_clips([1280, 3200])  # 11 and 26 frames
    full = AudioFeatures(sr=8000, output="sequence").fit(clips)
    assert full.max_frames_ == 26
    S = full.transform(clips)
    assert S.shape == (2, 26, 26)
    assert (S[0, 11:] == 0).all() and (S[0, :11] != 0).any(axis=1).all()
    assert len(full.get_feature_names_out()) == 26 * 26
    for truncate, start in (("end", 0), ("start", 15), ("center", 7)):
        est = AudioFeatures(sr=8000, output="sequence", max_frames=11, truncate=truncate)
        T = est.fit(clips).transform(clips)
        assert T.shape == (2, 11, 26)
        np.testing.assert_array_equal(T[1], S[1, start : start + 11])
        np.testing.assert_array_equal(T[0], S[0, :11])


def test_two_d_array_and_dataframe_inputs():
    pd = pytest.importorskip("pandas")
    clips = _rng_clips([2000] * 3)
    est = AudioFeatures(sr=8000).fit(np.stack(clips))
    ref = est.transform(np.stack(clips))
    np.testing.assert_array_equal(ref, est.transform(list(clips)))
    df = pd.DataFrame({"audio": list(clips)}, index=[10, 11, 12])
    np.testing.assert_array_equal(ref, est.transform(df))
    est.set_output(transform="pandas")
    out = est.transform(df["audio"])
    assert list(out.columns) == est.get_feature_names_out().tolist()
    assert list(out.index) == [10, 11, 12]
    assert out.columns[0] == "mfcc0_mean" and out.columns[-1] == "mfcc12_delta_max"
    seq = AudioFeatures(sr=8000, output="sequence").set_output(transform="pandas").fit(df)
    assert seq.transform(df).shape == (3, 16, 26)  # 3-D outputs stay ndarrays


def test_stats_selection_and_names():
    clips = _rng_clips([2000, 2500])
    est = AudioFeatures(("mfcc", "rms", "contrast"), sr=8000, stats=("mean", "max")).fit(clips)
    names = est.get_feature_names_out().tolist()
    assert est.n_contrast_bands_ == 5  # 200 * 2**5 Hz is above the 4 kHz Nyquist frequency
    assert len(names) == (13 + 1 + 6) * 2 == est.transform(clips).shape[1]
    assert names[:2] == ["mfcc0_mean", "mfcc1_mean"] and "rms_max" in names
    Xt = est.transform(clips)
    np.testing.assert_allclose(Xt[:, names.index("rms_mean")], [
        np.mean(AudioFeatures(("rms",), sr=8000, output="sequence").fit([c]).transform([c]))
        for c in clips], rtol=1e-5)


def test_pickle_roundtrip(tmp_path):
    clips = _rng_clips([2000, 2500])
    for backend in ("librosa", "torch"):
        est = AudioFeatures(sr=8000, backend=backend, device="cpu").fit(clips)
        joblib.dump(est, tmp_path / "a.joblib")
        back = joblib.load(tmp_path / "a.joblib")
        np.testing.assert_array_equal(back.transform(clips), est.transform(clips))
        assert pickle.loads(pickle.dumps(est)).sr_ == 8000.0


@pytest.mark.slow
def test_n_jobs_same_result(clips20):
    a = AudioFeatures(sr=8000).fit(clips20[:6]).transform(clips20[:6])
    b = AudioFeatures(sr=8000, n_jobs=2).fit(clips20[:6]).transform(clips20[:6])
    c = AudioFeatures(sr=8000, n_jobs=2, backend="torch", device="cpu").fit(clips20[:6])
    np.testing.assert_array_equal(a, b)
    assert _rel_diff(c.transform(clips20[:6]), a) < 1e-4


# ----------------------------------------------------------------------------- bad input


def test_bad_files_name_row_and_file(tmp_path):
    good = _rng_clips([2000])[0]
    missing = tmp_path / "nope.wav"
    with pytest.raises(FileNotFoundError, match=r"row 1: audio file not found: .*nope\.wav"):
        AudioFeatures(sr=8000).fit([good, str(missing)])
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    est = AudioFeatures(sr=8000).fit([good])
    with pytest.raises(ValueError, match=r"row 2: cannot read audio file .*garbage\.wav"):
        est.transform([good, None, str(garbage)])
    with pytest.raises(ValueError, match=r"row 0: cannot read audio file .*garbage\.wav"):
        AudioFeatures(sr=8000, backend="torch", device="cpu").fit([good]).transform([garbage])


def test_bad_rows_and_params():
    good = _rng_clips([2000])[0]
    est = AudioFeatures(sr=8000)
    with pytest.raises(ValueError, match=re.escape("row 1: expected a 1-D mono waveform, got an "
                                                   "array of shape (2, 1000)")):
        est.fit([good, np.zeros((2, 1000))])
    with pytest.raises(TypeError, match="row 0: expected a file path .* got int"):
        est.fit([3, good])
    with pytest.raises(ValueError, match="row 1: waveform contains NaN"):
        est.fit([good, np.array([0.0, np.nan, 1.0])])
    with pytest.raises(ValueError, match="row 0: empty waveform"):  # missing if detect_empty
        AudioFeatures(sr=8000, detect_empty=False).fit([np.zeros(0), good])
    with pytest.raises(ValueError, match="1-D numeric array is ambiguous"):
        est.fit(good)
    with pytest.raises(ValueError, match="one modality column, got a DataFrame with 2"):
        pd = pytest.importorskip("pandas")
        est.fit(pd.DataFrame({"a": [good], "b": [good]}))
    for params, pattern in [
        (dict(sr=-8000), "'sr' parameter"),
        (dict(sr=0), "'sr' parameter"),
        (dict(features=("mfcc", "pitch")), "'features' parameter must be a non-empty tuple"),
        (dict(stats=("median",)), "'stats' parameter"),
        (dict(output="frames"), "'output' parameter"),
        (dict(delta_width=8), "delta_width must be an odd integer"),
        (dict(n_mfcc=50), "n_mfcc=50 cannot exceed n_mels=40"),
        (dict(backend="torch", device="tpu"), "AudioFeatures: Unknown device 'tpu'"),
    ]:
        with pytest.raises(ValueError, match=pattern):
            AudioFeatures(**{"sr": 8000, **params}).fit([good])


def test_cuda_requested_without_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        AudioFeatures(sr=8000, backend="torch", device="cuda").fit(_rng_clips([1000]))
