"""KD — Distilling the Knowledge in a Neural Network (Hinton et al., NIPS-W 2015), with SDD and LS."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from dskd_core.losses import PerSampleLoss, kd
from dskd_core.methods.base import register_method
from dskd_core.methods.logit import LogitDistiller


@register_method
class KD(LogitDistiller):
    """mdistiller's CIFAR defaults: T 4, CE 0.1, KD 0.9, no warm-up.

    ``--stand`` replaces T by ``--base-temp`` and the KD weight by ``--kd-weight`` (DSKD
    README); the CE weight stays.
    """

    name = "kd"
    defaults: ClassVar[dict[str, Any]] = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0, "warmup": 0}

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["temperature"] = values["base_temp"]
        values["kd_weight"] = kd_weight

    def per_sample(self) -> PerSampleLoss:
        temperature = self.cfg.temperature

        def loss(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
            return kd(student, teacher, temperature)

        return loss
