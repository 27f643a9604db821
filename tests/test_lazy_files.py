"""FileBlocks: audio and image files decoded batch by batch, in DataLoader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sklearn_mtml import FileBlocks, ModalityBlocks, MultiTaskNet

sf = pytest.importorskip("soundfile")
Image = pytest.importorskip("PIL.Image")

SR = 8000
N = 48
SETTINGS = dict(sr=SR, duration=0.25, image_size=(8, 8), n_mels=16, hop_length=128)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Clips whose pitch and images whose brightness follow the label, plus a tabular block."""
    root = tmp_path_factory.mktemp("files")
    rng = np.random.default_rng(0)
    y = np.arange(N) % 2
    audio, images = [], []
    for i in range(N):
        length = 2000 if i % 3 else 1500  # some clips shorter than duration: zero-padded
        t = np.arange(length) / SR
        clip = 0.3 * np.sin(2 * np.pi * (300 + 500 * y[i]) * t) + 0.05 * rng.normal(size=length)
        audio.append(str(root / f"clip{i}.wav"))
        sf.write(audio[-1], clip.astype(np.float32), SR)
        img = rng.integers(0, 80, (12, 10, 3)) + 120 * y[i]
        images.append(root / f"img{i}.png")  # a PathLike
        Image.fromarray(img.astype(np.uint8)).save(images[-1])
    audio[4] = None  # a missing modality
    images[7] = None
    tab = rng.normal(size=(N, 3)).astype(np.float32)
    Y = np.column_stack([y, tab[:, 0] + y]).astype(float)
    return {"audio": audio, "images": images, "tab": tab, "Y": Y, "root": root}


def _blocks(files, **kw):
    return FileBlocks(audio={"speech": files["audio"]}, images={"photo": files["images"]},
                      tabular={"meta": files["tab"]}, **{**SETTINGS, **kw})


def _net(files=True, **kw):
    """A small net; ``files``: decode in this process (no worker processes, for speed)."""
    workers = dict(iterator_train__num_workers=0, iterator_valid__num_workers=0) if files \
        else {}
    return MultiTaskNet(**{"random_state": 0, "max_epochs": 3, "batch_size": 16,
                           "device": "cpu", **workers, **kw})


def test_layout_presence_and_rows(files):
    X = _blocks(files)
    assert X.shape == (N, 3) and len(X) == N and X.names == ["speech", "photo", "meta"]
    assert X.block_shapes == {"speech": (16, 16), "photo": (3, 8, 8), "meta": (3,)}
    assert not X.masks["speech"][4] and not X.masks["photo"][7] and X.presence.sum() == 3 * N - 2
    from sklearn.utils import _safe_indexing

    sub = _safe_indexing(X, np.array([4, 0, 7]))
    assert isinstance(sub, FileBlocks) and sub.presence.tolist() == [
        [False, True, True], [True, True, True], [True, False, True]]
    assert X[X.masks["speech"]].n_samples == N - 1
    assert pickle.loads(pickle.dumps(X)).settings() == X.settings()
    with pytest.raises(TypeError, match="does not convert to an array"):
        np.asarray(X)


def test_load_decodes_what_audio_and_image_features_compute(files):
    from sklearn_mtml import AudioFeatures

    Xb = _blocks(files)[:6].load(num_workers=0)
    assert isinstance(Xb, ModalityBlocks)
    assert Xb.blocks["speech"].shape == (6, 16, 16) and not Xb.masks["speech"][4]
    assert (Xb.blocks["speech"][4] == 0).all() and (Xb.blocks["photo"][7 - 6:] != 0).any()
    # the front end is AudioFeatures' torch backend; frames past a shorter clip are padding
    clips = [None if p is None else sf.read(p, dtype="float32")[0] for p in files["audio"][:6]]
    ref = AudioFeatures(features=("logmel",), sr=SR, output="sequence", backend="torch",
                        n_fft=512, hop_length=128, n_mels=16, max_frames=16,
                        detect_empty=False).fit(clips).transform(clips)
    np.testing.assert_allclose(Xb.blocks["speech"], ref, rtol=1e-4, atol=1e-3)
    assert (Xb.blocks["speech"][0, 12:] == 0).all()  # 1500 samples: 12 frames of 16


def test_fit_from_files_trains_like_the_in_memory_path(files):
    X, Y = _blocks(files), files["Y"]
    lazy = _net(streaming=True).fit(X, Y)
    loaded = _net(files=False).fit(X.load(num_workers=0), Y)
    assert lazy.streamed_ and not loaded.streamed_
    for name, (center, scale) in loaded.input_stats_.items():  # the streaming pass
        np.testing.assert_allclose(lazy.input_stats_[name][0], center, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lazy.input_stats_[name][1], scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lazy.history[:, "train_loss"], loaded.history[:, "train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(lazy.forward_outputs(X)[1], loaded.forward_outputs(
        X.load(num_workers=0))[1], rtol=1e-3, atol=1e-4)
    # "auto": the decoded features fit the memory budget, so they are decoded once
    auto = _net().fit(X, Y)
    assert not auto.streamed_
    np.testing.assert_allclose(auto.history[:, "train_loss"], loaded.history[:, "train_loss"],
                               rtol=1e-4)
    assert _net(max_epochs=1).fit(_blocks(files, memory_budget=0), Y).streamed_


