"""FitNet — FitNets: Hints for Thin Deep Nets (Romero et al., ICLR 2015)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, probe_features
from dskd_core.models import Features, ZooModel

Shape = tuple[int, ...]


def regressor_conv(s_shape: Shape, t_shape: Shape) -> nn.Module:
    """The convolution mapping a student map ``(B, Cs, Hs, Ws)`` onto the teacher's ``(B, Ct, Ht, Wt)``.

    3×3 stride 2 when the student map is twice as large, 4×4 stride-2 transposed when half as
    large, else a valid convolution of kernel ``1 + Hs − Ht`` (upstream's ConvReg); ValueError
    when none of these connects the two sizes.
    """
    _, s_c, s_h, s_w = s_shape
    _, t_c, t_h, t_w = t_shape
    if s_h == 2 * t_h:
        return nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
    if 2 * s_h == t_h:
        return nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
    if s_h >= t_h and s_w >= t_w:
        return nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
    raise ValueError(f"a {s_h}×{s_w} student map cannot be regressed onto a {t_h}×{t_w} teacher map")


class ConvRegressor(nn.Module):
    """FitNet's regressor: the connecting convolution, then BatchNorm and ReLU (learned with the student)."""

    def __init__(self, s_shape: Shape, t_shape: Shape) -> None:
        super().__init__()
        self.conv = regressor_conv(s_shape, t_shape)
        self.bn = nn.BatchNorm2d(t_shape[1])

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


@register_method
class FitNet(FeatureDistiller):
    """MSE between the regressed student hint map and the teacher's, at ``feats[hint_layer]``.

    mdistiller: hint layer 2, CE 1, weight 100; the regressor's shape comes from a dummy 32×32
    forward of both nets at construction.
    """

    class Params(FeatureParams):
        """FitNet's weight and the ``feats`` index whose maps are matched."""

        feat_weight: float = Field(100.0, ge=0)
        hint_layer: int = Field(2, ge=0)

    name = "fitnet"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        self.hint_layer = layer = self.params.hint_layer
        s_feats, t_feats = probe_features(student)["feats"], probe_features(self.teacher)["feats"]
        for role, model, feats in (("student", cfg.student, s_feats), ("teacher", cfg.teacher, t_feats)):
            if layer >= len(feats):
                raise UsageError(
                    f"fitnet: the {role} {model} has no hint layer {layer} (feats 0..{len(feats) - 1}): "
                    f"--set hint_layer=N with N < {min(len(s_feats), len(t_feats))}"
                )
        s_shape, t_shape = tuple(s_feats[layer].shape), tuple(t_feats[layer].shape)
        try:
            self.regressor = ConvRegressor(s_shape, t_shape)
        except ValueError as err:
            raise UsageError(
                f"fitnet: hint layer {layer} of {cfg.student} -> {cfg.teacher}: {err} "
                "(student at least as large, or half as large): choose another --set hint_layer"
            ) from None

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        layer = self.hint_layer
        return F.mse_loss(self.regressor(student["feats"][layer]), teacher["feats"][layer])
