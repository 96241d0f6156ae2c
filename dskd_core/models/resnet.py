"""CIFAR ResNets (resnet8 ... resnet110, resnet8x4, resnet32x4).

Layer names, arithmetic and init follow the RepDistiller/mdistiller CIFAR zoo, so its teacher
checkpoints (resnet56, resnet110, resnet32x4) load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import (
    Features,
    PreactBlock,
    ZooModel,
    global_avg_pool,
    init_kaiming_fan_out,
    run_stage,
)
from dskd_core.models.registry import register_model

THIN = (16, 16, 32, 64)  # stem, stage 1, stage 2, stage 3
WIDE = (32, 64, 128, 256)  # the "x4" variants


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(PreactBlock):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the (projected) input, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Sequential | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        preact = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(preact), preact


def make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlocks; the first changes stride/width through a 1x1 conv-BN shortcut."""
    downsample = None
    if stride != 1 or in_planes != planes:
        # Built before the first block, as upstream does, so a seeded init draws the same weights.
        downsample = nn.Sequential(
            nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes),
        )
    layers = [BasicBlock(in_planes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class CifarResNet(ZooModel):
    """CIFAR ResNet of He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), §4.2.

    A 3x3 stem and three stages of (depth - 2) / 6 BasicBlocks at strides 1, 2, 2.
    """

    def __init__(self, depth: int, widths: Sequence[int], num_classes: int = 100) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.stage_channels = list(widths)
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.layer1 = make_stage(widths[0], widths[1], n, stride=1)
        self.layer2 = make_stage(widths[1], widths[2], n, stride=2)
        self.layer3 = make_stage(widths[2], widths[3], n, stride=2)
        self.fc = nn.Linear(widths[3], num_classes)
        init_kaiming_fan_out(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        f0 = F.relu(self.bn1(self.conv1(x)))  # (B, w0, 32, 32)
        f1, pre1 = run_stage(self.layer1, f0)  # (B, w1, 32, 32)
        f2, pre2 = run_stage(self.layer2, f1)  # (B, w2, 16, 16)
        f3, pre3 = run_stage(self.layer3, f2)  # (B, w3, 8, 8)
        pooled = global_avg_pool(f3)  # (B, w3)
        feats = Features(
            feats=[f0, f1, f2, f3],
            preact_feats=[f0, pre1, pre2, pre3],
            pooled_feat=pooled,
            final_map=f3,
        )
        return self.fc(pooled), feats

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [cast(BasicBlock, stage[-1]).bn2 for stage in (self.layer1, self.layer2, self.layer3)]


@register_model("resnet8")
def resnet8(num_classes: int = 100) -> CifarResNet:
    """ResNet-8: one block per stage."""
    return CifarResNet(8, THIN, num_classes)


@register_model("resnet14")
def resnet14(num_classes: int = 100) -> CifarResNet:
    """ResNet-14: two blocks per stage."""
    return CifarResNet(14, THIN, num_classes)


@register_model("resnet20")
def resnet20(num_classes: int = 100) -> CifarResNet:
    """ResNet-20: three blocks per stage."""
    return CifarResNet(20, THIN, num_classes)


@register_model("resnet32")
def resnet32(num_classes: int = 100) -> CifarResNet:
    """ResNet-32: five blocks per stage."""
    return CifarResNet(32, THIN, num_classes)


@register_model("resnet44")
def resnet44(num_classes: int = 100) -> CifarResNet:
    """ResNet-44: seven blocks per stage."""
    return CifarResNet(44, THIN, num_classes)


@register_model("resnet56")
def resnet56(num_classes: int = 100) -> CifarResNet:
    """ResNet-56: nine blocks per stage (a published teacher)."""
    return CifarResNet(56, THIN, num_classes)


@register_model("resnet110")
def resnet110(num_classes: int = 100) -> CifarResNet:
    """ResNet-110: eighteen blocks per stage (a published teacher)."""
    return CifarResNet(110, THIN, num_classes)


@register_model("resnet8x4")
def resnet8x4(num_classes: int = 100) -> CifarResNet:
    """ResNet-8 with 4x wider stages (CRD's student)."""
    return CifarResNet(8, WIDE, num_classes)


@register_model("resnet32x4")
def resnet32x4(num_classes: int = 100) -> CifarResNet:
    """ResNet-32 with 4x wider stages (a published teacher)."""
    return CifarResNet(32, WIDE, num_classes)
