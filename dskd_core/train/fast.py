"""The fast path: a training step that stays on the device.

The reference step (:class:`~dskd_core.train.step.EagerStep`) reads the loss back every step (a NaN check, the
accuracy count, the progress line): each read waits for the GPU, and at batch 64 that wait, plus
the launch of several hundred small kernels, is the whole cost. The fast step:

- runs the forward under bf16 autocast (``precision``), losses summed in fp32, on
  channels_last models and batches;
- returns the step's statistics (per-term loss sums, the loss sum, the correct count) as one
  vector computed inside the step and adds it to a device accumulator with one kernel; it is
  read once per epoch (the non-finite guard runs then, before the epoch's state is committed);
- with ``compile``, runs forward + loss through ``torch.compile``. On CUDA the whole step —
  forward, backward, clipping, the fused SGD step — is then recorded once as one CUDA graph and
  replayed: a step costs the host the batch's copy into the graph's inputs, one graph launch
  and the statistics' add, so at batch 64 the GPU, not Python, sets the pace (bench/RESULTS.md
  has the measured host and device times per step). It is recorded after ``GRAPH_WARMUP_STEPS`` ungraphed steps and
  again when the learning rate changes, so per-step schedules and several processes use
  ``whole_step=False``: torch.compile's ``reduce-overhead`` graphs around the forward and the
  backward; so does a run whose step cannot be recorded (a host read inside a method's step:
  the capture fails, the run goes on, and its log says so). Only
  the first batch size seen is compiled: a shorter last batch (50,000 mod 64 = 16 on CIFAR)
  runs eagerly instead of paying a second compilation and a second set of graphs;
- steps a fused SGD on CUDA (one kernel for all parameters).

Warm-up factors are device tensors updated in place each epoch, so a changing factor never
recompiles the step. The reference path stays available (``--no-fast``) for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from dskd_core.train.execution import (
    FAST_EVAL_BATCH,
    Execution,
    deterministic_kernels,
    execution_autocast,
    optimizer_for,
    resolve_execution,
    tf32_mode,
    use_channels_last,
)
from dskd_core.train.step import EpochStats, non_finite_loss

#: Names that lived here in dskd 0.1, kept importable from this module.
__all__ = [
    "FAST_EVAL_BATCH",
    "CapturedStep",
    "EpochStats",
    "Execution",
    "FastStep",
    "deterministic_kernels",
    "execution_autocast",
    "optimizer_for",
    "resolve_execution",
    "tf32_mode",
    "use_channels_last",
]

#: Compiled steps without a graph before the whole step is captured (real training steps).
GRAPH_WARMUP_STEPS = 3

#: ``forward(batch, factors) -> (loss, {term: weighted value}, statistics)``.
Forward = Callable[[dict[str, Tensor], dict[str, Tensor]], tuple[Tensor, dict[str, Tensor], Tensor]]
#: ``(loss, {term: weighted value}, statistics)`` of one step, detached.
StepOutput = tuple[Tensor, dict[str, Tensor], Tensor]


class FastStep:
    """``step(batch)``: forward, weighted loss, backward and optimizer step, with no host read-back.

    ``model`` is called as ``model(batch)`` and returns ``(logits, {term: loss})`` (a
    :class:`~dskd_core.methods.Distiller`, possibly wrapped in DDP). Statistics accumulate on the
    device until :meth:`collect`, in ``slots`` rows (the caller picks a step's row: the trainer
    uses one per tenth of the epoch for its loss curve).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        params: list[nn.Parameter],
        execution: Execution,
        device: torch.device,
        clip_grad: float | None = None,
        slots: int = 1,
        *,
        whole_step: bool | None = None,
        warmup_steps: int = GRAPH_WARMUP_STEPS,
    ) -> None:
        self.model, self.optimizer, self.params = model, optimizer, params
        self.execution, self.device, self.clip_grad, self.slots = execution, device, clip_grad, slots
        cuda = device.type == "cuda"
        # The whole step as one CUDA graph (auto: compiled, on CUDA); otherwise, compiled on CUDA,
        # torch.compile's own CUDA graphs around the forward and the backward.
        whole_step = execution.whole_step if whole_step is None else whole_step
        self.whole_step = execution.compile and cuda if whole_step is None else whole_step and execution.compile
        self._call_graphs = execution.compile and cuda and not self.whole_step
        self.warmup_steps = warmup_steps
        self._factors: dict[str, Tensor] = {}
        self._compiled = self._forward
        if execution.compile:
            mode = "reduce-overhead" if self._call_graphs else None
            self._compiled = torch.compile(self._forward, mode=mode, dynamic=False)
        self._compiled_size: int | None = None  # the batch size the compiled step is for (the first seen)
        self._static: dict[str, Tensor] = {}  # the whole-step graph's input batch
        self._graph: CapturedStep | None = None
        self._graph_key: tuple[object, ...] = ()
        self._warm = 0
        self.captures = 0
        #: Why the whole-step graph is not used, when its capture failed (the steps then use per-call graphs).
        self.fallback: str | None = None
        self.names: list[str] = []
        self.reset()

    @property
    def graphs(self) -> str:
        """Which CUDA graphs run the step: ``whole step``, ``forward and backward`` or ``none``."""
        if self.device.type != "cuda":
            return "none"
        if self.whole_step:
            return "whole step"
        return "forward and backward" if self._call_graphs else "none"

    def set_factors(self, factors: Mapping[str, float]) -> None:
        """This epoch's term multipliers; the tensors keep their identity (no recompilation)."""
        for name, value in factors.items():
            if name in self._factors:
                self._factors[name].fill_(value)
            else:
                self._factors[name] = torch.tensor(float(value), device=self.device)

    #: The fast step does not read its loss back per step.
    last_loss: float | None = None

    def begin_epoch(self, epoch: int, factors: Mapping[str, float]) -> None:
        self.set_factors(factors)
        self.reset()

    def reset(self) -> None:
        # (slots, terms + 2): each term's weighted sum, the loss sum, the correct count; made at the first step.
        self._acc: Tensor | None = None
        self.seen = 0

    def _forward(
        self, batch: dict[str, Tensor], factors: dict[str, Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        with execution_autocast(self.execution, self.device):
            logits, terms = self.model(batch)
        # Losses in fp32 whatever the autocast dtype; a missing factor weighs 1.
        weighted = {
            name: value.float() * factors[name] if name in factors else value.float() for name, value in terms.items()
        }
        stacked = torch.stack(list(weighted.values()))
        loss = stacked.sum()
        correct = (logits.argmax(-1) == batch["target"]).sum()
        n = batch["target"].shape[0]
        stats = torch.cat([stacked.detach() * n, loss.detach()[None] * n, correct[None].float()])
        return loss, {name: value.detach() for name, value in weighted.items()}, stats

    def _train_step(self, batch: dict[str, Tensor], forward: Forward) -> StepOutput:
        """Gradients cleared, forward, backward, clipping, optimizer step: what a whole-step graph records."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, weighted, stats = forward(batch, self._factors)
        loss.backward()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad, foreach=True)
        self.optimizer.step()
        return loss.detach(), weighted, stats

    def step(self, batch: dict[str, Tensor], slot: int = 0) -> Tensor:
        """One optimizer step, its statistics added to row ``slot``.

        Returns the loss tensor, unread (with CUDA graphs it is valid until the next step).
        """
        n = len(batch["target"])
        if self._compiled_size is None:
            self._compiled_size = n
        synchronize = False
        if n != self._compiled_size:  # an epoch's shorter last batch: eager, not a second compilation
            loss, weighted, stats = self._train_step(batch, self._forward)
        elif self.whole_step:  # until a capture fails (then self.fallback says why)
            synchronize = self._warm < self.warmup_steps
            loss, weighted, stats = self._graph_step(batch)
        else:
            if self._call_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            loss, weighted, stats = self._train_step(batch, self._compiled)
        if self._acc is None:
            self.names = list(weighted)
            self._acc = torch.zeros(self.slots, len(stats), dtype=torch.float64, device=self.device)
        self._acc[slot] += stats  # consumed before the next replay overwrites the graph's outputs
        self.seen += n
        if synchronize and self.device.type == "cuda":  # a warm-up step's side-stream tensors are done with
            torch.cuda.synchronize(self.device)
        return loss

    def _graph_step(self, batch: dict[str, Tensor]) -> StepOutput:
        """The step through the whole-step graph: the batch copied into its inputs, one replay.

        The first ``warmup_steps`` steps run compiled without a graph (on a side stream on CUDA):
        compilation, kernel autotuning and the momentum buffers must all exist before a capture.
        A change of learning rate (a Python number inside the optimizer's kernel) or of the loss
        terms captures the step again.
        """
        if not self._static:
            self._static = {key: torch.empty_like(value) for key, value in batch.items()}
        for key, value in batch.items():
            self._static[key].copy_(value)
        if self._warm < self.warmup_steps:
            self._warm += 1
            return on_side_stream(lambda: self._train_step(self._static, self._compiled), self.device)
        graph_key = self._graph_constants()
        if self._graph is None or graph_key != self._graph_key:
            self._graph = None  # the previous graph's memory goes back before the next capture
            try:
                self._graph = CapturedStep(lambda: self._train_step(self._static, self._compiled), self.device)
            except RuntimeError as err:  # e.g. a method that reads a value back to the host inside its step
                return self._fall_back(str(err))
            self._graph_key = graph_key
            self.captures += 1
        return self._graph.replay()

    def _graph_constants(self) -> tuple[object, ...]:
        """What the recorded graph holds as constants: a change records the step again."""
        return (tuple(group["lr"] for group in self.optimizer.param_groups), tuple(self._factors))

    def _fall_back(self, reason: str) -> StepOutput:
        """After a failed capture: torch.compile's graphs around forward and backward (on CUDA) from this step on."""
        first = reason.strip().splitlines()[0][:200] if reason.strip() else "no reason given"
        self.whole_step = False
        if self.device.type == "cuda":
            self._call_graphs = True
            self._compiled = torch.compile(self._forward, mode="reduce-overhead", dynamic=False)
            torch.compiler.cudagraph_mark_step_begin()
        how = "with torch.compile's CUDA graphs around forward and backward" if self._call_graphs else "compiled"
        self.fallback = f"the training step could not be recorded as one CUDA graph ({first}); it runs {how} instead"
        return self._train_step(self._static, self._compiled)

    def collect(self, epoch: int) -> EpochStats:
        """The epoch's statistics; refuses a non-finite loss (one host read)."""
        if self._acc is None:
            return EpochStats({}, 0, 0, [0.0] * self.slots)
        rows = self._acc.cpu()
        totals = rows.sum(0).tolist()
        for name, value in zip(self.names, totals, strict=False):
            if not math.isfinite(value):
                raise non_finite_loss(name, value, epoch, f"in epoch {epoch} (the fast path checks once per epoch)")
        sums = dict(zip(self.names, totals, strict=False))
        return EpochStats(sums, int(totals[-1]), self.seen, rows[:, -2].tolist())


class CapturedStep:
    """A training step recorded once and replayed: a CUDA graph on CUDA.

    Recording runs no kernel; :meth:`replay` does the work and returns the recorded outputs,
    overwritten by the next replay. On other devices (the tests of the logic around it) the
    step is simply called again at each replay.
    """

    def __init__(self, body: Callable[[], StepOutput], device: torch.device) -> None:
        self._body = body
        self._graph: torch.cuda.CUDAGraph | None = None
        if device.type == "cuda":
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._out = body()
            self._graph = graph

    def replay(self) -> StepOutput:
        if self._graph is None:
            return self._body()
        self._graph.replay()
        return self._out


def on_side_stream(body: Callable[[], StepOutput], device: torch.device) -> StepOutput:
    """Run ``body`` on a side stream ordered after and before the current one (CUDA's graph warm-up)."""
    if device.type != "cuda":
        return body()
    current = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        out = body()
    current.wait_stream(side)
    return out
