"""Named registries of interchangeable classes (architectures, weightings, ...).

One place for what every registry needs: a decorator that registers a class under a name, and
a builder that resolves a name (or a class) and instantiates it, turning an unknown name or an
unknown hyperparameter into an error that names what the user passed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

_C = TypeVar("_C", bound=type)

__all__ = ["build", "registrar"]


def registrar(registry: dict[str, Any]) -> Callable[[str], Callable[[_C], _C]]:
    """Return a ``register(name)`` class decorator that adds classes to ``registry``."""

    def register(name: str) -> Callable[[_C], _C]:
        def decorator(cls: _C) -> _C:
            registry[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]  # registered bases declare it
            return cls

        return decorator

    return register


def build(registry: dict[str, type], base: type, value: Any, *args: Any, what: str,
          prefix: str, **params: Any) -> Any:
    """Instantiate ``value`` (a registry name or a ``base`` subclass) with its parameters.

    Parameters
    ----------
    registry : dict of str to type
        The registry to resolve names in.
    base : type
        Base class that a class ``value`` must derive from.
    value : str or type
        Registry name or class.
    *args
        Positional arguments of the constructor (sizes the estimator computes).
    what : str
        The estimator parameter ``value`` came from (``"architecture"``), for messages.
    prefix : str
        The prefix of the hyperparameters (``"module"``), for messages.
    **params
        Hyperparameters (the user's ``<prefix>__*`` parameters).

    Raises
    ------
    ValueError
        For an unknown name, or hyperparameters the class does not take (named as the user
        passed them, with those it accepts).
    """
    if isinstance(value, str):
        if value not in registry:
            raise ValueError(f"Unknown {what} {value!r}; expected one of {sorted(registry)} or "
                             f"a {base.__name__} subclass.")
        cls = registry[value]
    elif isinstance(value, type) and issubclass(value, base):
        cls = value
    else:
        raise TypeError(f"{what} must be a name or a {base.__name__} subclass, got {value!r}.")
    signature = inspect.signature(cls.__init__)  # type: ignore[misc]  # cls is a class
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    accepted = [name for name, p in list(signature.parameters.items())[1 + len(args):]
                if p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(
            f"{what} {getattr(cls, 'registry_name', cls.__name__)!r} does not take "
            f"{[f'{prefix}__{k}' for k in unknown]}; it accepts "
            f"{[f'{prefix}__{k}' for k in accepted]}."
        )
    return cls(*args, **params)
