"""VGG with BatchNorm for CIFAR (vgg8, vgg11, vgg13, vgg16, vgg19), RepDistiller/mdistiller layout.

Registered without upstream's ``_bn`` suffix (every variant has BatchNorm), as the field's
configs name them. Names (``block0.0.weight``, ``classifier.weight``) equal those of the
published vgg13 teacher checkpoint so it loads with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import Features, ZooModel, adaptive_global_avg_pool, init_conv_normal
from dskd_core.models.registry import register_model

# Conv widths of the five blocks; the letters are the VGG paper's configurations, "S" is CRD's vgg8.
CONFIGS: dict[str, tuple[tuple[int, ...], ...]] = {
    "S": ((64,), (128,), (256,), (512,), (512,)),
    "A": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "B": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "D": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "E": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


def make_block(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """conv3x3(bias)-BN-ReLU per width, without the last ReLU (forward applies it, to expose the preact)."""
    layers: list[nn.Module] = []
    for width in widths:
        conv = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers[:-1])


class VGG(ZooModel):
    """VGG of Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition" (ICLR 2015), with BatchNorm and a single linear classifier, for 32x32 inputs.

    Five conv blocks; 2x2 max-pooling after blocks 0-2 (and after block 3 only for 64x64
    inputs, upstream's Tiny-ImageNet case), so block 4 still sees a 4x4 map on CIFAR.
    """

    def __init__(self, config: Sequence[Sequence[int]], num_classes: int = 100) -> None:
        super().__init__()
        self.stage_channels = [widths[-1] for widths in config]
        in_channels = [3, *self.stage_channels[:-1]]
        self.block0 = make_block(in_channels[0], config[0])
        self.block1 = make_block(in_channels[1], config[1])
        self.block2 = make_block(in_channels[2], config[2])
        self.block3 = make_block(in_channels[3], config[3])
        self.block4 = make_block(in_channels[4], config[4])
        self.classifier = nn.Linear(self.stage_channels[4], num_classes)
        init_conv_normal(self, linear_std=0.01)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        pooled_after = 4 if x.shape[2] == 64 else 3  # blocks 0 .. pooled_after-1 are followed by max-pooling
        blocks = (self.block0, self.block1, self.block2, self.block3, self.block4)
        # feats: (B, 64, 32, 32), (B, 128, 16, 16), (B, 256, 8, 8), (B, 512, 4, 4), (B, 512, 4, 4)
        feats: list[Tensor] = []
        preacts: list[Tensor] = []
        for i, block in enumerate(blocks):
            preact = block(x)
            out = F.relu(preact)
            feats.append(out)
            preacts.append(preact)
            x = F.max_pool2d(out, kernel_size=2, stride=2) if i < pooled_after else out
        preacts[0] = feats[0]  # upstream reports the stem's output after its ReLU in both lists
        pooled = adaptive_global_avg_pool(feats[4])  # (B, 512)
        features = Features(feats=feats, preact_feats=preacts, pooled_feat=pooled, final_map=feats[4])
        return self.classifier(pooled), features

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [cast(nn.BatchNorm2d, block[-1]) for block in (self.block1, self.block2, self.block3, self.block4)]


@register_model("vgg8")
def vgg8(num_classes: int = 100) -> VGG:
    """VGG-8 with BatchNorm (one conv per block)."""
    return VGG(CONFIGS["S"], num_classes)


@register_model("vgg11")
def vgg11(num_classes: int = 100) -> VGG:
    """VGG-11 with BatchNorm (configuration A)."""
    return VGG(CONFIGS["A"], num_classes)


@register_model("vgg13")
def vgg13(num_classes: int = 100) -> VGG:
    """VGG-13 with BatchNorm (configuration B; a published teacher)."""
    return VGG(CONFIGS["B"], num_classes)


@register_model("vgg16")
def vgg16(num_classes: int = 100) -> VGG:
    """VGG-16 with BatchNorm (configuration D)."""
    return VGG(CONFIGS["D"], num_classes)


@register_model("vgg19")
def vgg19(num_classes: int = 100) -> VGG:
    """VGG-19 with BatchNorm (configuration E)."""
    return VGG(CONFIGS["E"], num_classes)
