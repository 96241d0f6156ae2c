"""OFD — A Comprehensive Overhaul of Feature Distillation (Heo et al., ICCV 2019)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, probe_features
from dskd_core.models import Features, ZooModel


def ofd_margin(bn: nn.BatchNorm2d) -> Tensor:
    """Per channel, E[x | x < 0] for x ~ N(β, γ²), the BatchNorm's output law; −3|γ| where P(x < 0) ≤ 0.001."""
    std = bn.weight.detach().double().abs()
    mean = bn.bias.detach().double()
    below = torch.special.ndtr(-mean / std)
    expected = -std * torch.exp(-((mean / std) ** 2) / 2) / math.sqrt(2 * math.pi) / below + mean
    return torch.where(below > 0.001, expected, -3 * std).float()


def partial_l2(source: Tensor, target: Tensor, margin: Tensor) -> Tensor:
    """OFD's partial L2, summed over (C, H, W) and averaged over the batch.

    Where the teacher is positive: (s − t)². Where it is negative (at most the margin) only a
    student above it is pulled down: to the margin when t ≤ margin, to t when margin < t ≤ 0.
    """
    loss = (
        (source - margin).pow(2) * ((source > margin) & (target <= margin))
        + (source - target).pow(2) * ((source > target) & (target > margin) & (target <= 0))
        + (source - target).pow(2) * (target > 0)
    )
    return loss.abs().mean(dim=0).sum()


def _connector(s_channels: int, t_channels: int) -> nn.Sequential:
    """1×1 conv (He-normal, fan-out) + BatchNorm (1, 0) from the student's channels to the teacher's."""
    conv = nn.Conv2d(s_channels, t_channels, 1, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / t_channels))
    bn = nn.BatchNorm2d(t_channels)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    return nn.Sequential(conv, bn)


@register_method
class OFD(FeatureDistiller):
    """Partial L2 between connected student pre-activations and the teacher's, per stage.

    The deepest ``min(student, teacher)`` stages of ``preact_feats[1:]`` pair up; the teacher
    map is average-pooled to the student's size, stage i of n weighs 1/2^(n−1−i); margins come
    from the teacher's BatchNorm before each stage's ReLU. mdistiller: CE 1, weight 0.001.
    The teacher stays in eval mode (upstream's OFD put it in train mode, BatchNorm included).
    """

    class Params(FeatureParams):
        """OFD's weight."""

        feat_weight: float = Field(0.001, ge=0)

    name = "ofd"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        try:
            bns = self.teacher.get_bn_before_relu()
        except NotImplementedError:
            raise UsageError(
                f"ofd takes its margins from the teacher's BatchNorm before each stage's ReLU, which {cfg.teacher} "
                "does not expose (nor does upstream): pick another teacher"
            ) from None
        s_feats, t_feats = probe_features(student)["preact_feats"][1:], probe_features(self.teacher)["preact_feats"][1:]
        assert len(bns) == len(t_feats), "get_bn_before_relu() must match preact_feats[1:]"
        self.num_stages = n = min(len(s_feats), len(t_feats))
        self.connectors = nn.ModuleList(
            _connector(s.shape[1], t.shape[1]) for s, t in zip(s_feats[-n:], t_feats[-n:], strict=True)
        )
        for i, bn in enumerate(bns[-n:]):
            # derived from the teacher's weights, so not saved
            self.register_buffer(f"margin{i}", ofd_margin(bn).view(1, -1, 1, 1), persistent=False)

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        n = self.num_stages
        terms = []
        for i, (f_s, f_t, connector) in enumerate(
            zip(student["preact_feats"][1:][-n:], teacher["preact_feats"][1:][-n:], self.connectors, strict=True)
        ):
            f_s = connector(f_s)
            f_t = F.adaptive_avg_pool2d(f_t, f_s.shape[-2:])
            terms.append(partial_l2(f_s, f_t, getattr(self, f"margin{i}")) / 2 ** (n - 1 - i))
        return torch.stack(terms).sum()
