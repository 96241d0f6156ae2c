"""Scale-decoupled distillation (SDD; Wei et al., CVPR 2024) as a lift over regions.

The final feature map is average-pooled to 4×4 cells, the 2×2 and 1×1 cells are pooled from
that 4×4 map (as the reference does), every cell goes through the model's own classifier, and
any per-sample loss is applied to each (sample, region) pair. Tensors are ``(B, N, K)``: class
axis last, region 0 the global cell, then the 2×2 cells row-major, then the 4×4 cells
row-major.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.errors import UsageError
from dskd_core.losses import PerSampleLoss
from dskd_core.scales import validate_scales

Weighting = Literal["region", "mean"]


def num_regions(scales: Sequence[int]) -> int:
    """N for a set of scales: 1 + 4 + 16 for (1, 2, 4)."""
    return sum(s * s for s in validate_scales(scales))


def multiscale_logits(final_map: Tensor, classifier: nn.Linear, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """Per-region logits ``(B, N, K)`` from a final map ``(B, C, H, W)`` and the model's classifier.

    The 4×4 map is pooled first and the coarser cells are pooled from it, not from the full map:
    on 8×8 and 4×4 maps this equals pooling directly, on 7×7 ImageNet maps it does not, and the
    reference numbers come from this order. Maps smaller than 4×4 (MobileNetV2's 2×2) are
    replicated into the 4×4 cells by adaptive pooling.
    """
    wanted = validate_scales(scales)
    p4 = F.adaptive_avg_pool2d(final_map, 4)
    pooled = {4: p4, 2: F.adaptive_avg_pool2d(p4, 2), 1: F.adaptive_avg_pool2d(p4, 1)}
    cells = torch.cat([pooled[s].flatten(2) for s in wanted], dim=2)  # (B, C, N)
    logits: Tensor = classifier(cells.transpose(1, 2))  # (B, N, K)
    return logits


def region_weights(teacher_regions: Tensor, target: Tensor, complementary: float = 2.0) -> Tensor:
    """Weights ``(B, N)``: 1 where the teacher's verdict on a region equals its verdict on region 0.

    A verdict is "argmax is the label" (right) or not (wrong); regions whose verdict differs
    from the global one are complementary knowledge and weigh ``complementary``. Consistency is
    decided by correctness against the label, not by equal predicted classes: a region wrong as
    class A and a global cell wrong as class B are consistent. Region 0 always weighs 1.
    """
    correct = teacher_regions.argmax(dim=-1) == target[:, None]  # (B, N)
    differs = correct != correct[:, :1]
    ones = torch.ones_like(teacher_regions[..., 0])
    return torch.where(differs, ones * complementary, ones)


def flatten_regions(regions: Tensor) -> Tensor:
    """``(B, N, K) -> (N·B, K)`` region-major (row = n·B + b), the reference's row order."""
    return regions.transpose(0, 1).reshape(-1, regions.shape[-1])


def sdd_loss(
    loss_fn: PerSampleLoss,
    student_regions: Tensor,
    teacher_regions: Tensor,
    target: Tensor,
    *,
    complementary: float = 2.0,
    weighting: Weighting = "region",
) -> Tensor:
    """Apply a per-sample loss to every (sample, region) and reduce with SDD's weights.

    ``loss_fn(s (M, K), t (M, K), y (M,)) -> (M,)`` sees region-major rows with the labels
    tiled (``M = N·B``). ``weighting="region"``: mean over all (sample, region) of weight × loss
    (the SDD paper; the DSKD reference's SD-KD and SD-RLD). ``weighting="mean"``: mean loss ×
    mean weight, the DSKD reference's SD-DKD reduction, kept to reproduce its numbers.
    """
    if student_regions.shape[:2] != teacher_regions.shape[:2]:
        raise ValueError(
            f"student regions {tuple(student_regions.shape)} and teacher regions "
            f"{tuple(teacher_regions.shape)} differ in batch or region count"
        )
    n = student_regions.shape[1]
    per_row = loss_fn(flatten_regions(student_regions), flatten_regions(teacher_regions), target.repeat(n))
    weights = region_weights(teacher_regions, target, complementary).transpose(0, 1).reshape(-1)
    if weighting == "region":
        return (weights * per_row).mean()
    if weighting == "mean":
        return per_row.mean() * weights.mean()
    raise UsageError(f"unknown SDD weighting '{weighting}': use region or mean")
