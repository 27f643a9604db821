"""scikit-learn compatible multi-task and multi-modal deep learning on PyTorch."""

__version__ = "0.1.0"
