"""AT — Paying More Attention to Attention (Zagoruyko & Komodakis, ICLR 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, pool_to_common
from dskd_core.models import Features


def attention_map(feat: Tensor, p: float) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H·W)``: the channel mean of ``feat^p``, flattened and L2-normalised."""
    return F.normalize(feat.pow(p).mean(dim=1).flatten(1), dim=1)


def at_loss(student: Sequence[Tensor], teacher: Sequence[Tensor], p: float) -> Tensor:
    """Σ over stage pairs of ``mean((A_s − A_t)²)``, the larger map average-pooled to the smaller.

    Stages are paired from the first one on, as upstream zips them; a longer list's deepest
    stages go unused.
    """
    terms = []
    for f_s, f_t in zip(student, teacher, strict=False):
        f_s, f_t = pool_to_common(f_s, f_t)
        terms.append((attention_map(f_s, p) - attention_map(f_t, p)).pow(2).mean())
    return torch.stack(terms).sum()


@register_method
class AT(FeatureDistiller):
    """Attention transfer on every stage after the stem (``feats[1:]``); mdistiller: P 2, CE 1, weight 1000."""

    class Params(FeatureParams):
        """AT's weight and p: the attention map is the channel mean of |f|^p."""

        feat_weight: float = Field(1000.0, ge=0)
        at_p: float = Field(2.0, gt=0)

    name = "at"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        return at_loss(student["feats"][1:], teacher["feats"][1:], self.params.at_p)
