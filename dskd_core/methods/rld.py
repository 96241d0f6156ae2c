"""RLD — Refined Logit Distillation (Sun et al., ICCV 2025), with SDD and LS."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from dskd_core.config import MethodParams
from dskd_core.losses import PerSampleLoss, rld
from dskd_core.methods.base import register_method
from dskd_core.methods.logit import LogitDistiller


@register_method
class RLD(LogitDistiller):
    """RLD's defaults: CE 1, α 1, β 8, T 4, α_T 1 (DSKD runs it without ``--same-t``), warm-up 20.

    ``--stand`` (DSKD README): α and β are multiplied by ``--kd-weight``, and T and α_T both
    become ``--base-temp``; ``--same-t`` sets α_T = T.
    """

    class Params(MethodParams):
        """RLD's weights (α, β) and α_T, the temperature of its target-class term."""

        alpha: float = Field(1.0, ge=0)
        beta: float = Field(8.0, ge=0)
        alpha_temperature: float = Field(1.0, gt=0)

    name = "rld"
    params: Params
    defaults: ClassVar[dict[str, Any]] = {
        "ce_weight": 1.0,
        "kd_weight": 1.0,
        "temperature": 4.0,
        "warmup": 20,
    }

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["alpha"] *= kd_weight
        values["beta"] *= kd_weight
        values["temperature"] = values["alpha_temperature"] = values["base_temp"]

    def per_sample(self) -> PerSampleLoss:
        p = self.params
        alpha, beta, t, at = p.alpha, p.beta, self.cfg.temperature, p.alpha_temperature

        def loss(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
            return rld(student, teacher, target, alpha=alpha, beta=beta, temperature=t, alpha_temperature=at)

        return loss
