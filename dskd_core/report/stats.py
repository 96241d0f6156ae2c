"""n, mean and sample standard deviation of a list of accuracies."""

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


def summarize(values: Sequence[float]) -> Stat:
    """Mean and sample std (Bessel's n − 1, as papers report "mean ± std over seeds")."""
    n = len(values)
    if n == 0:
        return Stat(0, None, None, None, None)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stat(n, mean, std, min(values), max(values))
