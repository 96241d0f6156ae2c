"""The distiller contract: one small class per method, no method-name branches in the engine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from dskd_core.config import MethodParams, MethodSchema, register_schema
from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.models import Features, ZooModel

if TYPE_CHECKING:
    from dskd_core.config import RunConfig
    from dskd_core.data import Split
    from dskd_core.data.loader import BatchExtra

Batch = Mapping[str, Tensor]


class Distiller(nn.Module):
    """Owns the student, the frozen teacher and any extra trainable modules of a method.

    ``forward(batch)`` returns ``(student_logits, {term: scalar loss})``; the engine sums
    ``weight(epoch) × term`` with the factors from :meth:`term_weights`, so warm-ups are explicit
    schedules rather than an ``epoch`` keyword hidden in a loss (a method never sees the epoch).
    """

    name: ClassVar[str]
    needs_teacher: ClassVar[bool] = True
    #: What the method needs from a batch besides ``image`` and ``target`` (e.g. ``index``).
    batch_keys: ClassVar[frozenset[str]] = frozenset()
    #: Whether the method trains on two views of every image: ``image`` (the weak one: crop and flip)
    #: and ``image_strong`` (its own crop and flip, then the strong augmentation). The loaders provide
    #: the second view when the run's method asks for it; the engine never looks at the method's name.
    strong_view: ClassVar[bool] = False
    #: The method's own hyperparameters with their defaults (``cfg.params`` is an instance).
    Params: ClassVar[type[MethodParams]] = MethodParams
    #: The method's values of common run-config keys (CE/KD weights, T, warm-up, SDD reduction),
    #: layered over the dataset recipe.
    defaults: ClassVar[dict[str, Any]] = {}
    #: The logit loss that ``--scales``/``--stand`` add beside the method's own term ("kd" for the
    #: feature methods; named in the run's variant); None when they transform the method's own loss.
    enhanced_by: ClassVar[str | None] = None
    #: Whether ``feature_form = "mdistiller"`` changes this method (where dskd's loss differs from mdistiller's).
    mdistiller_form: ClassVar[bool] = False
    #: Whether runs of this method can train stacked with others of the same student in one fused step
    #: (:mod:`dskd_core.train.fused`): the student's forward is all that trains, and :meth:`terms_from`
    #: computes the loss terms from its logits (and region logits) and the teacher's output alone.
    fusable: ClassVar[bool] = False

    def __init__(self, student: ZooModel, teacher: ZooModel | None, cfg: RunConfig) -> None:
        super().__init__()
        if not isinstance(cfg.params, self.Params):
            raise UsageError(
                f"method '{self.name}' got a run config of method '{cfg.method}': resolve it for {self.name}"
            )
        self.student = student
        self.teacher = teacher
        self.cfg = cfg
        self.params = cfg.params
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()

    @classmethod
    def apply_stand(cls, values: dict[str, Any], kd_weight: float) -> None:
        """Apply ``--stand``'s ``--kd-weight``/``--base-temp`` semantics to config values in place."""
        raise UsageError(f"--stand does not apply to method '{cls.name}'")

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        """Refuse (``ValueError``, one line naming the fix) a combination of this method's values that cannot run.

        Called by ``resolve.check_run_config`` for every resolved config; the default accepts all.
        """

    @classmethod
    def config_notes(cls, cfg: RunConfig) -> list[str]:
        """One-line notes on ``cfg`` that stop nothing but change what the run does (``train --dry-run`` shows
        them, :meth:`describe` records them): a warm-up longer than the run, whose distillation term then never
        reaches full weight (the digits recipe's 1 epoch under DKD's 20-epoch warm-up, say)."""
        if not cls.needs_teacher or cfg.warmup <= cfg.epochs:
            return []
        return [
            f"warm-up of {cfg.warmup} epochs is longer than the run's {cfg.epochs}: the distillation term never "
            f"reaches full weight ({cfg.epochs}/{cfg.warmup} of it in the last epoch); --set warmup={cfg.epochs} "
            "ramps it over the run, --set warmup=0 gives it full weight from the start"
        ]

    def train(self, mode: bool = True) -> Distiller:
        # The teacher stays in eval mode (BatchNorm running statistics) on every train() call.
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Student parameters plus the method's extra modules that train; never the teacher's."""
        for name, param in self.named_parameters():
            if not name.startswith("teacher.") and param.requires_grad:
                yield param

    def extra_state_dict(self) -> dict[str, Tensor]:
        """Trainable state beyond the student (saved in the train state, not in the student file)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("student.", "teacher."))}

    def term_weights(self, epoch: int) -> dict[str, float]:
        """Multipliers per loss term at ``epoch`` (counted from 1); a missing term weighs 1.

        ``cfg.warmup`` ramps the distillation term linearly: ``min(epoch / warmup, 1)``, so
        epoch 1 of a 20-epoch warm-up weighs 1/20 (DKD, RLD).
        """
        if self.cfg.warmup > 0:
            return {"loss_kd": min(epoch / self.cfg.warmup, 1.0)}
        return {}

    def bind_data(self, train: Split) -> None:
        """Called once by the engine with the training split, before the optimizer and any resume.

        Methods whose state depends on the data (CRD's memory banks, one row per sample) size it
        here and refuse with a UsageError when it cannot fit; the default does nothing.
        """

    def batch_extras(self) -> dict[str, BatchExtra]:
        """Per-batch values for ``batch_keys`` beyond what the loader yields (CRD: ``contrast_index``)."""
        return {}

    def describe(self) -> list[str]:
        """One-line notes for the run's start event (e.g. CRD's memory-bank size); the config's notes first."""
        return self.config_notes(self.cfg)

    def teacher_forward(self, image: Tensor) -> tuple[Tensor, Features]:
        assert self.teacher is not None
        with torch.no_grad():
            return self.teacher(image)

    def forward(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def student_scales(self) -> tuple[int, ...] | None:
        """The SDD scales whose region logits :meth:`terms_from` needs of the student; None: none."""
        return None

    def terms_from(
        self, batch: Batch, student: tuple[Tensor, Tensor | None], teacher: tuple[Tensor, Features] | None
    ) -> dict[str, Tensor]:
        """The loss terms of ``forward`` from outputs computed elsewhere (a :attr:`fusable` method's).

        ``student`` is ``(logits, region logits for student_scales() or None)``, ``teacher`` the
        teacher's ``(logits, Features)`` on ``batch["image"]`` (None without a teacher). Equal to
        ``forward(batch)[1]`` for the same outputs.
        """
        raise NotImplementedError(f"method '{self.name}' computes its terms only in its own forward")

    def __call__(self, batch: Batch, epoch: int | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``forward(batch)``; ``epoch`` is what dskd 0.1 callers passed and is not handed on (see above)."""
        out: tuple[Tensor, dict[str, Tensor]] = super().__call__(batch)
        return out


_METHODS: dict[str, type[Distiller]] = {}


def register_method(cls: type[Distiller]) -> type[Distiller]:
    """Class decorator: register a distiller under ``cls.name`` (duplicates are refused)."""
    if cls.name in _METHODS:
        raise UsageError(f"method '{cls.name}' is already registered")
    own_weighting = cls.defaults.get("sdd_weighting", "region")
    register_schema(
        MethodSchema(cls.name, cls.Params, cls.enhanced_by, own_weighting, cls.needs_teacher, cls.strong_view)
    )
    _METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> type[Distiller]:
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError("method", name, _METHODS) from None


def list_methods() -> list[str]:
    return sorted(_METHODS)
