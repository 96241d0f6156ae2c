"""dskd: scale-decoupled distillation with logit standardization, as a typed library.

The library never prints; the ``dskd`` command line (``dskd_cli``) renders what it returns.
The names below are the public API; everything else is importable from its module.
"""

from dskd_core._version import __version__
from dskd_core.config import MethodParams, RunConfig, Settings
from dskd_core.errors import DskdError, UsageError
from dskd_core.losses import cross_entropy, dkd, kd, rld, standardize, standardized
from dskd_core.methods import Distiller, get_method, list_methods, register_method
from dskd_core.models import ZooModel, create_model, list_models, register_model
from dskd_core.resolve import load_run_config, resolve_run_config
from dskd_core.sdd import multiscale_logits, region_weights, sdd_loss
from dskd_core.train import EvalResult, RunResult, evaluate, fit

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
