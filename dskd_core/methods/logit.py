"""The logit-distillation term shared by every logit method: plain, +SDD, +standardization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from dskd_core.config import RunConfig
from dskd_core.losses import PerSampleLoss, standardized
from dskd_core.models import ZooModel
from dskd_core.sdd import multiscale_logits, sdd_loss


def logit_term(
    loss_fn: PerSampleLoss,
    cfg: RunConfig,
    target: Tensor,
    student: tuple[Tensor, Mapping[str, Any], ZooModel],
    teacher: tuple[Tensor, Mapping[str, Any], ZooModel],
) -> Tensor:
    """Batch value of ``loss_fn`` on the global logits, or lifted over SDD regions.

    ``student``/``teacher`` are ``(logits, feats, model)``. With ``cfg.stand`` both sides are
    z-scored per row (per region row under SDD) before the loss; scales ``[1]`` means the plain
    loss on the model's true global logits, as the reference falls back to.
    """
    fn = standardized(loss_fn) if cfg.stand else loss_fn
    s_logits, s_feats, s_model = student
    t_logits, t_feats, t_model = teacher
    if cfg.scales == [1]:
        return fn(s_logits, t_logits, target).mean()
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
