"""Pure-torch building blocks (no scikit-learn): encoders, fusion, architectures, heads."""

from .architectures import ARCHITECTURES, MultiTaskArchitecture, register_architecture
from .encoders import ENCODERS
from .fusion import FUSIONS
from .heads import TaskHeads
from .model import MultiTaskModule

__all__ = [
    "ARCHITECTURES",
    "ENCODERS",
    "FUSIONS",
    "MultiTaskArchitecture",
    "MultiTaskModule",
    "TaskHeads",
    "register_architecture",
]
