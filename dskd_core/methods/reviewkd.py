"""ReviewKD — Distilling Knowledge via Knowledge Review (Chen et al., CVPR 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, probe_features
from dskd_core.models import Features, ZooModel

MAX_MID_CHANNELS = 512
HCL_SIZES = (4, 2, 1)


def hcl_loss(student: Sequence[Tensor], teacher: Sequence[Tensor]) -> Tensor:
    """Hierarchical context loss, summed over levels.

    Per level: MSE of the maps, plus MSE after average-pooling both to 4×4, 2×2, 1×1 (only sizes
    below the map's) with weights 1/2, 1/4, 1/8, all divided by the total weight.
    """
    terms = []
    for f_s, f_t in zip(student, teacher, strict=True):
        loss, weight, total = F.mse_loss(f_s, f_t), 1.0, 1.0
        for size in HCL_SIZES:
            if size >= f_s.shape[-2]:
                continue
            weight /= 2.0
            loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(f_s, size), F.adaptive_avg_pool2d(f_t, size))
            total += weight
        terms.append(loss / total)
    return torch.stack(terms).sum()


class ABF(nn.Module):
    """Attention-based fusion: 1×1 conv-BN to ``mid`` channels, fused with the deeper level's
    residual through two sigmoid attention maps, resized to the teacher's size, 3×3 conv-BN out.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool) -> None:
        super().__init__()
        reduce = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        expand = nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False)
        nn.init.kaiming_uniform_(reduce.weight, a=1)
        nn.init.kaiming_uniform_(expand.weight, a=1)
        self.conv1 = nn.Sequential(reduce, nn.BatchNorm2d(mid_channels))
        self.conv2 = nn.Sequential(expand, nn.BatchNorm2d(out_channels))
        self.att_conv = nn.Sequential(nn.Conv2d(2 * mid_channels, 2, 1), nn.Sigmoid()) if fuse else None

    def forward(self, x: Tensor, residual: Tensor | None, out_size: int) -> tuple[Tensor, Tensor]:
        """``x`` (B, Cin, h, h) and the deeper level's residual -> (output (B, Cout, s, s), residual)."""
        x = self.conv1(x)
        if self.att_conv is not None:
            assert residual is not None
            residual = F.interpolate(residual, size=x.shape[-2:], mode="nearest")
            att = self.att_conv(torch.cat([x, residual], dim=1))
            x = x * att[:, :1] + residual * att[:, 1:]
        if x.shape[-1] != out_size:
            x = F.interpolate(x, size=(out_size, out_size), mode="nearest")
        return self.conv2(x), x


def _levels(maps: list[Tensor], pooled: Tensor) -> list[Tensor]:
    """Stage maps after the stem plus the pooled feature as a 1×1 map, shallow to deep."""
    return [*maps[1:], pooled[:, :, None, None]]


@register_method
class ReviewKD(FeatureDistiller):
    """Student stages (and pooled feature) fused deepest-first by ABFs, matched to the teacher's
    pre-activation stages (and pooled feature) with the HCL loss.

    mdistiller CIFAR: CE 1, weight 1 (5 for resnet32x4 → resnet8x4, in the preset), warm-up 20
    epochs; channels and sizes come from a dummy forward of both nets, and the deepest
    ``min(student, teacher)`` levels are paired (upstream's configs list them per pair).
    """

    class Params(FeatureParams):
        """ReviewKD's weight of its hierarchical-context loss."""

        feat_weight: float = Field(1.0, ge=0)

    name = "reviewkd"
    params: Params
    defaults: ClassVar[dict[str, Any]] = {**FEATURE_DEFAULTS, "warmup": 20}

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        s, t = probe_features(student), probe_features(self.teacher)
        s_levels = _levels(s["feats"], s["pooled_feat"])
        t_levels = _levels(t["preact_feats"], t["pooled_feat"])
        self.num_levels = n = min(len(s_levels), len(t_levels))
        in_channels = [f.shape[1] for f in s_levels[-n:]]
        out_channels = [f.shape[1] for f in t_levels[-n:]]
        mid = min(MAX_MID_CHANNELS, in_channels[-1])
        # Built shallow to deep, stored deepest first; the deepest level has nothing to fuse with.
        abfs = [
            ABF(c_in, mid, c_out, i < n - 1)
            for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels, strict=True))
        ]
        self.abfs = nn.ModuleList(abfs[::-1])
        self.out_sizes = [int(f.shape[-1]) for f in t_levels[-n:]][::-1]

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        n = self.num_levels
        s_levels = _levels(student["feats"], student["pooled_feat"])[-n:][::-1]
        t_levels = _levels(teacher["preact_feats"], teacher["pooled_feat"])[-n:][::-1]
        results, residual = [], None
        for x, abf, size in zip(s_levels, self.abfs, self.out_sizes, strict=True):
            out, residual = abf(x, residual, size)
            results.append(out)
        return hcl_loss(results, t_levels)
