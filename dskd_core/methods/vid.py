"""VID — Variational Information Distillation for Knowledge Transfer (Ahn et al., CVPR 2019)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, pool_to_common, probe_features
from dskd_core.models import Features, ZooModel

VID_EPS = 1e-5


def vid_loss(mean: Tensor, target: Tensor, log_scale: Tensor) -> Tensor:
    """Gaussian negative log-likelihood (without the constant) of the teacher map under the
    student's prediction: ``mean(½ ((μ − t)² / σ² + log σ²))``, σ² = softplus(log_scale) + 1e-5
    per channel.
    """
    var = (F.softplus(log_scale) + VID_EPS).view(1, -1, 1, 1)
    return (0.5 * ((mean - target).pow(2) / var + var.log())).mean()


def _regressor(s_channels: int, t_channels: int) -> nn.Sequential:
    """Three 1×1 convolutions (no bias) with ReLUs between: the student's prediction of the teacher map."""
    return nn.Sequential(
        nn.Conv2d(s_channels, t_channels, 1, bias=False),
        nn.ReLU(),
        nn.Conv2d(t_channels, t_channels, 1, bias=False),
        nn.ReLU(),
        nn.Conv2d(t_channels, t_channels, 1, bias=False),
    )


@register_method
class VID(FeatureDistiller):
    """One regressor and one learned per-channel variance per stage pair of ``feats[1:]``.

    mdistiller: CE 1, weight 1, initial variance 5, ε 1e-5; stages pair from the first, the
    larger map pooled to the smaller. The variances are trained with the student, as in the
    paper and RepDistiller (mdistiller keeps them in a plain list, so its optimizer never sees them;
    ``feature_form = "mdistiller"`` keeps them fixed likewise).
    """

    class Params(FeatureParams):
        """VID's weight and the initial predicted variance."""

        feat_weight: float = Field(1.0, ge=0)
        vid_init_var: float = Field(5.0, gt=1e-5)

    name = "vid"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS
    mdistiller_form = True

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        s_feats, t_feats = probe_features(student)["feats"][1:], probe_features(self.teacher)["feats"][1:]
        pairs = [(s.shape[1], t.shape[1]) for s, t in zip(s_feats, t_feats, strict=False)]
        self.regressors = nn.ModuleList(_regressor(s, t) for s, t in pairs)
        # softplus(log_scale) + ε = the initial variance
        start = math.log(math.expm1(self.params.vid_init_var - VID_EPS))
        # feature_form "mdistiller": the variances stay at their initial value, as upstream's optimizer never sees them
        learned = cfg.feature_form != "mdistiller"
        self.log_scales = nn.ParameterList(
            nn.Parameter(torch.full((t,), start), requires_grad=learned) for _, t in pairs
        )

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        terms = []
        for f_s, f_t, regressor, log_scale in zip(
            student["feats"][1:], teacher["feats"][1:], self.regressors, self.log_scales, strict=False
        ):
            f_s, f_t = pool_to_common(f_s, f_t)
            terms.append(vid_loss(regressor(f_s), f_t, log_scale))
        return torch.stack(terms).sum()
