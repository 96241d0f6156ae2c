"""KD — Distilling the Knowledge in a Neural Network (Hinton et al., NIPS-W 2015), with SDD and LS."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from torch import Tensor

from dskd_core.losses import cross_entropy, kd
from dskd_core.methods.base import Batch, Distiller, register_method
from dskd_core.methods.logit import logit_term


def _kd_rows(temperature: float, student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
    return kd(student, teacher, temperature)


@register_method
class KD(Distiller):
    """CE on the raw global student logits + ``kd_weight`` × KD (optionally SDD / standardized).

    mdistiller's CIFAR defaults: T 4, CE 0.1, KD 0.9. ``--stand`` replaces T by ``--base-temp``
    and the KD weight by ``--kd-weight`` (DSKD README); the CE weight stays.
    """

    name = "kd"
    defaults: ClassVar[dict[str, Any]] = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0}

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["temperature"] = values["base_temp"]
        values["kd_weight"] = kd_weight

    def forward(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        image, target = batch["image"], batch["target"]
        s_logits, s_feats = self.student(image)
        t_logits, t_feats = self.teacher_forward(image)
        assert self.teacher is not None
        loss_kd = logit_term(
            partial(_kd_rows, self.cfg.temperature),
            self.cfg,
            target,
            (s_logits, s_feats, self.student),
            (t_logits, t_feats, self.teacher),
        )
        # CE stays on the raw global logits: standardization is a distillation-side transform.
        loss_ce = cross_entropy(s_logits, target).mean()
        return s_logits, {"loss_ce": self.cfg.ce_weight * loss_ce, "loss_kd": self.cfg.kd_weight * loss_kd}
