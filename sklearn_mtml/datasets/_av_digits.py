"""Audio-visual digits: spoken digits (an FSDD subset) paired with handwritten digit images."""

from __future__ import annotations

from importlib import resources

import numpy as np

from .._optional import require

__all__ = ["load_av_digits"]

#: Accent of each FSDD speaker (from the data set's ``speakers.csv``).
ACCENTS = {"george": "GRC/Greek", "jackson": "USA/neutral", "lucas": "DEU/German",
           "nicolas": "BEL/French", "theo": "USA/neutral", "yweweler": "DEU/German"}


def load_av_digits(*, as_frame: bool = True, random_state: int = 0):
    """Load 600 spoken digits paired with images of the same digit.

    Audio: takes 0–9 of every digit and speaker of the Free Spoken Digit Dataset (6 speakers ×
    10 digits × 10 takes; 8 kHz mono; CC BY-SA 4.0, see ``datasets/data/NOTICE.md``). Images:
    scikit-learn's bundled 8×8 handwritten digits, each recording paired with an image of the
    same digit drawn at random (``random_state``) without reuse. Tasks: ``digit`` (both
    modalities carry it), ``speaker`` and ``accent`` (only the audio carries them). FSDD's own
    split puts takes 0–4 in the test set: ``split`` says ``"train"`` or ``"test"``.

    Parameters
    ----------
    as_frame : bool, default=True
        Return pandas DataFrames (requires pandas); else dicts of numpy columns.
    random_state : int, default=0
        Seed of the image pairing.

    Returns
    -------
    X : DataFrame or dict
        ``image`` (8×8 float arrays in [0, 16]) and ``audio`` (1-D float32 waveforms in
        [-1, 1] at 8 kHz), one object per row.
    Y : DataFrame or dict
        ``digit`` (int), ``speaker`` (str), ``accent`` (str).
    split : ndarray of str
        ``"train"`` (takes 5–9) or ``"test"`` (takes 0–4).

    Examples
    --------
    >>> from sklearn_mtml.datasets import load_av_digits
    >>> X, Y, split = load_av_digits()
    >>> X["audio"][0].dtype, X["image"][0].shape, int((split == "test").sum())
    (dtype('float32'), (8, 8), 300)
    """
    from sklearn.datasets import load_digits

    path = resources.files("sklearn_mtml.datasets") / "data" / "fsdd_subset.npz"
    with path.open("rb") as f, np.load(f) as data:
        audio, offsets = data["audio"], data["offsets"]
        digit, speaker, take = data["digit"], data["speaker"].astype(str), data["take"]
    waves = np.empty(len(digit), dtype=object)
    for i in range(len(digit)):
        waves[i] = audio[offsets[i]:offsets[i + 1]].astype(np.float32) / 32768.0
    digits = load_digits()
    rng = np.random.RandomState(random_state)
    images = np.empty(len(digit), dtype=object)
    for d in np.unique(digit):
        rows = np.flatnonzero(digit == d)
        pool = rng.permutation(np.flatnonzero(digits.target == d))[:len(rows)]
        for r, p in zip(rows, pool):
            images[r] = digits.images[p]
    X = {"image": images, "audio": waves}
    Y = {"digit": digit.astype(int), "speaker": speaker.astype(object),
         "accent": np.array([ACCENTS[s] for s in speaker], dtype=object)}
    split = np.where(take < 5, "test", "train")
    if as_frame:
        pd = require("pandas", needed_by="load_av_digits(as_frame=True)",
                     instead="or pass as_frame=False")
        X, Y = pd.DataFrame(X), pd.DataFrame(Y)
    return X, Y, split
