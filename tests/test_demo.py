"""The README's demo runs end to end (with few epochs) and learns something."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sklearn_mtml.datasets import load_av_digits, load_reviews
from sklearn_mtml.demo import av_digits_demo, main, reviews_demo


def test_shipped_data_sets_load():
    X, Y, split = load_av_digits()
    assert X.shape == (600, 2) and list(Y.columns) == ["digit", "speaker", "accent"]
    assert (split == "test").sum() == 300
    assert all(img.shape == (8, 8) for img in X["image"])
    Xr, Yr = load_reviews(as_frame=False)
    assert len(Xr["Review Text"]) == 3000 and set(Yr["Recommended IND"]) == {0, 1}


@pytest.fixture(scope="module")
def av_results():
    """The demo's results for seeds 0-2 (default networks, as the README writes them)."""
    return {seed: av_digits_demo(seed=seed, verbose=False) for seed in (0, 1, 2)}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.slow
def test_av_digits_fusion_beats_each_modality(av_results, seed):
    r = av_results[seed]
    image, audio, fused = r["image only"], r["audio only"], r["fused (image + audio)"]
    # both modalities carry the digit: fusing them beats each one
    assert fused["digit"] >= max(image["digit"], audio["digit"]) + 0.01
    # only the audio carries speaker and accent: fusion keeps the audio network's accuracy
    for task in ("speaker", "accent"):
        assert fused[task] >= audio[task] - 0.02
    assert image["speaker"] < 0.4  # images carry no speaker information
    # with the audio gone the fused network falls back to the images, not below them
    gone = r["fused, 100% of test audio missing"]
    assert gone["digit"] >= image["digit"] - 0.03
    half = r["fused, 50% of test audio missing"]
    assert gone["digit"] <= half["digit"] <= fused["digit"]
    # a muted clip (silent waveform) is detected as missing
    assert r["fused, 100% of test audio muted"] == gone
    assert r["fused, 50% of test audio muted"] == half


@pytest.mark.slow
def test_av_digits_demo_is_the_same_at_one_and_two_threads(av_results, capsys):
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        again = av_digits_demo(seed=0)
    finally:
        torch.set_num_threads(previous)
    assert again == av_results[0]
    out = capsys.readouterr().out
    assert "Audio-visual digits" in out and "What to look for" in out


@pytest.mark.slow
def test_reviews_demo_runs(capsys):
    results = reviews_demo(max_epochs=3)
    assert set(results) == {"majority / mean", "logistic / ridge regression",
                            "single-task networks", "multi-task network"}
    assert all(np.isfinite(v) for v in results["multi-task network"].values())
    main(["--part", "reviews", "--epochs", "1"])
    assert "Clothing reviews" in capsys.readouterr().out
