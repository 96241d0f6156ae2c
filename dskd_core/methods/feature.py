"""What the feature distillers share: CE + the method's own term, plus KD when SDD/LS are asked for."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from dskd_core.config import MethodParams, RunConfig
from dskd_core.errors import UsageError
from dskd_core.losses import cross_entropy, kd
from dskd_core.methods.base import Batch, Distiller
from dskd_core.methods.logit import logit_term
from dskd_core.models import Features, ZooModel

#: Every feature method's defaults (mdistiller CIFAR: CE 1). ``kd_weight``/``temperature`` are KD's
#: (mdistiller: 0.9, T 4) and act only when ``--scales``/``--stand`` add the KD term.
FEATURE_DEFAULTS: dict[str, Any] = {"ce_weight": 1.0, "kd_weight": 0.9, "temperature": 4.0, "warmup": 0}


class FeatureParams(MethodParams):
    """What every feature method has: the weight of its own term (``loss_feat``); each sets its default."""

    feat_weight: float = Field(1.0, ge=0)


#: The input side the shape probes use (upstream's INPUT_SIZE for FitNet and VID).
PROBE_SIZE = 32


def probe_features(model: ZooModel, size: int = PROBE_SIZE) -> Features:
    """``model``'s features for a dummy ``size``×``size`` input, for sizing extra modules.

    Runs in eval mode under no_grad on zeros, so no BatchNorm statistic and no RNG state moves.
    """
    was_training = model.training
    param = next(model.parameters())
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(2, 3, size, size, device=param.device, dtype=param.dtype))[1]
    finally:
        model.train(was_training)


def pool_to_common(f_s: Tensor, f_t: Tensor) -> tuple[Tensor, Tensor]:
    """Adaptive-average-pool the spatially larger of two maps to the smaller's size (AT, NST, VID)."""
    s_h, s_w = f_s.shape[-2:]
    t_h, t_w = f_t.shape[-2:]
    if s_h > t_h:
        f_s = F.adaptive_avg_pool2d(f_s, (t_h, t_w))
    elif s_h < t_h:
        f_t = F.adaptive_avg_pool2d(f_t, (s_h, s_w))
    return f_s, f_t


class FeatureDistiller(Distiller):
    """CE on the raw student logits + ``feat_weight`` × :meth:`feature_loss` (the ``loss_feat`` term).

    "Each method can be enhanced with SDD and logit standardization": with ``--scales`` other
    than 1 or with ``--stand``, KD on the (multi-scale, standardized) logits is added as
    ``loss_kd`` = ``kd_weight`` × KD at ``temperature``, with KD's ``--stand`` semantics
    (T = ``--base-temp``, weight = ``--kd-weight``). ``cfg.warmup`` ramps the feature term.
    """

    enhanced_by = "kd"
    Params: ClassVar[type[MethodParams]] = FeatureParams
    params: FeatureParams
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        if teacher is None:
            raise UsageError(f"method '{self.name}' needs a teacher: dskd train {self.name} TEACHER STUDENT")
        super().__init__(student, teacher, cfg)

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        values["temperature"] = values["base_temp"]
        values["kd_weight"] = kd_weight

    @property
    def adds_kd(self) -> bool:
        return self.cfg.scales != [1] or self.cfg.stand

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        raise NotImplementedError

    def term_weights(self, epoch: int) -> dict[str, float]:
        if self.cfg.warmup > 0:
            return {"loss_feat": min(epoch / self.cfg.warmup, 1.0)}
        return {}

    def describe(self) -> list[str]:
        count = sum(p.numel() for n, p in self.named_parameters() if not n.startswith(("student.", "teacher.")))
        return super().describe() + ([f"{self.name}: {count:,} extra trainable parameters"] if count else [])

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        image, target = batch["image"], batch["target"]
        s_logits, s_feats = self.student(image)
        t_logits, t_feats = self.teacher_forward(image)
        assert self.teacher is not None
        terms = {
            "loss_ce": self.cfg.ce_weight * cross_entropy(s_logits, target).mean(),
            "loss_feat": self.params.feat_weight * self.feature_loss(s_feats, t_feats, batch),
        }
        if self.adds_kd:
            temperature = self.cfg.temperature

            def per_sample(s: Tensor, t: Tensor, y: Tensor) -> Tensor:
                return kd(s, t, temperature)

            student, teacher = (s_logits, s_feats, self.student), (t_logits, t_feats, self.teacher)
            terms["loss_kd"] = self.cfg.kd_weight * logit_term(per_sample, self.cfg, target, student, teacher)
        return s_logits, terms
