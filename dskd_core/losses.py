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


def _binary(probs: Tensor, mask: Tensor) -> Tensor:
    """``(B, K)`` probabilities -> ``(B, 2)``: the mass on ``mask`` and the mass off it."""
    on = (probs * mask).sum(dim=-1, keepdim=True)
    off = (probs * ~mask).sum(dim=-1, keepdim=True)
    return torch.cat([on, off], dim=-1)


def _kl_rows(log_q: Tensor, p: Tensor) -> Tensor:
    """``Σ_k p (log p − log q)`` per row, with 0 where ``p`` is 0 (``F.kl_div`` semantics)."""
    return F.kl_div(log_q, p, reduction="none").sum(dim=-1)


def dkd(student: Tensor, teacher: Tensor, target: Tensor, *, alpha: float, beta: float, temperature: float) -> Tensor:
    """DKD — Decoupled Knowledge Distillation (Zhao et al., CVPR 2022), per sample ``(B,)``.

    TCKD: KL between the binary (target, non-target) distributions at ``temperature``;
    NCKD: KL between the distributions over the non-target classes, the target suppressed by
    subtracting 1000 from its scaled logit (not −inf, as the reference does). Both × T².
    The batch mean equals mdistiller's ``dkd_loss`` (sum over the batch / B).
    """
    gt = F.one_hot(target, student.shape[-1]).bool()
    t = temperature
    tckd = _kl_rows(torch.log(_binary(F.softmax(student / t, -1), gt)), _binary(F.softmax(teacher / t, -1), gt))
    suppress = 1000.0 * gt
    nckd = _kl_rows(F.log_softmax(student / t - suppress, -1), F.softmax(teacher / t - suppress, -1))
    return (alpha * tckd + beta * nckd) * t**2


def rld(
    student: Tensor,
    teacher: Tensor,
    target: Tensor,
    *,
    alpha: float,
    beta: float,
    temperature: float,
    alpha_temperature: float,
) -> Tensor:
    """RLD — Refined Logit Distillation (Sun et al., ICCV 2025), per sample ``(B,)``.

    SCD (at ``alpha_temperature``): the student's binary (label, rest) distribution against the
    teacher's binary (its own top class, rest) distribution. MCD (at ``temperature``): every
    class the teacher ranks at or above the label is masked out of both distributions (filled
    with −1e9), so a wrong teacher's preferred classes carry no knowledge. α_T² and T² factors.
    """
    gt = F.one_hot(target, student.shape[-1]).bool()
    top = F.one_hot(teacher.argmax(dim=-1), teacher.shape[-1]).bool()
    at = alpha_temperature
    scd = _kl_rows(torch.log(_binary(F.softmax(student / at, -1), gt)), _binary(F.softmax(teacher / at, -1), top))
    masked = teacher >= teacher.gather(-1, target[:, None])
    t = temperature
    log_s = F.log_softmax((student / t).masked_fill(masked, -1e9), -1)
    p_t = F.softmax((teacher / t).masked_fill(masked, -1e9), -1)
    mcd = _kl_rows(log_s, p_t)
    return alpha * scd * at**2 + beta * mcd * t**2


def standardized(loss_fn: PerSampleLoss) -> PerSampleLoss:
    """Lift a per-sample loss to standardized logits: both sides z-scored first, target untouched."""

    def wrapped(student: Tensor, teacher: Tensor, target: Tensor) -> Tensor:
        return loss_fn(standardize(student), standardize(teacher), target)

    return wrapped


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Plain cross-entropy, per sample ``(B,)``."""
    return F.cross_entropy(logits, target, reduction="none")
