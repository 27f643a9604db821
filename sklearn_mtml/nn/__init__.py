"""Pure-torch building blocks (no scikit-learn): encoders, fusion, architectures, heads."""

from .architectures import ARCHITECTURES, MultiTaskArchitecture, register_architecture
from .encoders import ENCODERS
from .fusion import FUSIONS
from .heads import TaskHeads
from .model import MultiTaskModule
from .pretrained import PretrainedEncoder

__all__ = [
    "ARCHITECTURES",
    "ENCODERS",
    "FUSIONS",
    "MultiTaskArchitecture",
    "MultiTaskModule",
    "PretrainedEncoder",
    "TaskHeads",
    "register_architecture",
]
