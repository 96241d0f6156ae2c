"""Distillers, one small file per method, registered by name."""

from dskd_core.methods import (  # noqa: F401  (registration side effect)
    at,
    crd,
    dkd,
    fitnet,
    kd,
    kdsvd,
    mlkd,
    nst,
    ofd,
    pkt,
    reviewkd,
    rkd,
    rld,
    sp,
    vanilla,
    vid,
)
from dskd_core.methods.base import Distiller, get_method, list_methods, register_method

__all__ = ["Distiller", "get_method", "list_methods", "register_method"]
