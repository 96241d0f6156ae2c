"""Names in reports: the variant grammar (:mod:`dskd_core.variants`) as the report uses it, and the
short model and method names of the mdistiller/DSKD/LSKD logs."""

from __future__ import annotations

from collections.abc import Sequence

from dskd_core import variants
from dskd_core.errors import UnknownNameError
from dskd_core.methods import get_method
from dskd_core.variants import is_dskd_variant, own_reduction

__all__ = [
    "LEGACY_METHODS",
    "MODEL_ALIASES",
    "is_dskd_variant",
    "model_name",
    "own_reduction",
    "parse_variant",
    "variant_name",
]

#: mdistiller/DSKD short model names (their ``verify_dict``) → the names dskd and the field use.
MODEL_ALIASES = {
    "res8x4": "resnet8x4",
    "res32x4": "resnet32x4",
    "res20": "resnet20",
    "res32": "resnet32",
    "res56": "resnet56",
    "res110": "resnet110",
    "res18": "ResNet18",
    "res34": "ResNet34",
    "res50": "ResNet50",
    "shuv1": "ShuffleV1",
    "shuv2": "ShuffleV2",
    "mv1": "MobileNetV1",
    "mv2": "MobileNetV2",
    "wrn40_2": "wrn_40_2",
    "wrn40_1": "wrn_40_1",
    "wrn16_2": "wrn_16_2",
}

#: Distiller types of mdistiller, the LSKD, RLD and DSKD repositories (lower case, ``sdd_`` stripped).
LEGACY_METHODS = frozenset(
    {
        "vanilla",
        "kd",
        "dkd",
        "rld",
        "mlkd",
        "mlkd_noaug",
        "at",
        "crd",
        "fitnet",
        "reviewkd",
        "nst",
        "ofd",
        "pkt",
        "rkd",
        "sp",
        "vid",
        "kdsvd",
        "dot",
        "ctkd",
        "rc",
        "swap",
        "revision",
    }
)


def variant_name(method: str, scales: Sequence[int], stand: bool) -> str:
    """The canonical variant name (``RunConfig.variant``) of a run whose SDD reduction is its method's
    own: ``kd``, ``kd+sdd[1,2]``, ``kd+sdd[1,2]+ls``; ``crd+kd+sdd[1,2]+ls`` for a feature method,
    whose SDD/LS come as an added KD term. A method dskd does not have (a legacy log's) adds none."""
    try:
        added = get_method(method).enhanced_by
    except UnknownNameError:  # a method of a legacy log that dskd does not have
        added = None
    return variants.variant_name(method, scales, None, stand, enhanced_by=added)


def parse_variant(variant: str) -> tuple[str, list[int], bool] | None:
    """``kd+sdd[1,2]+ls`` → ("kd", [1, 2], True); None for names that are not canonical."""
    parsed = variants.parse_variant(variant)
    return None if parsed is None else (parsed.method, list(parsed.scales), parsed.stand)


def model_name(short: str) -> str:
    """mdistiller/DSKD short names (``res32x4``, ``shuv2``, ``*_sdd``) → model names."""
    name = short.strip().removesuffix("_sdd")
    return MODEL_ALIASES.get(name, name)
