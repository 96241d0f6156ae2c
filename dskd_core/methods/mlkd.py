"""MLKD — Multi-Level Logit Distillation (Jin et al., CVPR 2023), as DSKD registers it: MLKD and MLKD_NOAUG.

``mlkd`` trains on two views of every image (a weak one: crop and flip; a strong one: its own crop
and flip, then DSKD's strong augmentation) with four network passes a step; ``mlkd_noaug`` on the
ordinary single view. The loss is :func:`dskd_core.losses.mlkd_terms`, with the reference's quirks
(masks as kept-fraction factors, the T = 2 and T = 6 "strong" terms on the weak logits, no strong
CC/BC term, CE on both views). ``--stand`` standardizes the KD terms only. ``--scales`` is dskd's own
combination, which no reference has: the KD terms are lifted over the SDD regions of each view as
``kd``'s are, while CC, BC and the masks stay on the global logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from dskd_core.config import MethodParams
from dskd_core.losses import MaskForm, kd, mlkd_terms, standardized
from dskd_core.methods.base import Batch, Distiller, register_method
from dskd_core.sdd import multiscale_logits, sdd_loss

if TYPE_CHECKING:
    from dskd_core.config import RunConfig


class MLKDParams(MethodParams):
    """How the confidence masks act: ``factor`` (the reference code) or ``per_sample`` (the MLKD paper's form)."""

    mask_form: MaskForm = "factor"


class _MLKDBase(Distiller):
    """MLKD on the views the subclass declares; the predictions are the weak view's logits."""

    Params = MLKDParams
    params: MLKDParams
    # DSKD's cfg defaults (no MLKD yaml has a KD block): T 4, CE 0.1, KD 0.9; no warm-up.
    defaults: ClassVar[dict[str, Any]] = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0, "warmup": 0}

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        # DSKD's KD branch of --logit-stand: T0 := --base-temp, the KD weight := --kd-weight, CE unchanged.
        values["temperature"] = values["base_temp"]
        values["kd_weight"] = kd_weight

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        if cfg.params.mask_form == "per_sample" and cfg.scales != [1]:  # type: ignore[attr-defined]
            raise ValueError(
                "mask_form=per_sample selects per-sample KD values, which the SDD lift of --scales reduces away: "
                "drop --scales, or drop --set mask_form=per_sample"
            )
        if cfg.warmup > 0:
            raise ValueError(f"{cls.name} has no warm-up (none of its terms is ramped): drop --set warmup={cfg.warmup}")

    def _terms(self, target: Tensor, weak: Batch, strong: Batch | None) -> dict[str, Tensor]:
        """``weak``/``strong``: ``{"s", "t"}`` logits and ``{"s_feats", "t_feats"}`` of each view."""
        cfg = self.cfg
        kd_value = None
        if cfg.scales != [1]:
            assert self.teacher is not None
            views = {"weak": weak} if strong is None else {"weak": weak, "strong": strong}
            regions = {
                name: (
                    multiscale_logits(v["s_feats"], self.student.get_classifier(), cfg.scales),
                    multiscale_logits(v["t_feats"], self.teacher.get_classifier(), cfg.scales).detach(),
                )
                for name, v in views.items()
            }

            def kd_value(view: str, temperature: float) -> Tensor:
                def loss(s: Tensor, t: Tensor, y: Tensor) -> Tensor:
                    return kd(s, t, temperature)

                fn = standardized(loss) if cfg.stand else loss
                s_regions, t_regions = regions[view]
                return sdd_loss(
                    fn, s_regions, t_regions, target, complementary=cfg.sdd_complementary, weighting=cfg.sdd_weighting
                )

        terms = mlkd_terms(
            weak["s"],
            weak["t"],
            target,
            s_strong=None if strong is None else strong["s"],
            t_strong=None if strong is None else strong["t"],
            temperature=cfg.temperature,
            kd_weight=cfg.kd_weight,
            ce_weight=cfg.ce_weight,
            stand=cfg.stand,
            mask_form=self.params.mask_form,
            kd_value=kd_value,
        )
        return {f"loss_{name}": value for name, value in terms.items()}

    def _view(self, image: Tensor) -> dict[str, Tensor]:
        """The student's and the teacher's logits and final maps on one view."""
        s, s_feats = self.student(image)
        t, t_feats = self.teacher_forward(image)
        return {"s": s, "t": t, "s_feats": s_feats["final_map"], "t_feats": t_feats["final_map"]}


@register_method
class MLKD(_MLKDBase):
    """DSKD's MLKD: the weak and the strong view of each batch (``batch["image_strong"]``)."""

    name = "mlkd"
    strong_view = True

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        weak, strong = self._view(batch["image"]), self._view(batch["image_strong"])
        return weak["s"], self._terms(batch["target"], weak, strong)


@register_method
class MLKDNoAug(_MLKDBase):
    """DSKD's MLKD_NOAUG: MLKD's weak-view terms on the ordinary single view (so ``--aug`` applies)."""

    name = "mlkd_noaug"

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        view = self._view(batch["image"])
        return view["s"], self._terms(batch["target"], view, None)
