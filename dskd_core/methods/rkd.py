"""RKD — Relational Knowledge Distillation (Park et al., CVPR 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams
from dskd_core.models import Features

PDIST_EPS = 1e-12


def _distances(e: Tensor) -> Tensor:
    """``(B, D)`` -> ``(B, B)`` Euclidean distances (squared ones clamped at 1e-12), zero diagonal."""
    sq = e.pow(2).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2 * e @ e.T).clamp(min=PDIST_EPS).sqrt()
    return dist.masked_fill(torch.eye(len(e), dtype=torch.bool, device=e.device), 0.0)


def _normalised_distances(e: Tensor) -> Tensor:
    d = _distances(e)
    return d / d[d > 0].mean()


def _angles(e: Tensor) -> Tensor:
    """``(B, D)`` -> ``(B³,)``: cos of the angle at every anchor i between e_j − e_i and e_k − e_i."""
    diff = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # (B, B, D): e_j − e_i at [i, j]
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_loss(student: Tensor, teacher: Tensor, distance_weight: float, angle_weight: float) -> Tensor:
    """``w_d · smoothL1(ψ_D(s), ψ_D(t)) + w_a · smoothL1(ψ_A(s), ψ_A(t))`` on flattened embeddings.

    ψ_D: pairwise distances divided by their mean over distinct pairs; ψ_A: the cosine of every
    angle formed by three samples.
    """
    s, t = student.flatten(1), teacher.flatten(1)
    with torch.no_grad():
        t_dist, t_angle = _normalised_distances(t), _angles(t)
    loss_d = F.smooth_l1_loss(_normalised_distances(s), t_dist)
    loss_a = F.smooth_l1_loss(_angles(s), t_angle)
    return distance_weight * loss_d + angle_weight * loss_a


@register_method
class RKD(FeatureDistiller):
    """Distance- and angle-wise relations of ``pooled_feat``; mdistiller: weights 25 and 50, CE 1, weight 1."""

    class Params(FeatureParams):
        """RKD's weight and its distance and angle weights."""

        feat_weight: float = Field(1.0, ge=0)
        rkd_distance_weight: float = Field(25.0, ge=0)
        rkd_angle_weight: float = Field(50.0, ge=0)

    name = "rkd"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        p = self.params
        return rkd_loss(student["pooled_feat"], teacher["pooled_feat"], p.rkd_distance_weight, p.rkd_angle_weight)
