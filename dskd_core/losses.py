"""Pure, per-sample distillation losses and the logit standardization transform.

Every loss returns one value per row, shape ``(B,)``, never a batch reduction: that is what lets
:func:`dskd_core.sdd.sdd_loss` weight individual (sample, region) terms without a copy of the
loss. The classic batch value is ``loss.mean()``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Literal

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


#: MLKD's temperatures after the base one, in the reference's order: ``(T0, 3, 5, 2, 6)``.
MLKD_EXTRA_TEMPERATURES = (3.0, 5.0, 2.0, 6.0)

#: How MLKD's confidence masks act: ``factor`` (the reference code: each masked batch value times the
#: kept fraction) or ``per_sample`` (the MLKD paper: only the kept rows' values, averaged over all rows).
MaskForm = Literal["factor", "per_sample"]

#: ``kd_value(view, temperature) -> scalar``: MLKD's KD term on the ``"weak"`` or ``"strong"`` view.
KDValue = Callable[[str, float], Tensor]


def median_threshold(values: Tensor) -> Tensor:
    """The 50th percentile of a 1-D tensor as numpy's default (linear) ``percentile`` computes it.

    On the device, with no host read: the sort position is known from the static length. For an
    even length numpy interpolates half-way as ``b - (b - a) · 0.5``, computed in the values' dtype.
    """
    n = values.shape[0]
    ordered = values.sort().values
    position = 0.5 * (n - 1)
    low = math.floor(position)
    high = min(low + 1, n - 1)
    t = position - low
    a, b = ordered[low], ordered[high]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _softmax_pair(student: Tensor, teacher: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Both softmaxes at ``temperature`` in at least fp32 (the Gram differences below are small)."""
    dtype = torch.promote_types(student.dtype, torch.float32)
    return F.softmax(student.to(dtype) / temperature, dim=-1), F.softmax(teacher.to(dtype) / temperature, dim=-1)


def _full_precision(like: Tensor) -> contextlib.AbstractContextManager[object]:
    """No autocast around a matrix product: a bf16 Gram matrix would swamp the difference of two."""
    if not torch.amp.is_autocast_available(like.device.type):
        return contextlib.nullcontext()
    return torch.autocast(like.device.type, enabled=False)


