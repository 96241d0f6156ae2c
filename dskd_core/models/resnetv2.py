"""ImageNet-layout ResNets for CIFAR (ResNet18, ResNet34, ResNet50), RepDistiller/mdistiller layout.

Upstream calls the file ``resnetv2.py``; the nets are He et al.'s post-activation ResNets with
four stages, not the pre-activation "ResNet v2". Names (``layer1.0.shortcut.0``, ``linear``)
equal those of the published ResNet50 teacher checkpoint so it loads with ``strict=True``.
"""

from __future__ import annotations

from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import (
    Features,
    PreactBlock,
    ZooModel,
    adaptive_global_avg_pool,
    init_kaiming_fan_out,
    resnet_stages,
    run_stage,
)
from dskd_core.models.registry import register_model


def projection(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    """Shortcut: identity when shape is kept, else 1x1 conv (stride) - BN."""
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(PreactBlock):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut, then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = projection(in_planes, planes, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        preact = self.bn2(self.conv2(out)) + self.shortcut(x)
        return F.relu(preact), preact


class Bottleneck(PreactBlock):
    """conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU, conv1x1(4x)-BN, plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = projection(in_planes, planes * self.expansion, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        preact = self.bn3(self.conv3(out)) + self.shortcut(x)
        return F.relu(preact), preact


class ResNetV2(ZooModel):
    """ResNet of He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), with
    the ImageNet stage layout (64-128-256-512, strides 1-2-2-2) behind a CIFAR stem
    (3x3 stride-1 conv, no max-pooling).
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        num_blocks: tuple[int, int, int, int],
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, self.stage_channels = resnet_stages(block, block.expansion, num_blocks)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(self.stage_channels[-1], num_classes)
        init_kaiming_fan_out(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        f0 = F.relu(self.bn1(self.conv1(x)))  # (B, 64, 32, 32)
        f1, pre1 = run_stage(self.layer1, f0)  # (B, 64e, 32, 32), e = block expansion
        f2, pre2 = run_stage(self.layer2, f1)  # (B, 128e, 16, 16)
        f3, pre3 = run_stage(self.layer3, f2)  # (B, 256e, 8, 8)
        f4, pre4 = run_stage(self.layer4, f3)  # (B, 512e, 4, 4)
        pooled = adaptive_global_avg_pool(f4)  # (B, 512e)
        feats = Features(
            feats=[f0, f1, f2, f3, f4],
            preact_feats=[f0, pre1, pre2, pre3, pre4],
            pooled_feat=pooled,
            final_map=f4,
        )
        return self.linear(pooled), feats

    def get_classifier(self) -> nn.Linear:
        return self.linear

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        lasts = [stage[-1] for stage in (self.layer1, self.layer2, self.layer3, self.layer4)]
        return [block.bn3 if isinstance(block, Bottleneck) else cast(BasicBlock, block).bn2 for block in lasts]


@register_model("ResNet18")
def resnet18(num_classes: int = 100) -> ResNetV2:
    """ResNet-18 for CIFAR: BasicBlocks 2-2-2-2."""
    return ResNetV2(BasicBlock, (2, 2, 2, 2), num_classes)


@register_model("ResNet34")
def resnet34(num_classes: int = 100) -> ResNetV2:
    """ResNet-34 for CIFAR: BasicBlocks 3-4-6-3."""
    return ResNetV2(BasicBlock, (3, 4, 6, 3), num_classes)


@register_model("ResNet50")
def resnet50(num_classes: int = 100) -> ResNetV2:
    """ResNet-50 for CIFAR: Bottlenecks 3-4-6-3 (a published teacher)."""
    return ResNetV2(Bottleneck, (3, 4, 6, 3), num_classes)
