"""n, mean and sample standard deviation of a list of accuracies, and the 95% interval of a mean."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stat:
    """n, mean and sample standard deviation (n − 1; None below two values)."""

    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The two-sided 95% Student-t interval of the mean (n − 1 degrees of freedom); None below two values."""
        if self.mean is None or self.std is None:
            return None
        half = t_975(self.n - 1) * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half


#: Student's t 97.5% quantiles for 1 … 30 degrees of freedom (beyond: the Cornish-Fisher expansion).
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_975(df: int) -> float:
    """Student's t 97.5% quantile for ``df`` ≥ 1 degrees of freedom (the half-width factor of a 95% interval)."""
    if df < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = 1.959964  # the normal's 97.5% quantile; the expansion in 1/df is within 1e-4 of t from 30 df on
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def summarize(values: Sequence[float]) -> Stat:
    """Mean and sample std (Bessel's n − 1, as papers report "mean ± std over seeds")."""
    n = len(values)
    if n == 0:
        return Stat(0, None, None, None, None)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stat(n, mean, std, min(values), max(values))
