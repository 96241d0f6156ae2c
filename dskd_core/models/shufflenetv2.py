"""ShuffleNetV2 for CIFAR, net size 1 (``ShuffleV2``), RepDistiller/mdistiller layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.models.base import Features, PreactBlock, ZooModel, channel_shuffle, global_avg_pool, run_stage
from dskd_core.models.registry import register_model

STEM_CHANNELS = 24


def depthwise3x3(channels: int, stride: int) -> nn.Conv2d:
    """3x3 depthwise convolution, padding 1, no bias."""
    return nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, groups=channels, bias=False)


def pointwise(in_channels: int, out_channels: int) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class SplitUnit(PreactBlock):
    """Basic unit: half the channels pass through, the other half go 1x1-BN-ReLU, 3x3 dw-BN,
    1x1-BN-ReLU; the halves are concatenated and shuffled.

    Its preact, as upstream defines it, is the concatenation before the last ReLU and *before*
    the shuffle, so its channel order differs from the output's.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = pointwise(half, half)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = depthwise3x3(half, stride=1)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = pointwise(half, half)
        self.bn3 = nn.BatchNorm2d(half)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> the untouched half and the branch's pre-ReLU output, (B, C/2, H, W) each."""
        half = x.shape[1] // 2
        kept, branch = x[:, :half], x[:, half:]
        branch = F.relu(self.bn1(self.conv1(branch)))
        branch = self.bn2(self.conv2(branch))
        return kept, self.bn3(self.conv3(branch))

    def forward(self, x: Tensor) -> Tensor:
        kept, preact = self._split(x)
        return channel_shuffle(torch.cat([kept, F.relu(preact)], 1), 2)

    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, preact = self._split(x)
        return channel_shuffle(torch.cat([kept, F.relu(preact)], 1), 2), torch.cat([kept, preact], 1)


class DownUnit(nn.Module):
    """Stride-2 unit: both halves are computed from the whole input, concatenated and shuffled.

    Left: 3x3 dw(s2)-BN, 1x1-BN-ReLU. Right: 1x1-BN-ReLU, 3x3 dw(s2)-BN, 1x1-BN-ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = depthwise3x3(in_channels, stride=2)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = pointwise(in_channels, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = pointwise(in_channels, mid)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = depthwise3x3(mid, stride=2)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = pointwise(mid, mid)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


def make_stage(in_channels: int, out_channels: int, blocks: int) -> nn.Sequential:
    """A DownUnit followed by ``blocks`` SplitUnits."""
    return nn.Sequential(DownUnit(in_channels, out_channels), *(SplitUnit(out_channels) for _ in range(blocks)))


class ShuffleNetV2(ZooModel):
    """ShuffleNetV2 of Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
    Architecture Design" (ECCV 2018), CIFAR variant: 1x1 stem, three stages, 1x1 head conv.
    """

    def __init__(
        self,
        out_channels: tuple[int, int, int, int] = (116, 232, 464, 1024),
        num_blocks: tuple[int, int, int] = (3, 7, 3),
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        self.stage_channels = [STEM_CHANNELS, *out_channels[:3]]
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.layer1 = make_stage(STEM_CHANNELS, out_channels[0], num_blocks[0])
        self.layer2 = make_stage(out_channels[0], out_channels[1], num_blocks[1])
        self.layer3 = make_stage(out_channels[1], out_channels[2], num_blocks[2])
        self.conv2 = pointwise(out_channels[2], out_channels[3])
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        f0 = F.relu(self.bn1(self.conv1(x)))  # (B, 24, 32, 32)
        f1, pre1 = run_stage(self.layer1, f0)  # (B, 116, 16, 16)
        f2, pre2 = run_stage(self.layer2, f1)  # (B, 232, 8, 8)
        f3, pre3 = run_stage(self.layer3, f2)  # (B, 464, 4, 4)
        final = F.relu(self.bn2(self.conv2(f3)))  # (B, 1024, 4, 4)
        pooled = global_avg_pool(final)  # (B, 1024)
        feats = Features(
            feats=[f0, f1, f2, f3],
            preact_feats=[f0, pre1, pre2, pre3],
            pooled_feat=pooled,
            final_map=final,
        )
        return self.linear(pooled), feats

    def get_classifier(self) -> nn.Linear:
        return self.linear

    def get_stage_channels(self) -> list[int]:
        return list(self.stage_channels)


@register_model("ShuffleV2")
def shuffle_v2(num_classes: int = 100) -> ShuffleNetV2:
    """ShuffleNetV2 at net size 1: stage widths 116/232/464, blocks 3/7/3, head 1024."""
    return ShuffleNetV2(num_classes=num_classes)
