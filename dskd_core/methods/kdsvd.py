"""KDSVD — Self-supervised Knowledge Distillation Using Singular Value Decomposition (Lee et al., ECCV 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.methods.base import Batch, register_method
from dskd_core.methods.feature import FEATURE_DEFAULTS, FeatureDistiller, FeatureParams, probe_features
from dskd_core.models import Features, ZooModel

EXTRA_STUDENT_VECTORS = 3  # the student keeps k + 3 singular vectors to pick its matches from
RBF_SCALE = 8.0


class _TopRightSingular(torch.autograd.Function):
    """Top-``n`` singular values ``(B, n)`` and right singular vectors ``(B, W, n)`` of ``(B, M, W)``
    matrices (M ≥ W), differentiated through the kept vectors only.

    torch's SVD backward forms 1/(σ_i² − σ_k²) for *every* pair, and tied discarded values (the
    duplicate columns of a rank-deficient map) give inf × 0 = NaN. Here, with λ = σ² the
    eigenvalues of G = XᵀX: dv_j = Σ_{i≠j} v_i (v_iᵀ dG v_j) / (λ_j − λ_i) over kept j only, and
    dσ_j = u_jᵀ dX v_j — the same gradient wherever torch's is finite.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, n: int) -> tuple[Tensor, Tensor]:
        u, s, vh = torch.linalg.svd(x, full_matrices=False)
        v = vh.transpose(-2, -1)
        ctx.save_for_backward(x, u[:, :, :n], s, v)
        return s[:, :n], v[:, :, :n]

    @staticmethod
    def backward(ctx: Any, grad_s: Tensor, grad_v: Tensor) -> tuple[Tensor, None]:
        x, u_n, s, v = ctx.saved_tensors
        n = u_n.shape[-1]
        lam = s.pow(2)  # (B, W)
        gap = lam[:, None, :n] - lam[:, :, None]  # (B, W, n): λ_j − λ_i at [i, j]
        floor = torch.finfo(x.dtype).eps * lam[:, :1, None].clamp(min=1.0)  # a tie with a kept value
        gap = torch.where(gap.abs() < floor, floor, gap)
        coef = (v.transpose(-2, -1) @ grad_v) / gap  # (B, W, n): v_i · ḡ_j / (λ_j − λ_i)
        coef = coef.masked_fill(torch.eye(v.shape[-1], n, dtype=torch.bool, device=x.device), 0.0)
        g_gram = v @ coef @ v[:, :, :n].transpose(-2, -1)  # (B, W, W)
        grad_x = x @ (g_gram + g_gram.transpose(-2, -1)) + (u_n * grad_s[:, None, :]) @ v[:, :, :n].transpose(-2, -1)
        return grad_x, None


def top_singular(feat: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Normalised top-``n`` singular values ``(B, n)`` and right singular vectors ``(B, W, n)``.

    The ``(B, C, H, W)`` map is read as ``(B, C·H, W)`` matrices, as mdistiller and RepDistiller
    reshape NCHW tensors (the TensorFlow original reshaped NHWC to (B, H·W, C)).
    """
    b, c, h, w = feat.shape
    s, v = _TopRightSingular.apply(feat.reshape(b, c * h, w).float(), n)
    return F.normalize(s, dim=1), F.normalize(v, dim=1)


def align_signs(v_s: Tensor, v_t: Tensor) -> Tensor:
    """For each teacher vector, the student vector of largest |cosine|, with that cosine's sign."""
    cosine = v_s.transpose(-2, -1) @ v_t  # (B, n_s, n_t)
    best = cosine.abs().amax(dim=1, keepdim=True)
    pick = torch.where(cosine.abs() == best, cosine.sign(), torch.zeros_like(cosine))
    return v_s @ pick  # (B, W, n_t)


def kdsvd_loss(student: Sequence[Tensor], teacher: Sequence[Tensor], k: int) -> Tensor:
    """Σ over consecutive stage pairs of ‖RBF(V_s^i, V_s^{i−1}) − RBF(V_t^i, V_t^{i−1})‖² / B.

    V: the top-k right singular vectors scaled by the teacher's normalised singular values;
    RBF(a, b) = exp(−(a_p − b_q)² / 8) for every pair of rows (p, q), per vector.
    """
    terms, previous = [], None
    for f_s, f_t in zip(student, teacher, strict=False):
        s_t, v_t = top_singular(f_t, k)
        _, v_s = top_singular(f_s, k + EXTRA_STUDENT_VECTORS)
        v_s = align_signs(v_s, v_t) * s_t[:, None, :]
        v_t = v_t * s_t[:, None, :]
        if previous is not None:
            s_prev, t_prev = previous
            s_rbf = torch.exp(-(v_s[:, :, None] - s_prev[:, None]).pow(2) / RBF_SCALE)
            t_rbf = torch.exp(-(v_t[:, :, None] - t_prev[:, None]).pow(2) / RBF_SCALE)
            terms.append((s_rbf - t_rbf.detach()).pow(2).sum())
        previous = (v_s, v_t)
    if not terms:
        return student[0].new_zeros(())
    return torch.stack(terms).sum() / student[0].shape[0]


@register_method
class KDSVD(FeatureDistiller):
    """Relations between the singular vectors of consecutive stages of ``feats[1:]``.

    mdistiller: k 1, CE 1, weight 1. Singular vectors are compared over the map width, so
    paired stages must have equal sizes (checked at construction).
    """

    class Params(FeatureParams):
        """KDSVD's weight and the number of the teacher's singular vectors kept."""

        feat_weight: float = Field(1.0, ge=0)
        kdsvd_k: int = Field(1, gt=0)

    name = "kdsvd"
    params: Params
    defaults: ClassVar[dict[str, Any]] = FEATURE_DEFAULTS

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__(student, teacher, cfg)
        assert self.teacher is not None
        s_feats, t_feats = probe_features(student)["feats"][1:], probe_features(self.teacher)["feats"][1:]
        sizes = [(int(s.shape[-1]), int(t.shape[-1])) for s, t in zip(s_feats, t_feats, strict=False)]
        if any(s != t for s, t in sizes):
            shown = ", ".join(f"{s}/{t}" for s, t in sizes)
            raise UsageError(
                f"kdsvd pairs stages of equal width, but {cfg.student}/{cfg.teacher} stage widths are {shown}: "
                "pick a pair whose stages match (e.g. two CIFAR ResNets)"
            )

    def feature_loss(self, student: Features, teacher: Features, batch: Batch) -> Tensor:
        return kdsvd_loss(student["feats"][1:], teacher["feats"][1:], self.params.kdsvd_k)
