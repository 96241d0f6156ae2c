"""NST — Like What You Like: Knowledge Distill via Neuron Selectivity Transfer (Huang & Wang, 2017)."""

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


def _poly_kernel(a: Tensor, b: Tensor) -> Tensor:
    """``(B, Ca, N)``, ``(B, Cb, N)`` -> ``(B, Cb, Ca)``: squared dot products of every channel pair."""
    return torch.bmm(b, a.transpose(1, 2)).pow(2)


def nst_loss(student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
    """Σ over stage pairs of the squared MMD with a degree-2 polynomial kernel.

    Each channel's spatial activation pattern is L2-normalised (the larger map pooled to the
    smaller first); MMD² = mean k(t, t) + mean k(s, s) − 2 mean k(s, t). Stages pair from the first.
    """
    terms = []
    for f_s, f_t in zip(student, teacher, strict=False):
        f_s, f_t = pool_to_common(f_s, f_t)
        s, t = F.normalize(f_s.flatten(2), dim=2), F.normalize(f_t.flatten(2), dim=2)
        mmd = _poly_kernel(t, t).mean().detach() + _poly_kernel(s, s).mean() - 2 * _poly_kernel(s, t).mean()
        terms.append(mmd)
    return torch.stack(terms).sum()


@register_method
class NST(FeatureDistiller):
    """Neuron selectivity transfer on ``feats[1:]``; mdistiller: CE 1, weight 50."""

    class Params(FeatureParams):
        """NST's weight."""

        feat_weight: float = Field(50.0, ge=0)

    name = "nst"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        return nst_loss(student["feats"][1:], teacher["feats"][1:])
