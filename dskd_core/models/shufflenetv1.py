"""ShuffleNet (v1) for CIFAR, groups 3 (``ShuffleV1``), RepDistiller/mdistiller layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import Features, PreactBlock, ZooModel, channel_shuffle, global_avg_pool, run_stage
from dskd_core.models.registry import register_model

STEM_CHANNELS = 24


class ShuffleUnit(PreactBlock):
    """1x1 group conv-BN-ReLU, channel shuffle, 3x3 depthwise-BN-ReLU, 1x1 group conv-BN.

    At stride 2 the input, average-pooled, is concatenated to the branch; otherwise added.
    A ReLU follows either way (upstream's preact is the sum or concatenation before it).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int, first_groups: int) -> None:
        super().__init__()
        mid_planes = out_planes // 4
        self.stride = stride
        self.first_groups = first_groups
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, groups=first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.conv2 = nn.Conv2d(
            mid_planes, mid_planes, kernel_size=3, stride=stride, padding=1, groups=mid_planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            preact = torch.cat([out, F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)], 1)
        else:
            preact = out + x
        return F.relu(preact), preact


class ShuffleNetV1(ZooModel):
    """ShuffleNet of Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural
    Network for Mobile Devices" (CVPR 2018), CIFAR variant: 1x1 stem, three stages.
    """

    def __init__(
        self,
        out_planes: tuple[int, int, int] = (240, 480, 960),
        num_blocks: tuple[int, int, int] = (4, 8, 4),
        groups: int = 3,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.stage_channels = [STEM_CHANNELS, *out_planes]
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.layer1 = self._make_stage(STEM_CHANNELS, out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_stage(out_planes[0], out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_stage(out_planes[1], out_planes[2], num_blocks[2], groups)
        self.linear = nn.Linear(out_planes[2], num_classes)

    @staticmethod
    def _make_stage(in_planes: int, out_planes: int, blocks: int, groups: int) -> nn.Sequential:
        # The stride-2 unit concatenates its pooled input, so its branch produces the rest; the
        # stem is too thin to split into groups, so the very first pointwise conv is dense.
        units = [
            ShuffleUnit(
                in_planes,
                out_planes - in_planes,
                stride=2,
                groups=groups,
                first_groups=1 if in_planes == STEM_CHANNELS else groups,
            )
        ]
        units += [ShuffleUnit(out_planes, out_planes, 1, groups, groups) for _ in range(1, blocks)]
        return nn.Sequential(*units)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        f0 = F.relu(self.bn1(self.conv1(x)))  # (B, 24, 32, 32)
        f1, pre1 = run_stage(self.layer1, f0)  # (B, 240, 16, 16)
        f2, pre2 = run_stage(self.layer2, f1)  # (B, 480, 8, 8)
        f3, pre3 = run_stage(self.layer3, f2)  # (B, 960, 4, 4)
        pooled = global_avg_pool(f3)  # (B, 960)
        feats = Features(
            feats=[f0, f1, f2, f3],
            preact_feats=[f0, pre1, pre2, pre3],
            pooled_feat=pooled,
            final_map=f3,
        )
        return self.linear(pooled), feats

    def get_classifier(self) -> nn.Linear:
        return self.linear

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)


@register_model("ShuffleV1")
def shuffle_v1(num_classes: int = 100) -> ShuffleNetV1:
    """ShuffleNet v1, groups 3, stage widths 240/480/960, blocks 4/8/4."""
    return ShuffleNetV1(num_classes=num_classes)
