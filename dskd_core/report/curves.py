"""Mean test top-1 per epoch of each group (``dskd report --curves``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dskd_core.report.build import Report


@dataclass(frozen=True)
class Curve:
    """The mean test top-1 per epoch over a group's complete runs (truncated to the shortest)."""

    label: str
    epochs: list[int]
    mean: list[float]
    n: int


def group_curves(report: Report) -> list[Curve]:
    """One curve per group with complete runs that logged their epochs."""
    out = []
    for group in report.groups:
        curves = [r.curve for r in group.used if r.curve]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        mean = [math.fsum(c[i] for c in curves) / len(curves) for i in range(length)]
        pair = f"{group.teacher}→{group.student}" if group.teacher else group.student
        label = f"{group.variant} {pair} ({group.dataset}, n={len(curves)})"
        out.append(Curve(label, list(range(1, length + 1)), mean, len(curves)))
    return out
