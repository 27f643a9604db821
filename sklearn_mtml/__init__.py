"""scikit-learn compatible multi-task and multi-modal deep learning on PyTorch."""

from .estimators import MultiTaskNet
from .weighting import WEIGHTINGS, Weighting

__version__ = "0.1.0"

__all__ = ["WEIGHTINGS", "MultiTaskNet", "Weighting", "__version__"]