def class_correlation(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """MLKD's class correlation, per class row ``(K,)``: ``Σ_j (QᵀQ − PᵀP)²_kj / K`` (its sum is the term)."""
    p, q = _softmax_pair(student, teacher, temperature)
    with _full_precision(p):
        return ((q.T @ q - p.T @ p) ** 2).sum(dim=-1) / student.shape[-1]


def batch_correlation(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """MLKD's batch correlation, per sample row ``(B,)``: ``Σ_b' (QQᵀ − PPᵀ)²_bb' / B`` (its sum is the term)."""
    p, q = _softmax_pair(student, teacher, temperature)
    with _full_precision(p):
        return ((q @ q.T - p @ p.T) ** 2).sum(dim=-1) / student.shape[0]


def mlkd_terms(
    s_weak: Tensor,
    t_weak: Tensor,
    target: Tensor,
    *,
    s_strong: Tensor | None = None,
    t_strong: Tensor | None = None,
    temperature: float,
    kd_weight: float,
    ce_weight: float,
    stand: bool,
    mask_form: MaskForm = "factor",
    kd_value: KDValue | None = None,
) -> dict[str, Tensor]:
    """MLKD (Jin et al., CVPR 2023) as the DSKD reference computes it: ``{"ce", "kd", "cc", "bc"}`` scalars.

    Logits ``(B, K)`` of the student and the teacher on the weak view and, for MLKD, the strong
    view (``s_strong=None``: MLKD_NOAUG, one view). Weights are applied as the reference applies
    them: ``ce_weight`` on each view's cross-entropy, ``kd_weight`` on the KD, CC and BC terms; the
    total is the sum of the four. The temperatures are ``(temperature, 3, 5, 2, 6)``.

    The confidence masks come from the teacher's weak-view softmax at T = 1 on raw logits: samples
    whose top probability is at most the batch median, classes whose summed probability is at
    most the median. With ``mask_form="factor"`` (the reference) a masked term is its batch value
    times the kept fraction (``(loss × mask).mean()`` of a scalar loss); ``"per_sample"`` keeps only
    the kept rows' per-sample (per-class for CC) values, averaged over all rows. The weak BC term
    uses the sample mask, CC the class mask. With two views, the unmasked "strong" KD terms at
    T0, 3, 5 use the strong logits and those at 2 and 6 the weak ones, and no strong CC or BC term
    is in the loss (all as the reference). ``stand`` z-scores the logits of the KD terms only.

    ``kd_value(view, T)``, when given, computes a KD term instead of the plain global one (dskd's
    ``--scales``: over the SDD regions); the masks and CC/BC stay on the global logits.
    """
    if (s_strong is None) != (t_strong is None):
        raise ValueError("give both s_strong and t_strong (MLKD) or neither (MLKD_NOAUG)")
    if mask_form not in ("factor", "per_sample"):
        raise ValueError(f"mask_form must be 'factor' or 'per_sample', not {mask_form!r}")
    if mask_form == "per_sample" and kd_value is not None:
        raise ValueError("mask_form='per_sample' needs per-sample KD values: it does not combine with kd_value")
    temps = (float(temperature), *MLKD_EXTRA_TEMPERATURES)
    views = {"weak": (s_weak, t_weak)}
    if s_strong is not None and t_strong is not None:
        views["strong"] = (s_strong, t_strong)

    def kd_rows(view: str, t: float) -> Tensor:
        s, te = views[view]
        if stand:
            s, te = standardize(s), standardize(te)
        return kd(s, te, t)

    def kd_batch(view: str, t: float) -> Tensor:
        return kd_value(view, t) if kd_value is not None else kd_rows(view, t).mean()

    with torch.no_grad():
        probs = F.softmax(t_weak.detach(), dim=-1)
        confidence = probs.max(dim=-1).values
        sample_mask = confidence <= median_threshold(confidence)
        class_sums = probs.sum(dim=0)
        class_mask = class_sums <= median_threshold(class_sums)
        exact = torch.promote_types(s_weak.dtype, torch.float32)  # the kept fraction exactly, even under bf16
        sample_kept = sample_mask.to(exact).mean()
        class_kept = class_mask.to(exact).mean()

    per_sample = mask_form == "per_sample"
    zero = torch.zeros((), dtype=s_weak.dtype, device=s_weak.device)
    kd_weak, cc, bc = zero, zero, zero
    for t in temps:
        if per_sample:  # the kept rows' values (per class for CC), averaged over all rows
            kd_weak = kd_weak + (kd_rows("weak", t) * sample_mask).mean()
            cc = cc + (class_correlation(s_weak, t_weak, t) * class_mask).sum()
            bc = bc + (batch_correlation(s_weak, t_weak, t) * sample_mask).sum()
        else:  # the reference: the batch value times the kept fraction
            kd_weak = kd_weak + kd_batch("weak", t) * sample_kept
            cc = cc + class_correlation(s_weak, t_weak, t).sum() * class_kept
            bc = bc + batch_correlation(s_weak, t_weak, t).sum() * sample_kept
    kd_total = kd_weight * kd_weak
    if "strong" in views:  # unmasked; the T = 2 and T = 6 terms on the weak logits, as the reference
        strong = kd_batch("strong", temps[0]) + kd_batch("strong", temps[1]) + kd_batch("strong", temps[2])
        kd_total = kd_total + kd_weight * (strong + kd_batch("weak", 2.0) + kd_batch("weak", 6.0))
    ce = cross_entropy(s_weak, target).mean()
    if s_strong is not None:
        ce = ce + cross_entropy(s_strong, target).mean()
    return {"ce": ce_weight * ce, "kd": kd_total, "cc": kd_weight * cc, "bc": kd_weight * bc}
