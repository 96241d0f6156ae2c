"""Test-set evaluation: top-1, top-5 and mean cross-entropy of a model's global logits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dskd_core.train.execution import tf32_mode

if TYPE_CHECKING:
    from dskd_core.train.distributed import DistContext


@dataclass(frozen=True)
class EvalResult:
    top1: float  # percent
    top5: float  # percent
    loss: float
    samples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def evaluate(model: nn.Module, batches: Iterable[Mapping[str, Tensor]], dist: DistContext | None = None) -> EvalResult:
    """Evaluate in eval mode under ``inference_mode``; accuracies are sample-weighted percentages.

    Always in strict fp32, whatever the training precision: autocast off and TF32 off, so the
    per-epoch test accuracy, the best epoch and ``dskd eval`` of a saved student agree on any card.

    With ``dist`` over several processes, ``batches`` is this process's shard: every process
    first takes rank 0's BatchNorm statistics, then correct and sample counts are summed over
    processes, so the result is that of rank 0's model on the whole split.
    """
    if dist is not None:
        dist.broadcast_buffers(model)
    was_training = model.training
    model.eval()
    # (loss sum, top-1 hits, top-5 hits, samples) accumulated on the device: one read at the end.
    sums: Tensor | None = None
    device_type = next(model.parameters()).device.type
    with torch.inference_mode(), torch.autocast(device_type, enabled=False), tf32_mode(False):
        for batch in batches:
            logits, _ = model(batch["image"])
            logits, target = logits.float(), batch["target"]
            k = min(5, logits.shape[-1])
            hits = logits.topk(k, dim=-1).indices == target[:, None]
            row = torch.stack(
                [
                    F.cross_entropy(logits, target, reduction="sum").double(),
                    hits[:, 0].sum().double(),
                    hits.any(dim=-1).sum().double(),
                    torch.full((), float(target.numel()), dtype=torch.float64, device=logits.device),
                ]
            )
            sums = row if sums is None else sums + row
    model.train(was_training)
    loss_sum, hits1, hits5, count = sums.tolist() if sums is not None else (0.0, 0.0, 0.0, 0.0)
    correct1, correct5, total = round(hits1), round(hits5), round(count)
    if dist is not None and dist.enabled:
        reduced = dist.all_sum([correct1, correct5, loss_sum, total])
        correct1, correct5, loss_sum, total = round(reduced[0]), round(reduced[1]), reduced[2], round(reduced[3])
    if total == 0:
        return EvalResult(0.0, 0.0, float("nan"), 0)
    return EvalResult(100.0 * correct1 / total, 100.0 * correct5 / total, loss_sum / total, total)
