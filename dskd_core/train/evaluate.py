"""Test-set evaluation: top-1, top-5 and mean cross-entropy of a model's global logits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class EvalResult:
    top1: float  # percent
    top5: float  # percent
    loss: float
    samples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def evaluate(model: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> EvalResult:
    """Evaluate in eval mode under ``inference_mode``; accuracies are sample-weighted percentages."""
    was_training = model.training
    model.eval()
    correct1 = correct5 = total = 0
    loss_sum = 0.0
    with torch.inference_mode():
        for batch in batches:
            logits, _ = model(batch["image"])
            target = batch["target"]
            loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
            k = min(5, logits.shape[-1])
            topk = logits.topk(k, dim=-1).indices
            hits = topk == target[:, None]
            correct1 += int(hits[:, 0].sum())
            correct5 += int(hits.any(dim=-1).sum())
            total += int(target.numel())
    model.train(was_training)
    if total == 0:
        return EvalResult(0.0, 0.0, float("nan"), 0)
    return EvalResult(100.0 * correct1 / total, 100.0 * correct5 / total, loss_sum / total, total)
