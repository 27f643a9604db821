"""Small real data sets shipped with the package (for the demo, examples and tests)."""

from ._av_digits import load_av_digits
from ._reviews import load_reviews

__all__ = ["load_av_digits", "load_reviews"]
