"""Small real data sets shipped with the package (for the demo, examples and tests)."""

from ._reviews import load_reviews

__all__ = ["load_reviews"]
