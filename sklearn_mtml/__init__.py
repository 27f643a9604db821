"""scikit-learn compatible multi-task and multi-modal deep learning on PyTorch."""

from .blocks import ModalityBlocks
from .estimators import MultiTaskNet
from .features import AudioFeatures, ImageFeatures, TextFeatures
from .fusion import ModalityFusion
from .late_fusion import LateFusionClassifier, LateFusionRegressor
from .weighting import WEIGHTINGS, Weighting

__version__ = "0.1.0"

__all__ = [
    "WEIGHTINGS",
    "AudioFeatures",
    "ImageFeatures",
    "LateFusionClassifier",
    "LateFusionRegressor",
    "ModalityBlocks",
    "ModalityFusion",
    "MultiTaskNet",
    "TextFeatures",
    "Weighting",
    "__version__",
]
