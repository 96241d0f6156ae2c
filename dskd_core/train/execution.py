"""How a run's steps execute: path, precision and compilation resolved for a device, and the
settings around a run that follow from them (TF32, deterministic kernels, channels_last, the SGD).

Shared by the reference and the fast step (:mod:`dskd_core.train.step`, :mod:`dskd_core.train.fast`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from dskd_core.config import RunConfig
from dskd_core.errors import UsageError

#: The fast path evaluates in batches of at least this size (evaluation is batch-size independent).
FAST_EVAL_BATCH = 1024


@dataclass(frozen=True)
class Execution:
    """How a run's steps execute, resolved for a device from the config's ``fast``/``precision``/``compile``."""

    fast: bool = False
    precision: str = "fp32"  # "tf32" | "fp32" | "bf16"
    compile: bool = False
    #: Whether the fast step may record the whole step as one CUDA graph: None = when compiled on CUDA;
    #: False where the LR changes within epochs (a per-step schedule) or several processes train.
    whole_step: bool | None = field(default=None, compare=False)  # follows from the config, not a choice

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def tf32(self) -> bool:
        """Whether CUDA convolutions and matmuls of fp32 tensors may use TF32 (all but strict ``fp32``)."""
        return self.precision != "fp32"

    def as_config(self) -> dict[str, object]:
        return {"fast": self.fast, "precision": self.precision, "compile": self.compile}


def resolve_execution(cfg: RunConfig, device: torch.device, world_size: int = 1) -> Execution:
    """``auto`` values decided by the device: on CUDA the fast path, compilation and TF32.

    The default precision is the reference's: fp32 with TF32 convolutions and matmuls on CUDA
    (an RTX 3090 with torch 1.9, where both were on), plain fp32 elsewhere (TF32 is a CUDA
    mode: on other devices ``tf32`` runs, and is recorded, as ``fp32``). bf16 autocast is the
    fast path's opt-in deviation. Compilation stays off by default with several processes
    (CUDA graphs and DDP's gradient hooks do not mix); asking for it explicitly is allowed.
    """
    cuda = device.type == "cuda"
    fast = cfg.fast if cfg.fast is not None else cuda
    precision = cfg.precision if cfg.precision != "auto" else "tf32"
    if precision == "tf32" and not cuda:
        precision = "fp32"
    if not fast:
        if precision == "bf16" or cfg.compile:
            raise UsageError("--precision bf16 and --compile belong to the fast path: add --fast or drop them")
        return Execution(False, precision, False)
    compiled = cfg.compile if cfg.compile is not None else (cuda and world_size == 1)
    return Execution(True, precision, compiled, whole_step_rule(cfg, world_size))


def whole_step_rule(cfg: RunConfig, world_size: int) -> bool | None:
    """One CUDA graph for the whole step only while the LR is constant for epochs (it is recorded in the
    graph) and one process trains (DDP's gradient hooks are not recorded): None (allowed) or False."""
    return None if cfg.lr_schedule == "step" and world_size == 1 else False


@contextlib.contextmanager
def tf32_mode(enabled: bool) -> Iterator[None]:
    """TF32 on or off for CUDA fp32 convolutions and matmuls while the block runs (restored after).

    Set through ``torch.set_float32_matmul_precision`` and ``cudnn.allow_tf32``, which keep
    torch's older and newer views of the setting in step: torch ≥ 2.9 raises when code (inductor's
    autotuning among it) reads one view after only the other (``fp32_precision``) was set.
    No effect off CUDA.
    """
    before = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]


def use_channels_last(module: nn.Module) -> None:
    """Convolution weights in NHWC, the layout tensor cores read without transposes."""
    module.to(memory_format=torch.channels_last)


@contextlib.contextmanager
def deterministic_kernels(enabled: bool, autotune: bool = False) -> Iterator[None]:
    """Deterministic algorithms for the duration of a run (restored afterwards).

    Otherwise, with ``autotune`` (the fast path), cuDNN times its convolution algorithms once
    per shape and keeps the fastest, as the published CIFAR trainers do.
    """
    before = torch.are_deterministic_algorithms_enabled()
    cudnn_before = torch.backends.cudnn.benchmark
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif autotune:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = cudnn_before


def optimizer_for(
    params: list[nn.Parameter], cfg: RunConfig, execution: Execution, device: torch.device
) -> torch.optim.SGD:
    """The run's SGD; fused (one kernel for every parameter) on the CUDA fast path."""
    fused = True if execution.fast and device.type == "cuda" else None
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)


def execution_autocast(execution: Execution, device: torch.device) -> contextlib.AbstractContextManager[None]:
    """The fast path's autocast for training steps (a no-op but for bf16); evaluation never takes it."""
    dtype = execution.autocast_dtype
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
