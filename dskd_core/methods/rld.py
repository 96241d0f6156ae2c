"""RLD — Refined Logit Distillation (Sun et al., ICCV 2025), with SDD and LS."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from dskd_core.losses import PerSampleLoss, rld
from dskd_core.methods.base import register_method
from dskd_core.methods.logit import LogitDistiller


@register_method
class RLD(LogitDistiller):
    """RLD's defaults: CE 1, α 1, β 8, T 4, α_T 1 (DSKD runs it without ``--same-t``), warm-up 20.

    ``--stand`` (DSKD README): α and β are multiplied by ``--kd-weight``, and T and α_T both
    become ``--base-temp``; ``--same-t`` sets α_T = T.
    """

    name = "rld"
    defaults: ClassVar[dict[str, Any]] = {
        "ce_weight": 1.0,
        "kd_weight": 1.0,
        "alpha": 1.0,
        "beta": 8.0,
        "temperature": 4.0,
        "alpha_temperature": 1.0,
        "warmup": 20,
    }

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["alpha"] *= kd_weight
        values["beta"] *= kd_weight
        values["temperature"] = values["alpha_temperature"] = values["base_temp"]

    def per_sample(self) -> PerSampleLoss:
        cfg = self.cfg
        assert cfg.alpha is not None and cfg.beta is not None and cfg.alpha_temperature is not None
        alpha, beta, t, at = cfg.alpha, cfg.beta, cfg.temperature, cfg.alpha_temperature

        def loss(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
            return rld(student, teacher, target, alpha=alpha, beta=beta, temperature=t, alpha_temperature=at)

        return loss
