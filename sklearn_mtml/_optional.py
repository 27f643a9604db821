"""Optional dependencies, imported when a feature needs them, with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, *, needed_by: str, extra: str | None = None, instead: str = ""
            ) -> ModuleType:
    """Import ``module`` or raise an ImportError that says what needs it and how to get it.

    Parameters
    ----------
    module : str
        Dotted module name (``"matplotlib.pyplot"``).
    needed_by : str
        What needs it, for the message (``"plot_history"``).
    extra : str or None
        The package extra that installs it (``"plot"``: ``pip install sklearn-mtml[plot]``).
    instead : str
        How to do without it, appended to the message (``"or pass as_frame=False"``).

    Returns
    -------
    module : ModuleType
    """
    top = module.split(".")[0]
    try:
        importlib.import_module(top)  # the package itself must be importable (not just cached)
        return importlib.import_module(module)
    except ImportError as exc:
        how = f"`pip install sklearn-mtml[{extra}]`" if extra else f"`pip install {top}`"
        raise ImportError(
            f"{needed_by} needs {top}; install it with {how}{f', {instead}' if instead else ''}."
        ) from exc
