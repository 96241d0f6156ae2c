"""MobileNetV2 for CIFAR at width 0.5 (CRD's "mobile_half"), RepDistiller/mdistiller layout."""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from dskd_core.models.base import Features, ZooModel, global_avg_pool, init_conv_normal
from dskd_core.models.registry import register_model

# (expansion, channels at width 1, blocks, first stride) per group; expansion None means T.
SETTINGS: tuple[tuple[int | None, int, int, int], ...] = (
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
)
FEATURE_GROUPS = (1, 2, 4, 6)  # feats are taken after these groups of blocks (and after the stem)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    """Conv (no bias) - BN - ReLU, the stem and head of the net."""
    padding = kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, 3x3 depthwise-BN-ReLU, 1x1 project-BN (linear bottleneck).

    The input is added back when stride and width allow; upstream expands even when t = 1.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(ZooModel):
    """MobileNetV2 of Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
    (CVPR 2018), CIFAR variant: stride-2 stem, expansion T, width multiplier, 1280-wide head.
    """

    def __init__(self, num_classes: int = 100, width_mult: float = 0.5, expansion: int = 6) -> None:
        super().__init__()
        in_channels = int(32 * width_mult)
        self.stage_channels = [in_channels]
        self.conv1 = conv_bn_relu(3, in_channels, kernel_size=3, stride=2)
        self.blocks = nn.ModuleList()
        for i, (t, channels, count, first_stride) in enumerate(SETTINGS):
            out_channels = int(channels * width_mult)
            ratio = expansion if t is None else t
            group = []
            for stride in [first_stride] + [1] * (count - 1):
                group.append(InvertedResidual(in_channels, out_channels, stride, ratio))
                in_channels = out_channels
            self.blocks.append(nn.Sequential(*group))
            if i in FEATURE_GROUPS:
                self.stage_channels.append(out_channels)
        head_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = conv_bn_relu(in_channels, head_channels, kernel_size=1, stride=1)
        self.classifier = nn.Sequential(nn.Linear(head_channels, num_classes))  # key "classifier.0"
        init_conv_normal(self, linear_std=0.01)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        out = self.conv1(x)  # (B, 16, 16, 16)
        feats = [out]
        for i, group in enumerate(self.blocks):
            out = group(out)
            if i in FEATURE_GROUPS:
                feats.append(out)  # (B, 12, 16, 16), (B, 16, 8, 8), (B, 48, 4, 4), (B, 160, 2, 2)
        final = self.conv2(out)  # (B, 1280, 2, 2)
        pooled = global_avg_pool(final)  # (B, 1280)
        # Upstream reports no preact_feats: a linear bottleneck ends without a ReLU, so each
        # stage output already is its own pre-activation; the same list serves both keys.
        features = Features(feats=feats, preact_feats=list(feats), pooled_feat=pooled, final_map=final)
        return self.classifier(pooled), features

    def get_classifier(self) -> nn.Linear:
        linear = self.classifier[0]
        assert isinstance(linear, nn.Linear)
        return linear

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        # the closing BatchNorm of each feature group's last linear bottleneck
        lasts = [cast(InvertedResidual, cast(nn.Sequential, self.blocks[g])[-1]) for g in FEATURE_GROUPS]
        return [cast(nn.BatchNorm2d, block.conv[-1]) for block in lasts]


@register_model("MobileNetV2")
def mobile_half(num_classes: int = 100) -> MobileNetV2:
    """MobileNetV2 at width 0.5 with expansion 6 (CRD's "mobile_half")."""
    return MobileNetV2(num_classes, width_mult=0.5, expansion=6)
