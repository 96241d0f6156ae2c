"""DKD — Decoupled Knowledge Distillation (Zhao et al., CVPR 2022), with SDD and LS."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from dskd_core.config import MethodParams
from dskd_core.losses import PerSampleLoss, dkd
from dskd_core.methods.base import register_method
from dskd_core.methods.logit import LogitDistiller


@register_method
class DKD(LogitDistiller):
    """mdistiller's defaults: CE 1, α 1, β 8 (per pair in the presets), T 4, 20-epoch warm-up.

    ``--stand`` (DSKD README): α and β are multiplied by ``--kd-weight`` and T becomes
    ``--base-temp``. Under SDD the reduction is DSKD's SD-DKD one (``sdd_weighting = "mean"``:
    mean loss × mean region weight, behind its DKD rows); ``--sdd-weighting region`` is the SDD
    paper's per-region form.
    """

    class Params(MethodParams):
        """DKD's weights: α on the target-class term (TCKD), β on the non-target one (NCKD)."""

        alpha: float = Field(1.0, ge=0)
        beta: float = Field(8.0, ge=0)

    name = "dkd"
    params: Params
    defaults: ClassVar[dict[str, Any]] = {
        "ce_weight": 1.0,
        "kd_weight": 1.0,
        "temperature": 4.0,
        "warmup": 20,
        "sdd_weighting": "mean",
    }

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["alpha"] *= kd_weight
        values["beta"] *= kd_weight
        values["temperature"] = values["base_temp"]

    def per_sample(self) -> PerSampleLoss:
        alpha, beta, temperature = self.params.alpha, self.params.beta, self.cfg.temperature

        def loss(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
            return dkd(student, teacher, target, alpha=alpha, beta=beta, temperature=temperature)

        return loss
