"""PKT — Learning Deep Representations with Probabilistic Knowledge Transfer (Passalis & Tefas, ECCV 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor

from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams
from dskd_core.models import Features

PKT_EPS = 1e-7


def _conditional_probs(feat: Tensor) -> Tensor:
    """``(B, D)`` -> ``(B, B)``: cosine similarities mapped to [0, 1], each row normalised to sum 1."""
    unit = feat / (feat.norm(dim=1, keepdim=True) + PKT_EPS)
    similarity: Tensor = (unit @ unit.T + 1.0) / 2.0
    return similarity / similarity.sum(dim=1, keepdim=True)


def pkt_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean over the (B, B) entries of ``p_t · log((p_t + ε) / (p_s + ε))`` (a KL per row, averaged)."""
    p_s, p_t = _conditional_probs(student), _conditional_probs(teacher)
    return (p_t * ((p_t + PKT_EPS) / (p_s + PKT_EPS)).log()).mean()


@register_method
class PKT(FeatureDistiller):
    """Probability distributions of batch similarities on ``pooled_feat``; mdistiller: CE 1, weight 30000.

    The loss is a mean over B × B entries, so it scales as 1/B; a smaller last batch of an epoch
    is rescaled to the configured batch size (full batches are exactly upstream's value;
    ``feature_form = "mdistiller"`` leaves it as upstream computes it).
    """

    class Params(FeatureParams):
        """PKT's weight."""

        feat_weight: float = Field(30000.0, ge=0)

    name = "pkt"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS
    mdistiller_form = True

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        # feature_form "mdistiller": upstream's value on every batch, a shorter last one included
        batch_share = (
            1.0 if self.cfg.feature_form == "mdistiller" else student["pooled_feat"].shape[0] / self.cfg.batch_size
        )
        return pkt_loss(student["pooled_feat"], teacher["pooled_feat"]) * batch_share
