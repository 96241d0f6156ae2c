"""Name -> constructor registry of the model zoo (torchvision's rules: one owner per name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.models.base import ZooModel

_Factory = TypeVar("_Factory", bound=Callable[..., ZooModel])

_MODELS: dict[str, Callable[..., ZooModel]] = {}


def register_model(name: str) -> Callable[[_Factory], _Factory]:
    """Decorator registering ``factory(num_classes: int) -> ZooModel`` under ``name``.

    A name already taken raises UsageError: silently replacing a model would change what
    every config that names it trains.
    """

    def decorator(factory: _Factory) -> _Factory:
        if name in _MODELS:
            raise UsageError(f"model '{name}' is already registered: register the new model under another name")
        _MODELS[name] = factory
        return factory

    return decorator


def create_model(name: str, num_classes: int = 100) -> ZooModel:
    """Build the model registered as ``name`` with a ``num_classes``-way classifier."""
    if name not in _MODELS:
        raise UnknownNameError(kind="model", name=name, known=_MODELS)
    if num_classes < 1:
        raise UsageError(f"num_classes must be at least 1, got {num_classes}")
    return _MODELS[name](num_classes=num_classes)


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)
