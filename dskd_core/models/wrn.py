"""Wide ResNets (wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2), RepDistiller/mdistiller layout.

Names (``block1.layer.0.convShortcut`` ...) equal those of the published wrn_40_2 teacher
checkpoint so it loads with ``strict=True``.
"""

from __future__ import annotations

from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import Features, ZooModel, global_avg_pool, init_conv_normal
from dskd_core.models.registry import register_model


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the (projected) input.

    When the width changes, the 1x1 shortcut conv reads the activated input, as upstream.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.convShortcut: nn.Conv2d | None = None  # checkpoint key name
        if in_planes != out_planes:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out: Tensor = self.conv2(F.relu(self.bn2(self.conv1(act))))
        shortcut: Tensor = x if self.convShortcut is None else self.convShortcut(act)
        return shortcut + out


class WideStage(nn.Module):
    """``blocks`` WideBasicBlocks, the first one changing stride/width (upstream's NetworkBlock)."""

    def __init__(self, blocks: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            WideBasicBlock(in_planes, out_planes, stride),
            *(WideBasicBlock(out_planes, out_planes, 1) for _ in range(1, blocks)),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.layer(x)
        return out

    @property
    def entry_bn(self) -> nn.BatchNorm2d:
        """The BatchNorm that opens this stage (applied to the previous stage's output)."""
        return cast(WideBasicBlock, self.layer[0]).bn1


class WideResNet(ZooModel):
    """Wide ResNet of Zagoruyko & Komodakis, "Wide Residual Networks" (BMVC 2016).

    WRN-depth-k: a 3x3 stem, three stages of (depth - 4) / 6 pre-activation blocks with
    widths 16k, 32k, 64k at strides 1, 2, 2, then BN-ReLU and the classifier. No dropout.
    """

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stage_channels = widths
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = WideStage(n, widths[0], widths[1], stride=1)
        self.block2 = WideStage(n, widths[1], widths[2], stride=2)
        self.block3 = WideStage(n, widths[2], widths[3], stride=2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        init_conv_normal(self, linear_std=None)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        f0 = self.conv1(x)  # (B, 16, 32, 32), no BN/ReLU yet
        f1 = self.block1(f0)  # (B, 16k, 32, 32)
        f2 = self.block2(f1)  # (B, 32k, 16, 16)
        f3 = self.block3(f2)  # (B, 64k, 8, 8)
        final = F.relu(self.bn1(f3))  # (B, 64k, 8, 8)
        pooled = global_avg_pool(final)  # (B, 64k)
        logits = self.fc(pooled)
        # Upstream re-applies the BN that follows each stage to get its pre-activation; in train
        # mode that updates those BNs' running statistics a second time per step, which the
        # published recipes therefore include, so it is kept rather than reusing the first call.
        preacts = [self.block2.entry_bn(f1), self.block3.entry_bn(f2), self.bn1(f3)]
        feats = Features(
            feats=[f0, f1, f2, f3],
            preact_feats=[f0, *preacts],
            pooled_feat=pooled,
            final_map=final,
        )
        return logits, feats

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [self.block2.entry_bn, self.block3.entry_bn, self.bn1]


@register_model("wrn_16_1")
def wrn_16_1(num_classes: int = 100) -> WideResNet:
    """WRN-16-1."""
    return WideResNet(16, 1, num_classes)


@register_model("wrn_16_2")
def wrn_16_2(num_classes: int = 100) -> WideResNet:
    """WRN-16-2."""
    return WideResNet(16, 2, num_classes)


@register_model("wrn_40_1")
def wrn_40_1(num_classes: int = 100) -> WideResNet:
    """WRN-40-1."""
    return WideResNet(40, 1, num_classes)


@register_model("wrn_40_2")
def wrn_40_2(num_classes: int = 100) -> WideResNet:
    """WRN-40-2 (a published teacher)."""
    return WideResNet(40, 2, num_classes)
