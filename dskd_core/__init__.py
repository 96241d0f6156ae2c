"""dskd: scale-decoupled distillation with logit standardization, as a typed library.

The library never prints; the ``dskd`` command line (``dskd_cli``) renders what it returns.
The names below are the public API; everything else is importable from its module. They load
on first use (PEP 562), so ``import dskd_core.errors`` or the CLI's ``--help`` does not pay for
torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dskd_core._version import __version__

if TYPE_CHECKING:
    from dskd_core.config import MethodParams, RunConfig, Settings
    from dskd_core.errors import DskdError, UsageError
    from dskd_core.losses import cross_entropy, dkd, kd, rld, standardize, standardized
    from dskd_core.methods import Distiller, get_method, list_methods, register_method
    from dskd_core.models import ZooModel, create_model, list_models, register_model
    from dskd_core.resolve import load_run_config, resolve_run_config
    from dskd_core.sdd import multiscale_logits, region_weights, sdd_loss
    from dskd_core.train import EvalResult, RunResult, evaluate, fit

#: Public name → the module that defines it.
_API = {
    **dict.fromkeys(("MethodParams", "RunConfig", "Settings"), "dskd_core.config"),
    **dict.fromkeys(("DskdError", "UsageError"), "dskd_core.errors"),
    **dict.fromkeys(("cross_entropy", "dkd", "kd", "rld", "standardize", "standardized"), "dskd_core.losses"),
    **dict.fromkeys(("Distiller", "get_method", "list_methods", "register_method"), "dskd_core.methods"),
    **dict.fromkeys(("ZooModel", "create_model", "list_models", "register_model"), "dskd_core.models"),
    **dict.fromkeys(("load_run_config", "resolve_run_config"), "dskd_core.resolve"),
    **dict.fromkeys(("multiscale_logits", "region_weights", "sdd_loss"), "dskd_core.sdd"),
    **dict.fromkeys(("EvalResult", "RunResult", "evaluate", "fit"), "dskd_core.train"),
}

__all__ = [
    "Distiller",
    "DskdError",
    "EvalResult",
    "MethodParams",
    "RunConfig",
    "RunResult",
    "Settings",
    "UsageError",
    "ZooModel",
    "__version__",
    "create_model",
    "cross_entropy",
    "dkd",
    "evaluate",
    "fit",
    "get_method",
    "kd",
    "list_methods",
    "list_models",
    "load_run_config",
    "multiscale_logits",
    "region_weights",
    "register_method",
    "register_model",
    "resolve_run_config",
    "rld",
    "sdd_loss",
    "standardize",
    "standardized",
]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'dskd_core' has no attribute {name!r}")
    if module == "dskd_core.config":  # a run config names a method: the built-in ones are registered first
        importlib.import_module("dskd_core.methods")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
