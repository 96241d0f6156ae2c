"""Name -> constructor registries of the model zoos (torchvision's rules: one owner per name).

There are two zoos, as mdistiller keeps two model dicts: ``cifar`` (32×32 inputs, the
RepDistiller/mdistiller CIFAR nets) and ``imagenet`` (torchvision's layouts). ``ResNet18``,
``ResNet34`` and ``ResNet50`` exist in both, as different nets, so a name is looked up in the
zoo of the dataset (``DatasetSpec.zoo``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from dskd_core.errors import UnknownNameError, UsageError, natural_key
from dskd_core.models.base import ZooModel

_Factory = TypeVar("_Factory", bound=Callable[..., ZooModel])

#: Zoo name -> the number of classes its models get when none is given.
ZOOS: dict[str, int] = {"cifar": 100, "imagenet": 1000}

_MODELS: dict[str, dict[str, Callable[..., ZooModel]]] = {zoo: {} for zoo in ZOOS}
#: (zoo, alias) -> (registered name, why the alias exists).
_ALIASES: dict[tuple[str, str], tuple[str, str]] = {}


def _zoo(zoo: str) -> dict[str, Callable[..., ZooModel]]:
    if zoo not in _MODELS:
        raise UnknownNameError("model zoo", zoo, _MODELS)
    return _MODELS[zoo]


def register_model(name: str, zoo: str = "cifar") -> Callable[[_Factory], _Factory]:
    """Decorator registering ``factory(num_classes: int) -> ZooModel`` under ``name`` in ``zoo``.

    A name already taken in that zoo raises UsageError: silently replacing a model would change
    what every config that names it trains.
    """

    def decorator(factory: _Factory) -> _Factory:
        models = _zoo(zoo)
        if name in models or (zoo, name) in _ALIASES:
            raise UsageError(f"model '{name}' is already registered: register the new model under another name")
        models[name] = factory
        return factory

    return decorator


def register_alias(alias: str, target: str, *, zoo: str, reason: str) -> None:
    """Accept ``alias`` for the registered ``target`` of ``zoo``; using it warns with ``reason``."""
    models = _zoo(zoo)
    if target not in models:
        raise UsageError(f"alias '{alias}' names '{target}', which is not registered in the {zoo} zoo")
    if alias in models or (zoo, alias) in _ALIASES:
        raise UsageError(f"model '{alias}' is already registered: choose another alias")
    _ALIASES[(zoo, alias)] = (target, reason)


def resolve_model_name(name: str, zoo: str = "cifar") -> tuple[str, str | None]:
    """``(registered name, warning or None)``: aliases map to their model, unknown names fail.

    The error lists close matches in ``zoo`` and says so when the name belongs to another zoo.
    """
    models = _zoo(zoo)
    if name in models:
        return name, None
    if (zoo, name) in _ALIASES:
        target, reason = _ALIASES[(zoo, name)]
        return target, f"model '{name}' on {zoo} is {target} ({reason}); using {target}"
    elsewhere = [other for other in _MODELS if other != zoo and (name in _MODELS[other] or (other, name) in _ALIASES)]
    if elsewhere:
        raise UsageError(
            f"model '{name}' belongs to the {elsewhere[0]} zoo, not to the {zoo} zoo: pick a dataset of that zoo "
            f"(dskd models --zoo {elsewhere[0]}) or one of {', '.join(sorted(models, key=natural_key))}"
        )
    # every zoo's names, this zoo's suggested first: resnet8x5 on imagenet still offers the CIFAR resnet8x4, after
    # the ImageNet nets
    names = {z: [*_MODELS[z], *(a for (az, a) in _ALIASES if az == z)] for z in _MODELS}
    known = [*names[zoo], *(n for z in _MODELS if z != zoo for n in names[z])]
    raise UnknownNameError(kind="model", name=name, known=known, first=names[zoo])


def create_model(name: str, num_classes: int | None = None, *, zoo: str = "cifar") -> ZooModel:
    """Build the model registered as ``name`` in ``zoo`` with a ``num_classes``-way classifier.

    ``num_classes`` defaults to the zoo's (CIFAR-100: 100, ImageNet: 1000). An alias builds its
    model and emits a ``UserWarning`` that names it.
    """
    canonical, note = resolve_model_name(name, zoo)
    if note is not None:
        warnings.warn(note, UserWarning, stacklevel=2)
    classes = ZOOS[zoo] if num_classes is None else num_classes
    if classes < 1:
        raise UsageError(f"num_classes must be at least 1, got {classes}")
    return _MODELS[zoo][canonical](num_classes=classes)


def list_models(zoo: str | None = "cifar") -> list[str]:
    """Registered model names of ``zoo`` (every zoo when None), in natural order; aliases not included."""
    if zoo is None:
        return sorted({name for models in _MODELS.values() for name in models}, key=natural_key)
    return sorted(_zoo(zoo), key=natural_key)


def list_aliases(zoo: str) -> dict[str, str]:
    """``{alias: registered name}`` of ``zoo``."""
    _zoo(zoo)
    return {alias: target for (z, alias), (target, _) in _ALIASES.items() if z == zoo}


class ModelInfo(NamedTuple):
    """One row of ``dskd models``: a registered model of a zoo, its parameter count and its aliases."""

    zoo: str
    name: str
    parameters: int | None  # None unless counted
    aliases: str  # comma-separated


def describe(zoo: str | None = None, *, params: bool = False, num_classes: int | None = None) -> list[ModelInfo]:
    """Every registered model of ``zoo`` (every zoo when None), with its aliases; ``params`` builds each
    model (``num_classes``-way, default the zoo's) to count its parameters."""
    if zoo is not None and zoo not in ZOOS:
        raise UsageError(f"unknown zoo '{zoo}': use {' or '.join(ZOOS)}")
    rows = []
    for z in ZOOS if zoo is None else (zoo,):
        aliases = list_aliases(z)
        for n in list_models(z):
            count = sum(p.numel() for p in create_model(n, num_classes, zoo=z).parameters()) if params else None
            rows.append(ModelInfo(z, n, count, ", ".join(a for a, target in aliases.items() if target == n)))
    return rows
