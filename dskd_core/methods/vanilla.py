"""Training from scratch with cross-entropy: teachers and student baselines."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from dskd_core.losses import cross_entropy
from dskd_core.methods.base import Batch, Distiller, register_method
from dskd_core.models import Features


@register_method
class Vanilla(Distiller):
    """Cross-entropy only; no teacher."""

    name = "vanilla"
    needs_teacher = False
    defaults: ClassVar[dict[str, Any]] = {"ce_weight": 1.0, "kd_weight": 0.0}

    fusable = True

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        logits, _ = self.student(batch["image"])
        return logits, self.terms_from(batch, (logits, None), None)

    def terms_from(
        self, batch: Batch, student: tuple[Tensor, Tensor | None], teacher: tuple[Tensor, Features] | None
    ) -> dict[str, Tensor]:
        return {"loss_ce": self.cfg.ce_weight * cross_entropy(student[0], batch["target"]).mean()}
