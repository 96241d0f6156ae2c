"""ImageNet zoo: ResNet18/34/50 with torchvision's state-dict keys, and MobileNetV1 (1.0 width).

The ResNets are torchvision's (stride on the 3×3 conv of a Bottleneck, "v1.5"), so
torchvision's published weights load with ``strict=True`` and no renaming. Their features follow
mdistiller's ImageNet nets (mdistiller/models/imagenet/resnet.py): ``preact_feats`` are the stem before max-pooling
and each stage's output before its last ReLU, ``feats`` their ReLUs, and the final map is the
ReLU of stage 4 (7×7 at 224 px). Global pooling is adaptive, so smaller crops (``--image-size``)
work too.

MobileNetV1 keeps mdistiller's layer names (``model.<i>.<j>``, ``fc``), so its released ImageNet
students load as they are. The SDD/DSKD ImageNet code calls this same net ``MobileNetV2``; that
name is an alias here, with a warning (the CIFAR zoo's ``MobileNetV2`` is a different net).
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
from dskd_core.models.registry import register_alias, register_model

ZOO = "imagenet"


def _downsample(in_planes: int, out_planes: int, stride: int) -> nn.Sequential | None:
    """torchvision's ``downsample``: 1×1 conv (stride) - BN when the shape changes, else None."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
    )


# BasicBlock and Bottleneck repeat models/resnetv2.py's on purpose: their attribute names are the
# checkpoints' state-dict keys (``downsample``/``fc`` here, ``shortcut``/``linear`` there), so the
# published weights of each zoo load strictly, without renaming.


class BasicBlock(PreactBlock):
    """conv3×3(stride)-BN-ReLU, conv3×3-BN, plus the shortcut, then ReLU (torchvision's names)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(in_planes, planes, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        preact = self.bn2(self.conv2(out)) + identity
        return F.relu(preact), preact


class Bottleneck(PreactBlock):
    """conv1×1-BN-ReLU, conv3×3(stride)-BN-ReLU, conv1×1(4×)-BN, plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = _downsample(in_planes, planes * self.expansion, stride)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        identity = x if self.downsample is None else self.downsample(x)
        preact = self.bn3(self.conv3(out)) + identity
        return F.relu(preact), preact


class ImageNetResNet(ZooModel):
    """ResNet of He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), ImageNet layout.

    Stem: 7×7 stride-2 conv, BN, ReLU, 3×3 stride-2 max-pool; four stages of 64-128-256-512
    planes (× block expansion) with strides 1-2-2-2; adaptive average pool; ``fc``.
    """

    def __init__(
        self, block: type[BasicBlock | Bottleneck], layers: tuple[int, int, int, int], num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages, self.stage_channels = resnet_stages(block, block.expansion, layers)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(self.stage_channels[-1], num_classes)
        init_kaiming_fan_out(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        stem = self.bn1(self.conv1(x))  # (B, 64, H/2, W/2), before its ReLU
        f0 = F.relu(stem)
        f1, pre1 = run_stage(self.layer1, self.maxpool(f0))  # (B, 64e, H/4, W/4)
        f2, pre2 = run_stage(self.layer2, f1)  # (B, 128e, H/8, W/8)
        f3, pre3 = run_stage(self.layer3, f2)  # (B, 256e, H/16, W/16)
        f4, pre4 = run_stage(self.layer4, f3)  # (B, 512e, H/32, W/32): 7×7 at 224 px
        pooled = adaptive_global_avg_pool(f4)
        feats = Features(
            feats=[f0, f1, f2, f3, f4],
            preact_feats=[stem, pre1, pre2, pre3, pre4],
            pooled_feat=pooled,
            final_map=f4,
        )
        return self.fc(pooled), feats

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        lasts = [stage[-1] for stage in (self.layer1, self.layer2, self.layer3, self.layer4)]
        return [block.bn3 if isinstance(block, Bottleneck) else cast(BasicBlock, block).bn2 for block in lasts]


@register_model("ResNet18", zoo=ZOO)
def resnet18(num_classes: int = 1000) -> ImageNetResNet:
    """ResNet-18: BasicBlocks 2-2-2-2 (11.7 M parameters at 1000 classes)."""
    return ImageNetResNet(BasicBlock, (2, 2, 2, 2), num_classes)


@register_model("ResNet34", zoo=ZOO)
def resnet34(num_classes: int = 1000) -> ImageNetResNet:
    """ResNet-34: BasicBlocks 3-4-6-3 (a published teacher)."""
    return ImageNetResNet(BasicBlock, (3, 4, 6, 3), num_classes)


@register_model("ResNet50", zoo=ZOO)
def resnet50(num_classes: int = 1000) -> ImageNetResNet:
    """ResNet-50: Bottlenecks 3-4-6-3 (a published teacher)."""
    return ImageNetResNet(Bottleneck, (3, 4, 6, 3), num_classes)


# MobileNetV1 -------------------------------------------------------------------------------

#: (output channels, stride) of the 13 depthwise-separable blocks after the 32-channel stem.
MOBILENET_V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
#: ``model`` indices whose output ends a feature stage (mdistiller: 3, 5, 11, 13).
MOBILENET_V1_STAGES = (3, 5, 11, 13)


def _conv_bn(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _conv_dw(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """3×3 depthwise conv-BN-ReLU, then 1×1 pointwise conv-BN-ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(ZooModel):
    """MobileNet of Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
    Vision Applications" (arXiv 2017), width 1.0: the ImageNet student of mdistiller, SDD and DSKD.

    ``model[0]`` is the stride-2 stem, ``model[1..13]`` the depthwise-separable blocks. Features
    are mdistiller's four stages (after blocks 3, 5, 11 and 13; no stem), ``preact_feats`` before
    the last ReLU of those blocks; the final map is the ReLU of the last (1024 × 7×7 at 224 px).
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers = [_conv_bn(3, 32, 2)]
        in_channels = 32
        for out_channels, stride in MOBILENET_V1_BLOCKS:
            layers.append(_conv_dw(in_channels, out_channels, stride))
            in_channels = out_channels
        self.model = nn.Sequential(*layers)
        self.fc = nn.Linear(1024, num_classes)  # PyTorch's default init throughout, as upstream

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        feats: list[Tensor] = []
        preacts: list[Tensor] = []
        start = 0
        for end in MOBILENET_V1_STAGES:
            for index in range(start, end):
                x = self.model[index](x)
            last = cast(nn.Sequential, self.model[end])
            preact = last[:-1](x)  # the block up to its final ReLU
            x = F.relu(preact)
            preacts.append(preact)
            feats.append(x)
            start = end + 1
        pooled = adaptive_global_avg_pool(x)
        return self.fc(pooled), Features(feats=feats, preact_feats=preacts, pooled_feat=pooled, final_map=x)

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def get_stage_channels(self) -> list[int]:
        return [128, 256, 512, 1024]

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [cast(nn.BatchNorm2d, cast(nn.Sequential, self.model[i])[-2]) for i in MOBILENET_V1_STAGES]


@register_model("MobileNetV1", zoo=ZOO)
def mobilenet_v1(num_classes: int = 1000) -> MobileNetV1:
    """MobileNetV1 at width 1.0 (4.2 M parameters at 1000 classes)."""
    return MobileNetV1(num_classes)


register_alias(
    "MobileNetV2",
    "MobileNetV1",
    zoo=ZOO,
    reason="the name the SDD/DSKD ImageNet code gives this same width-1.0 MobileNetV1",
)
