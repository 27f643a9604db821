"""Streaming inputs: memory-mapped blocks train and predict without being loaded whole."""

from __future__ import annotations

import numpy as np
import pytest

from sklearn_mtml import MultiTaskNet
from sklearn_mtml._rows import is_memory_mapped


def _memmap(path, arr):
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=arr.dtype, shape=arr.shape)
    mm[:] = arr
    mm.flush()
    return np.load(path, mmap_mode="r")  # read-only, as a large data set would be opened


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(3000, 12).astype(np.float32)
    Y = np.column_stack([(X[:, 0] - X[:, 1] > 0), X[:, 2] + 0.5 * X[:, 3] ** 2]).astype(float)
    Y[::5, 1] = np.nan
    return X, Y


@pytest.mark.parametrize("blocks", [False, True], ids=["array", "dict of blocks"])
def test_a_memory_mapped_input_streams_and_trains_like_the_in_memory_one(data, tmp_path,
                                                                       blocks):
    X, Y = data
    mm = _memmap(tmp_path / "X.npy", X)
    assert is_memory_mapped(mm) and not is_memory_mapped(X)
    kw = dict(random_state=0, max_epochs=6, batch_size=128)
    if blocks:
        X = {"a": X[:, :6], "b": X[:, 6:]}
        mm = {"a": mm[:, :6], "b": mm[:, 6:]}  # views of the file are still memory-mapped
    streamed = MultiTaskNet(**kw).fit(mm, Y)
    loaded = MultiTaskNet(**kw).fit(X, Y)
    assert streamed.streamed_ and not loaded.streamed_
    # the same batches in the same order: the same model, up to float rounding
    np.testing.assert_allclose(streamed.history[:, "train_loss"],
                               loaded.history[:, "train_loss"], rtol=1e-4)
    np.testing.assert_allclose(streamed.predict(mm).astype(float),
                               loaded.predict(X).astype(float), rtol=1e-3, atol=1e-3)
    assert streamed.score(mm, Y) > 0.8


def test_streaming_can_be_forced_or_refused(data, tmp_path):
    X, Y = data
    forced = MultiTaskNet(streaming=True, max_epochs=2, random_state=0).fit(X, Y)
    assert forced.streamed_
    mm = _memmap(tmp_path / "X.npy", X)
    assert not MultiTaskNet(streaming=False, max_epochs=1).fit(mm, Y).streamed_
    with pytest.raises(ValueError, match="streaming must be True, False or 'auto'"):
        MultiTaskNet(streaming="yes").fit(X, Y)
    import torch

    with pytest.raises(ValueError, match="Streamed inputs .* need streaming=False"):
        MultiTaskNet(streaming=True, max_epochs=1,
                     iterator_train=torch.utils.data.DataLoader).fit(X, Y)
