"""One training step, two implementations behind one protocol.

:class:`EagerStep` is the reference step: forward, the weighted loss read back and checked at
every step (the progress line shows it), backward, clipping, SGD — what mdistiller's trainer
does. :class:`~dskd_core.train.fast.FastStep` keeps everything on the device and reads the
statistics once per epoch. The :class:`~dskd_core.train.engine.Trainer` holds one :class:`Step`
and never asks which; a fused multi-student step is a third implementation of the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from dskd_core.errors import NonFiniteLoss


@dataclass(frozen=True)
class EpochStats:
    """One epoch of steps: per-term weighted loss sums, correct count, images, loss sum per slot."""

    sums: dict[str, float]
    correct: int
    seen: int
    loss_per_slot: list[float]


class Step(Protocol):
    """What the trainer needs of a training step."""

    @property
    def fallback(self) -> str | None:
        """Why the step runs other than asked (e.g. a CUDA graph that could not be recorded); None if it does not."""
        ...

    @property
    def graphs(self) -> str | None:
        """Which CUDA graphs run the step (recorded in the start event); None: the step has no such choice."""
        ...

    @property
    def last_loss(self) -> float | None:
        """The last step's loss for the progress line, where the step reads it anyway (None: not read)."""
        ...

    def begin_epoch(self, epoch: int, factors: Mapping[str, float]) -> None:
        """Start ``epoch`` (from 1) with these term multipliers; statistics start from zero."""
        ...

    def step(self, batch: dict[str, Tensor], slot: int = 0) -> Tensor:
        """One optimizer step on ``batch``, its statistics added to row ``slot``; returns the loss tensor."""
        ...

    def collect(self, epoch: int) -> EpochStats:
        """The epoch's statistics; raises :class:`NonFiniteLoss` for a term that is not finite."""
        ...


def non_finite_loss(term: str, value: float, epoch: int, when: str) -> NonFiniteLoss:
    """The error of a non-finite loss term, naming what of the run is intact."""
    kept = f"the checkpoints of epoch {epoch - 1} are intact" if epoch > 1 else "no epoch had completed"
    return NonFiniteLoss(f"loss term {term} is {value} {when}: lower --lr or check the data; {kept}")


class EagerStep:
    """The reference step: every step's loss is read back, checked and shown.

    ``model(batch)`` returns ``(logits, {term: loss})`` (a distiller, possibly wrapped in DDP);
    the loss is the sum of the terms times this epoch's factors (a missing factor weighs 1).
    """

    graphs: str | None = None  # no CUDA graphs to choose: the start event leaves the key out
    fallback: str | None = None

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        params: list[nn.Parameter],
        device: torch.device,
        clip_grad: float | None = None,
        slots: int = 1,
    ) -> None:
        self.model, self.optimizer, self.params, self.device = model, optimizer, params, device
        self.clip_grad, self.slots = clip_grad, slots
        self.epoch = 0
        self.factors: dict[str, float] = {}
        self.last_loss: float | None = None
        self.begin_epoch(0, {})

    def begin_epoch(self, epoch: int, factors: Mapping[str, float]) -> None:
        self.epoch, self.factors = epoch, dict(factors)
        self._steps = 0
        self._sums: dict[str, Tensor] = {}
        self._correct = self._seen = 0
        # The loss over the epoch in ``slots`` consecutive slices of its steps (on the device).
        self._curve = torch.zeros(self.slots, dtype=torch.float64, device=self.device)

    def step(self, batch: dict[str, Tensor], slot: int = 0) -> Tensor:
        self._steps += 1
        logits, terms = self.model(batch)
        weighted = {name: value * self.factors.get(name, 1.0) for name, value in terms.items()}
        loss = torch.stack(list(weighted.values())).sum()
        if not torch.isfinite(loss):
            bad = next(n for n, v in weighted.items() if not torch.isfinite(v))
            value = float(weighted[bad].detach())
            raise non_finite_loss(bad, value, self.epoch, f"at epoch {self.epoch} step {self._steps}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad)
        self.optimizer.step()
        n = len(batch["target"])
        for name, value in weighted.items():
            self._sums[name] = (
                self._sums.get(name, torch.zeros((), dtype=value.dtype, device=value.device)) + value.detach() * n
            )
        self._correct += int((logits.argmax(-1) == batch["target"]).sum())
        self._seen += n
        self._curve[slot] += loss.detach().double() * n
        self.last_loss = float(loss.detach())
        return loss.detach()

    def collect(self, epoch: int) -> EpochStats:
        sums = {name: float(value) for name, value in self._sums.items()}
        return EpochStats(sums, self._correct, self._seen, self._curve.tolist())
