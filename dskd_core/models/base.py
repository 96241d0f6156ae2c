"""What every CIFAR zoo model promises, and the small pieces several families share."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypedDict, cast

import torch.nn.functional as F
from torch import Tensor, nn


class Features(TypedDict):
    """The intermediate tensors a zoo model returns beside its logits."""

    feats: list[Tensor]  # stage outputs, stem first; channels = get_stage_channels()
    preact_feats: list[Tensor]  # the same positions before their last ReLU, as upstream defines them
    pooled_feat: Tensor  # (B, C): what the classifier sees
    final_map: Tensor  # (B, C, H, W): its spatial mean is pooled_feat (SDD pools it by region)


class ZooModel(nn.Module, ABC):
    """A classifier whose forward returns ``(logits, Features)``.

    Feature-based distillers read ``Features``; SDD re-pools ``final_map`` per region and
    applies ``get_classifier()``, so no model carries distillation code of its own.
    """

    @abstractmethod
    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        """(B, 3, H, W) images -> ((B, K) logits, Features)."""

    @abstractmethod
    def get_classifier(self) -> nn.Linear:
        """The final linear layer, mapping ``pooled_feat`` to the logits."""

    @abstractmethod
    def get_stage_channels(self) -> list[int]:
        """Channel count of each entry of ``Features["feats"]``."""

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        """The BatchNorm whose output (before any shortcut sum) is each ``preact_feats[1:]`` entry.

        OFD derives its margins from these; families without such a layer (the ShuffleNets, as
        upstream) raise NotImplementedError.
        """
        raise NotImplementedError(f"{type(self).__name__} has no BatchNorm before its stage ReLUs")

    if TYPE_CHECKING:

        def __call__(self, x: Tensor) -> tuple[Tensor, Features]: ...


class PreactBlock(nn.Module, ABC):
    """A block that can also hand back the pre-activation tensor that upstream reports for it."""

    @abstractmethod
    def forward_with_preact(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(output, preact)``; for most blocks ``output = relu(preact)``."""

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preact(x)[0]


def run_stage(stage: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """Run a stage whose last block is a PreactBlock; return its output and that block's preact."""
    *body, last = stage
    for block in body:
        x = block(x)
    return cast(PreactBlock, last).forward_with_preact(x)


def resnet_stages(
    block: Callable[..., nn.Module], expansion: int, layers: Sequence[int], in_planes: int = 64
) -> tuple[list[nn.Sequential], list[int]]:
    """The four stages of the ImageNet ResNet layout: 64-128-256-512 planes, strides 1-2-2-2.

    ``block(in_planes, planes, stride)``; each stage's first block takes the stride (and the
    change of width). Returns the stages and the channels after the stem and after each stage.
    """
    stages, channels = [], [in_planes]
    for planes, blocks, stride in zip((64, 128, 256, 512), layers, (1, 2, 2, 2), strict=True):
        units = [block(in_planes, planes, stride)]
        in_planes = planes * expansion
        units += [block(in_planes, planes) for _ in range(1, blocks)]
        stages.append(nn.Sequential(*units))
        channels.append(in_planes)
    return stages, channels


def global_avg_pool(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C) with ``avg_pool2d`` over the whole map.

    Upstream pools with a fixed kernel (8 or 4) that covers the whole map of a 32x32 input;
    a kernel sized to the map is the same operation there, hence the same bits.
    """
    return F.avg_pool2d(x, kernel_size=(x.shape[-2], x.shape[-1])).flatten(1)


def adaptive_global_avg_pool(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C) with ``adaptive_avg_pool2d``, for the nets that pool that way upstream."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet's channel shuffle: view C as (groups, C / groups), transpose, flatten back."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def init_kaiming_fan_out(model: nn.Module) -> None:
    """He-normal (fan-out) convs and unit BatchNorm, the ResNet init upstream uses; linears keep defaults."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_conv_normal(model: nn.Module, linear_std: float | None) -> None:
    """Conv weights ~ N(0, 2 / (k*k*C_out)), unit BatchNorm, zero biases.

    Linear weights ~ N(0, linear_std) when it is given, else they keep PyTorch's default
    (upstream's WRN zeroes only the linear bias; its VGG and MobileNetV2 use std 0.01).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
