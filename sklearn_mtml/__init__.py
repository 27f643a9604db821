"""scikit-learn compatible multi-task and multi-modal deep learning on PyTorch."""

from .blocks import ModalityBlocks
from .ensemble import KFoldEnsemble
from .estimators import MultiTaskNet
from .features import AudioFeatures, CategoricalFeatures, ImageFeatures, TextFeatures
from .fusion import ModalityFusion
from .late_fusion import LateFusionClassifier, LateFusionRegressor
from .lazy import FileBlocks
from .metrics import delta_p, task_scorer, task_scorers
from .nn.pretrained import PretrainedEncoder
from .plotting import (
    plot_confusion_matrices,
    plot_history,
    plot_modality_weights,
    plot_task_attention,
)
from .tasks import TaskInferenceWarning
from .weighting import WEIGHTINGS, Weighting

__version__ = "0.1.0"

__all__ = [
    "WEIGHTINGS",
    "AudioFeatures",
    "CategoricalFeatures",
    "FileBlocks",
    "ImageFeatures",
    "KFoldEnsemble",
    "LateFusionClassifier",
    "LateFusionRegressor",
    "ModalityBlocks",
    "ModalityFusion",
    "MultiTaskNet",
    "PretrainedEncoder",
    "TaskInferenceWarning",
    "TextFeatures",
    "Weighting",
    "__version__",
    "delta_p",
    "plot_confusion_matrices",
    "plot_history",
    "plot_modality_weights",
    "plot_task_attention",
    "task_scorer",
    "task_scorers",
]
