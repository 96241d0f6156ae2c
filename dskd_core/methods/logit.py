"""The logit-distillation term shared by KD, DKD and RLD: plain, +SDD, +standardization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from dskd_core.config import RunConfig
from dskd_core.losses import PerSampleLoss, cross_entropy, standardized
from dskd_core.methods.base import Batch, Distiller
from dskd_core.models import Features, ZooModel
from dskd_core.sdd import multiscale_logits, sdd_loss


def logit_term(
    loss_fn: PerSampleLoss,
    cfg: RunConfig,
    target: Tensor,
    student: tuple[Tensor, Mapping[str, Any], ZooModel],
    teacher: tuple[Tensor, Mapping[str, Any], ZooModel],
    student_regions: Tensor | None = None,
) -> Tensor:
    """Batch value of ``loss_fn`` on the global logits, or lifted over SDD regions.

    ``student``/``teacher`` are ``(logits, feats, model)``. With ``cfg.stand`` both sides are
    z-scored per row (per region row under SDD) before the loss; scales ``[1]`` means the plain
    loss on the model's true global logits, as the reference falls back to. ``student_regions``:
    the student's region logits, already computed (a fused step computes them with the student's
    stacked forward); otherwise they come from its final map and classifier.
    """
    fn = standardized(loss_fn) if cfg.stand else loss_fn
    s_logits, s_feats, s_model = student
    t_logits, t_feats, t_model = teacher
    if cfg.scales == [1]:
        return fn(s_logits, t_logits, target).mean()
    s_regions = student_regions
    if s_regions is None:
        s_regions = multiscale_logits(s_feats["final_map"], s_model.get_classifier(), cfg.scales)
    t_regions = multiscale_logits(t_feats["final_map"], t_model.get_classifier(), cfg.scales).detach()
    return sdd_loss(
        fn,
        s_regions,
        t_regions,
        target,
        complementary=cfg.sdd_complementary,
        weighting=cfg.sdd_weighting,
    )


class LogitDistiller(Distiller):
    """CE on the raw global student logits + ``kd_weight`` × a per-sample logit loss.

    Subclasses give :meth:`per_sample`; SDD (``cfg.scales``) and standardization
    (``cfg.stand``) come from :func:`logit_term`, so every logit method takes both.
    """

    def per_sample(self) -> PerSampleLoss:
        raise NotImplementedError

    fusable = True

    def student_scales(self) -> tuple[int, ...] | None:
        return None if self.cfg.scales == [1] else tuple(self.cfg.scales)

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        image = batch["image"]
        s_logits, s_feats = self.student(image)
        t_logits, t_feats = self.teacher_forward(image)
        return s_logits, self._terms(batch, (s_logits, s_feats, None), (t_logits, t_feats))

    def terms_from(
        self, batch: Batch, student: tuple[Tensor, Tensor | None], teacher: tuple[Tensor, Features] | None
    ) -> dict[str, Tensor]:
        assert teacher is not None
        logits, regions = student
        return self._terms(batch, (logits, {}, regions), teacher)

    def _terms(
        self,
        batch: Batch,
        student: tuple[Tensor, Mapping[str, Any], Tensor | None],
        teacher: tuple[Tensor, Mapping[str, Any]],
    ) -> dict[str, Tensor]:
        target = batch["target"]
        s_logits, s_feats, s_regions = student
        assert self.teacher is not None
        loss_kd = logit_term(
            self.per_sample(),
            self.cfg,
            target,
            (s_logits, s_feats, self.student),
            (*teacher, self.teacher),
            student_regions=s_regions,
        )
        # CE stays on the raw global logits: standardization is a distillation-side transform.
        loss_ce = cross_entropy(s_logits, target).mean()
        return {"loss_ce": self.cfg.ce_weight * loss_ce, "loss_kd": self.cfg.kd_weight * loss_kd}
