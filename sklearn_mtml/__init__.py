"""scikit-learn compatible multi-task and multi-modal deep learning on PyTorch."""

from .estimators import MultiTaskNet
from .features import AudioFeatures, ImageFeatures, TextFeatures
from .weighting import WEIGHTINGS, Weighting

__version__ = "0.1.0"

__all__ = [
    "WEIGHTINGS",
    "AudioFeatures",
    "ImageFeatures",
    "MultiTaskNet",
    "TextFeatures",
    "Weighting",
    "__version__",
]
