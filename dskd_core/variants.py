"""The variant-name grammar, built and parsed in one place (a leaf: imports nothing from dskd).

A variant names what ``--scales``/``--stand`` add to a method: ``kd``, ``kd+ls``, ``kd+sdd[1,2]``,
``kd+sdd[1,2]+ls``. A feature method names the KD term that SDD/LS come with: ``crd+kd+sdd[1,2,4]+ls``.
An SDD reduction other than the method's own follows the scales: ``dkd+sdd[1,2]+region+ls``,
``kd+sdd[1,2]+mean``. The name is the run folder's ``<variant>`` and the report's group key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Inverse of :func:`variant_name`; the added-term group only matches when SDD or LS follows it.
_VARIANT = re.compile(
    r"^(?P<method>[A-Za-z0-9_]+)(?:\+(?P<added>kd)(?=\+(?:sdd\[|ls$)))?"
    r"(?:\+sdd\[(?P<scales>[\d,]+)\](?:\+(?P<weighting>region|mean))?)?(?P<ls>\+ls)?$"
)


@dataclass(frozen=True)
class VariantParts:
    """A canonical variant name taken apart (:func:`parse_variant`)."""

    method: str
    scales: tuple[int, ...]  # (1,) when the name has no ``+sdd[...]``
    stand: bool
    added: str | None = None  # the KD term a feature method's SDD/LS come with
    weighting: str | None = None  # an SDD reduction other than the method's own; None: its own

    @property
    def sdd(self) -> bool:
        return list(self.scales) != [1]


def variant_name(
    method: str,
    scales: Sequence[int],
    sdd_weighting: str | None,
    stand: bool,
    *,
    enhanced_by: str | None = None,
    own_weighting: str = "region",
) -> str:
    """The canonical variant name of a run.

    ``enhanced_by``: the KD term a feature method's SDD/LS come as (its ``MethodSpec.enhanced_by``).
    ``sdd_weighting`` is named (after the scales) only when SDD is on and it is not the method's
    ``own_weighting``; None names no reduction (a legacy log that does not record one).
    """
    name = method
    sdd = list(scales) not in ([], [1])
    if enhanced_by and (sdd or stand):
        name += "+" + enhanced_by
    if sdd:
        name += "+sdd[" + ",".join(str(s) for s in scales) + "]"
        if sdd_weighting is not None and sdd_weighting != own_weighting:
            name += "+" + sdd_weighting
    return name + ("+ls" if stand else "")


def parse_variant(name: str) -> VariantParts | None:
    """``kd+sdd[1,2]+ls`` → ``VariantParts("kd", (1, 2), True)``; None for a name that is not canonical."""
    match = _VARIANT.match(name)
    if match is None:
        return None
    scales = tuple(int(s) for s in match["scales"].split(",")) if match["scales"] else (1,)
    return VariantParts(match["method"], scales, bool(match["ls"]), match["added"], match["weighting"])


def own_reduction(name: str) -> bool:
    """Whether a variant uses its method's own SDD reduction (no ``+region``/``+mean`` token in its name)."""
    parsed = parse_variant(name)
    return parsed is not None and parsed.weighting is None


def is_dskd_variant(name: str) -> bool:
    """SDD (more than the global scale) and logit standardization together: the DSKD README's "Ours"."""
    parsed = parse_variant(name)
    return parsed is not None and parsed.sdd and parsed.stand
