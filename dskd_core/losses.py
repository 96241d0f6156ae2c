"""Pure, per-sample distillation losses and the logit standardization transform.

Every loss returns one value per row, shape ``(B,)``, never a batch reduction: that is what lets
:func:`dskd_core.sdd.sdd_loss` weight individual (sample, region) terms without a copy of the
loss. The classic batch value is ``loss.mean()``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``loss_fn(student (M, K), teacher (M, K), target (M,)) -> (M,)``
PerSampleLoss = Callable[[Tensor, Tensor, Tensor], Tensor]

STAND_EPS = 1e-7


def standardize(z: Tensor) -> Tensor:
    """Z-score logits over the last (class) axis: ``(z - mean) / (std + 1e-7)``.

    Logit standardization (Sun et al., CVPR 2024). The std is the unbiased one (divides by K-1)
    and the epsilon sits outside the square root, exactly as the reference code computes it
    (the paper's Algorithm 1 writes the population std; the released numbers use this form).
    """
    mean = z.mean(dim=-1, keepdim=True)
    std = z.std(dim=-1, keepdim=True)
    return (z - mean) / (std + STAND_EPS)


def kd(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """Knowledge distillation (Hinton et al., 2015), per sample: ``T² · Σ_k KL(p_t ‖ p_s)``.

    ``student``/``teacher``: logits ``(B, K)``. Returns ``(B,)``; its mean is mdistiller's KD
    value (sum over classes, mean over the batch; never ``reduction='mean'``, which also divides
    by K).
    """
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    p_t = F.softmax(teacher / temperature, dim=-1)
    kl = F.kl_div(log_p_s, p_t, reduction="none").sum(dim=-1)
    return kl * temperature**2


def standardized(loss_fn: PerSampleLoss) -> PerSampleLoss:
    """Lift a per-sample loss to standardized logits: both sides z-scored first, target untouched."""

    def wrapped(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
        return loss_fn(standardize(student), standardize(teacher), target)

    return wrapped


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Plain cross-entropy, per sample ``(B,)``."""
    return F.cross_entropy(logits, target, reduction="none")


def is_finite(value: Tensor) -> bool:
    """True when every element is finite (one host sync; call once per step, not per term)."""
    return bool(torch.isfinite(value).all())
