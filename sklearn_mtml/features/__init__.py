"""Per-modality feature transformers: audio, images, text and categorical columns.

Each transformer takes one modality column (a pandas Series, a list, a 1-D object array or a
one-column DataFrame of per-row items) and returns float32 features. Missing rows (``None`` or
NaN) give all-zero output rows; they are never dropped. So do, with ``detect_empty=True`` (the
default), items that carry no signal: an empty or silent clip, a constant image, an empty or
whitespace-only text; ``absent_items(X)`` reports both kinds, and
:class:`~sklearn_mtml.fusion.ModalityFusion` marks them absent in its presence masks.
:class:`CategoricalFeatures` takes one or several categorical columns (identifiers, codes,
string categories) and returns int64 token ids in one shared vocabulary (0: missing), or
one-hot indicators.
"""

from .audio import AudioFeatures
from .categorical import CategoricalFeatures
from .image import ImageFeatures
from .pretrained import PretrainedFeatures, PretrainedTokenizer
from .text import TextFeatures

__all__ = [
    "AudioFeatures",
    "CategoricalFeatures",
    "ImageFeatures",
    "PretrainedFeatures",
    "PretrainedTokenizer",
    "TextFeatures",
]
