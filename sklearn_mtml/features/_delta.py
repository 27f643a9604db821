"""The delta (Savitzky-Golay) window rule shared by the librosa and torch audio back ends."""

from __future__ import annotations

__all__ = ["savgol_width"]


def savgol_width(n_frames: int, width: int) -> int:
    """Delta window used for a clip of ``n_frames`` frames.

    librosa's ``delta(mode="interp")`` needs ``width <= n_frames``; for shorter clips the window
    shrinks to the largest odd number that fits, and the delta is zero (returned width 0) when
    fewer than 3 frames are available. Both backends follow this rule.

    Parameters
    ----------
    n_frames : int
        Frames of the clip.
    width : int
        The requested (odd) window.

    Returns
    -------
    width : int
        The window to use, or 0 for no delta.
    """
    w = min(width, n_frames)
    if w % 2 == 0:
        w -= 1
    return w if w >= 3 else 0
