"""The README's demo runs end to end (with few epochs) and learns something."""

from __future__ import annotations

import numpy as np

from sklearn_mtml.datasets import load_av_digits, load_reviews
from sklearn_mtml.demo import av_digits_demo, main, reviews_demo


def test_shipped_data_sets_load():
    X, Y, split = load_av_digits()
    assert X.shape == (600, 2) and list(Y.columns) == ["digit", "speaker", "accent"]
    assert (split == "test").sum() == 300
    assert all(img.shape == (8, 8) for img in X["image"])
    Xr, Yr = load_reviews(as_frame=False)
    assert len(Xr["Review Text"]) == 3000 and set(Yr["Recommended IND"]) == {0, 1}


def test_av_digits_demo_learns_each_task(capsys):
    results = av_digits_demo(max_epochs=40)
    fused = results["fused (attention)"]
    assert fused["digit"] > 0.8 and fused["speaker"] > 0.8 and fused["accent"] > 0.8
    assert results["image only"]["speaker"] < 0.4  # images carry no speaker information
    assert "Audio-visual digits" in capsys.readouterr().out


def test_reviews_demo_runs(capsys):
    results = reviews_demo(max_epochs=3)
    assert set(results) == {"majority / mean", "single-task networks", "multi-task network"}
    assert all(np.isfinite(v) for v in results["multi-task network"].values())
    main(["--part", "reviews", "--epochs", "1"])
    assert "Clothing reviews" in capsys.readouterr().out