def test_streaming_statistics_use_the_in_memory_subsample(files, monkeypatch):
    from sklearn_mtml.nn import scaling

    monkeypatch.setattr(scaling, "_MAX_VALUES", 200)  # forces a row subsample
    X = _blocks(files)
    stats = X.statistics("robust", num_workers=0)
    Xb = X.load(num_workers=0)
    for name, (center, scale) in stats.items():
        block = Xb.blocks[name][Xb.masks[name]]
        ref = scaling.block_statistics(block, "robust")
        np.testing.assert_allclose(center, ref[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scale, ref[1], rtol=1e-5, atol=1e-6)


def test_dataloader_workers_decode_the_same_batches(files):
    X, Y = _blocks(files), files["Y"]
    kw = dict(streaming=True, max_epochs=2)
    serial = _net(**kw).fit(X, Y)
    workers = _net(**kw, iterator_train__num_workers=2, iterator_valid__num_workers=2,
                   iterator_train__prefetch_factor=1).fit(X, Y)
    np.testing.assert_allclose(workers.history[:, "train_loss"],
                               serial.history[:, "train_loss"], rtol=1e-5)
    np.testing.assert_allclose(workers.forward_outputs(X)[1], serial.forward_outputs(X)[1],
                               rtol=1e-4, atol=1e-5)


def test_errors_name_the_bad_file_and_row(files, tmp_path):
    X, Y = _blocks(files), files["Y"]
    fitted = _net(max_epochs=1, streaming=True).fit(X, Y)
    gone = list(files["audio"])
    gone[5] = str(tmp_path / "gone.wav")
    with pytest.raises(FileNotFoundError, match=r"'speech'.*row 5.*gone\.wav"):
        fitted.predict(FileBlocks(audio={"speech": gone}, images={"photo": files["images"]},
                                  tabular={"meta": files["tab"]}, **SETTINGS))
    broken = list(files["images"])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    broken[9] = tmp_path / "broken.png"
    Xbad = FileBlocks(audio={"speech": files["audio"]}, images={"photo": broken},
                      tabular={"meta": files["tab"]}, **SETTINGS)
    with pytest.raises(ValueError, match=r"'photo'.*row 9.*broken\.png"):
        fitted.predict(Xbad)  # decoded in this process
    with pytest.raises(ValueError, match=r"'photo'.*row 9.*broken\.png"):  # in a worker
        _net(streaming=True, max_epochs=1, iterator_train__num_workers=2,
             input_scaling=None).fit(Xbad, Y)
    with pytest.raises(ValueError, match="otherwise than at fit.*'sr'"):
        fitted.predict(_blocks(files, sr=16000))
    with pytest.raises(ValueError, match="not fitted on one"):
        _net(files=False, max_epochs=1).fit(X.load(num_workers=0), Y).predict(X)


@pytest.mark.parametrize("kwargs, match", [
    (dict(audio_features=("logmel", "nope")), "audio_features"),
    (dict(sr=0), "sr must be a positive number"),
    (dict(image_size=(8, 0)), "image_size"),
    (dict(color="cmyk"), "color must be one of"),
    (dict(memory_budget="lots"), "memory_budget"),
])
def test_invalid_settings_are_named(files, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _blocks(files, **kwargs)


def test_invalid_columns_are_named():
    with pytest.raises(TypeError, match=r"'speech', row 1: expected a file path"):
        FileBlocks(audio={"speech": ["a.wav", 3]})
    with pytest.raises(ValueError, match="'img' has 1 rows"):
        FileBlocks(audio={"speech": ["a.wav", None]}, images={"img": ["b.png"]})
    with pytest.raises(ValueError, match="NaN or infinity in row 0"):
        FileBlocks(tabular={"t": np.array([[np.nan, 1.0], [1.0, 2.0]])})


def test_model_selection_splits_file_blocks(files):
    from sklearn.model_selection import KFold, cross_val_score

    X, Y = _blocks(files), files["Y"][:, 0]
    scores = cross_val_score(_net(max_epochs=1, streaming=True), X, Y, cv=KFold(2))
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_kfold_ensemble_streams_file_blocks(files):
    """Each member of a KFoldEnsemble reads the files batch by batch and stops on its fold."""
    from sklearn_mtml import KFoldEnsemble

    X = _blocks(files)
    model = KFoldEnsemble(_net(streaming=True), cv=2, random_state=0).fit(X, files["Y"])
    assert all(member.streamed_ for member in model.estimators_)
    assert sorted(np.concatenate(model.validation_indices_).tolist()) == list(range(N))
    pred = model.predict(X)
    assert pred.shape == (N, 2)
    members = np.mean([m.predict(X)[:, 1] for m in model.estimators_], axis=0)
    np.testing.assert_allclose(pred[:, 1], members, rtol=1e-6)
