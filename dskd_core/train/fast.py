"""The fast path: a training step that stays on the device (design §4).

The reference step (:meth:`Trainer.step`) reads the loss back every step (a NaN check, the
accuracy count, the progress line): each read waits for the GPU, and at batch 64 that wait, plus
the launch of several hundred small kernels, is the whole cost. The fast step:

- runs the forward under bf16 autocast (``precision``), losses summed in fp32, on
  channels_last models and batches;
- keeps per-term loss sums and the correct count as device tensors, read once per epoch
  (the non-finite guard runs then, before the epoch's state is committed);
- with ``compile``, runs forward + loss through ``torch.compile``; on CUDA in
  ``reduce-overhead`` mode, so the forward and the backward replay as CUDA graphs;
- steps a fused SGD on CUDA (one kernel for all parameters).

Warm-up factors are device tensors updated in place each epoch, so a changing factor never
recompiles the step. The reference path stays available (``--no-fast``) for comparison.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dskd_core.config import RunConfig
from dskd_core.errors import NonFiniteLoss, UsageError

#: The fast path evaluates in batches of at least this size (evaluation is batch-size independent).
FAST_EVAL_BATCH = 1024


@dataclass(frozen=True)
class Execution:
    """How a run's steps execute, resolved for a device from the config's ``fast``/``precision``/``compile``."""

    fast: bool = False
    precision: str = "fp32"  # "bf16" | "fp32"
    compile: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    def as_config(self) -> dict[str, object]:
        return {"fast": self.fast, "precision": self.precision, "compile": self.compile}


def resolve_execution(cfg: RunConfig, device: torch.device, world_size: int = 1) -> Execution:
    """``auto`` values decided by the device: the fast path, bf16 and compilation on CUDA.

    Compilation stays off by default with several processes (CUDA graphs and DDP's gradient
    hooks do not mix); asking for it explicitly is allowed.
    """
    cuda = device.type == "cuda"
    fast = cfg.fast if cfg.fast is not None else cuda
    if not fast:
        if cfg.precision == "bf16" or cfg.compile:
            raise UsageError("--precision bf16 and --compile belong to the fast path: add --fast or drop them")
        return Execution()
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "fp32")
    compiled = cfg.compile if cfg.compile is not None else (cuda and world_size == 1)
    return Execution(True, precision, compiled)


def use_channels_last(module: nn.Module) -> None:
    """Convolution weights in NHWC, the layout tensor cores read without transposes."""
    module.to(memory_format=torch.channels_last)


class FastStep:
    """``step(batch)``: forward, weighted loss, backward and optimizer step, with no host read-back.

    ``model`` is called as ``model(batch, epoch)`` and returns ``(logits, {term: loss})`` (a
    :class:`~dskd_core.methods.Distiller`, possibly wrapped in DDP). Statistics accumulate on the
    device until :meth:`collect`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        params: list[nn.Parameter],
        execution: Execution,
        device: torch.device,
        clip_grad: float | None = None,
    ) -> None:
        self.model, self.optimizer, self.params = model, optimizer, params
        self.execution, self.device, self.clip_grad = execution, device, clip_grad
        self._factors: dict[str, Tensor] = {}
        self._cudagraphs = execution.compile and device.type == "cuda"
        forward = self._forward
        if execution.compile:
            mode = "reduce-overhead" if self._cudagraphs else None
            forward = torch.compile(self._forward, mode=mode, dynamic=False)
        self._compiled = forward
        self.reset()

    def set_factors(self, factors: Mapping[str, float]) -> None:
        """This epoch's term multipliers; the tensors keep their identity (no recompilation)."""
        for name, value in factors.items():
            if name in self._factors:
                self._factors[name].fill_(value)
            else:
                self._factors[name] = torch.tensor(float(value), device=self.device)

    def reset(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.correct = torch.zeros((), dtype=torch.long, device=self.device)
        self.seen = 0

    def _forward(
        self, batch: dict[str, Tensor], factors: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        with execution_autocast(self.execution, self.device):
            logits, terms = self.model(batch, 0)
        # Losses in fp32 whatever the autocast dtype; a missing factor weighs 1.
        weighted = {
            name: value.float() * factors[name] if name in factors else value.float() for name, value in terms.items()
        }
        loss = torch.stack(list(weighted.values())).sum()
        correct = (logits.argmax(-1) == batch["target"]).sum()
        return loss, {name: value.detach() for name, value in weighted.items()}, correct

    def step(self, batch: dict[str, Tensor]) -> Tensor:
        """One optimizer step; returns the loss tensor (reading it is the caller's choice)."""
        if self._cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        loss, weighted, correct = self._compiled(batch, self._factors)
        n = len(batch["target"])
        # Consumed before the next replay overwrites the graph's outputs.
        for name, value in weighted.items():
            total = value * n
            self.sums[name] = self.sums[name] + total if name in self.sums else total
        self.correct = self.correct + correct
        self.seen += n
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad, foreach=True)
        self.optimizer.step()
        return loss.detach()

    def collect(self, epoch: int) -> tuple[dict[str, Tensor], Tensor, int]:
        """The epoch's ``(loss sums, correct, seen)``; refuses a non-finite loss (one host read)."""
        if self.sums:
            finite = torch.stack([torch.isfinite(v) for v in self.sums.values()]).tolist()
            for (name, value), ok in zip(self.sums.items(), finite, strict=True):
                if not ok:
                    kept = f"the checkpoints of epoch {epoch - 1} are intact" if epoch > 1 else "no epoch had completed"
                    raise NonFiniteLoss(
                        f"loss term {name} is {float(value)} in epoch {epoch} (the fast path checks once per "
                        f"epoch): lower --lr or check the data; {kept}"
                    )
        return self.sums, self.correct, self.seen


def optimizer_for(
    params: list[nn.Parameter], cfg: RunConfig, execution: Execution, device: torch.device
) -> torch.optim.SGD:
    """The run's SGD; fused (one kernel for every parameter) on the CUDA fast path."""
    fused = True if execution.fast and device.type == "cuda" else None
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)


def execution_autocast(execution: Execution, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """The fast path's autocast for training steps and evaluation (a no-op on the reference path)."""
    dtype = execution.autocast_dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
