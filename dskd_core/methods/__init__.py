"""Distillers, one small file per method, registered by name."""

from dskd_core.methods import dkd, kd, rld, vanilla  # noqa: F401  (registration side effect)
from dskd_core.methods.base import Distiller, get_method, list_methods, register_method

__all__ = ["Distiller", "get_method", "list_methods", "register_method"]
