"""SP — Similarity-Preserving Knowledge Distillation (Tung & Mori, ICCV 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams
from dskd_core.models import Features


def _similarity(feat: Tensor) -> Tensor:
    """``(B, ...)`` -> ``(B, B)``: the batch's Gram matrix with every row L2-normalised."""
    flat = feat.flatten(1)
    return F.normalize(flat @ flat.T, dim=1)


def sp_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """``‖G_t − G_s‖_F² / B²`` of the row-normalised batch similarity matrices."""
    b = student.shape[0]
    return (_similarity(teacher) - _similarity(student)).pow(2).sum() / (b * b)


@register_method
class SP(FeatureDistiller):
    """Similarity preservation on the last stage map ``feats[-1]``; mdistiller: CE 1, weight 3000.

    The loss divides a sum over B rows by B², so it scales as 1/B; a smaller last batch of an
    epoch is rescaled to the configured batch size (full batches are exactly upstream's value;
    ``feature_form = "mdistiller"`` leaves it as upstream computes it).
    """

    class Params(FeatureParams):
        """SP's weight."""

        feat_weight: float = Field(3000.0, ge=0)

    name = "sp"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS
    mdistiller_form = True

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        # feature_form "mdistiller": upstream's value on every batch, a shorter last one included
        batch_share = (
            1.0 if self.cfg.feature_form == "mdistiller" else student["feats"][-1].shape[0] / self.cfg.batch_size
        )
        return sp_loss(student["feats"][-1], teacher["feats"][-1]) * batch_share
