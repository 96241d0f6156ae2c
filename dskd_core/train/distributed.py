"""Several processes, one run: DistributedDataParallel under ``torchrun`` (or ``dskd train --nproc``).

The launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``)
says how many processes train and which one this is. The backend follows the device: NCCL on
CUDA, Gloo on CPU. Each process reads its own share of every epoch (``data/shard.py``), the
distiller's trainable modules are wrapped in DDP so gradients are averaged (the frozen teacher
is left out), and accuracies are reduced by summing correct and sample counts over processes.
Only rank 0 touches the run folder (lock, config, log, checkpoints, summary) and reports
progress; what it decides alone (the folder's state, the lock) is handed to the others, so an
error there stops every process with the same exit code.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dskd_core.data.shard import Shard
from dskd_core.device import resolve_device
from dskd_core.errors import DskdError, UsageError
from dskd_core.runlock import RunLock
from dskd_core.train.syncbn import convert_sync_batchnorm

T = TypeVar("T")


class PeerError(DskdError):
    """Rank 0 failed at a step only it performs; this process stops with the same exit code.

    ``quiet``: rank 0 has reported the error already, so the CLI does not print it again.
    """

    quiet = True

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def launched_world_size() -> int:
    """The process count a launcher (torchrun, ``--nproc``) set in ``WORLD_SIZE``; 1 without one."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise UsageError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a process count: launch with torchrun"
        ) from None


def launched_rank() -> int:
    """This process's global rank under a launcher; 0 without one."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def process_device(setting: str, local_rank: int) -> torch.device:
    """The device of process ``local_rank`` on its node: ``cuda:LOCAL_RANK`` for CUDA, else the CPU."""
    device = resolve_device(setting)
    if device.type != "cuda":
        return device
    if setting not in ("auto", "cuda"):
        raise UsageError(
            f"--device {setting} names one GPU, but each process takes cuda:LOCAL_RANK: pass --device cuda or auto"
        )
    count = torch.cuda.device_count()
    if count == 1:  # one GPU visible per process (CUDA_VISIBLE_DEVICES set per rank, as some schedulers do)
        return torch.device("cuda", 0)
    if local_rank >= count:
        raise UsageError(
            f"process {local_rank} of this node has no GPU ({count} visible): launch at most {count} processes "
            "per node, or pass --device cpu"
        )
    return torch.device("cuda", local_rank)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size, its device and the collective backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.world_size, self.local_world_size)

    def describe(self, batch_size: int) -> dict[str, Any]:
        """Start-event fields: processes, backend and the global batch (empty for one process)."""
        if not self.enabled:
            return {}
        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "global_batch_size": batch_size * self.world_size,
        }

    def all_sum(self, values: Sequence[float | int | Tensor]) -> list[float]:
        """Each value summed over every process (float64), in order; the values themselves on one process."""
        if not self.enabled:
            return [float(v) for v in values]
        flat = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(self.device).reshape(()) for v in values])
        dist.all_reduce(flat)
        return flat.tolist()

    def all_sum_dict(self, values: Mapping[str, float | int | Tensor]) -> dict[str, float]:
        keys = list(values)
        return dict(zip(keys, self.all_sum([values[k] for k in keys]), strict=True))

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm running statistics) before an evaluation."""
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only; every process returns its result or raises its error.

        The result must be picklable (it is broadcast). Acts as a barrier.
        """
        if not self.enabled:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                value = fn()
            except BaseException as err:
                code = err.exit_code if isinstance(err, DskdError) else 130 if isinstance(err, KeyboardInterrupt) else 1
                box[0] = ("error", code, f"rank 0 failed: {str(err) or type(err).__name__}")
                dist.broadcast_object_list(box, src=0)
                raise
            box[0] = ("ok", value)
            dist.broadcast_object_list(box, src=0)
            return value
        dist.broadcast_object_list(box, src=0)
        outcome = box[0]
        if outcome[0] == "error":
            raise PeerError(outcome[2], outcome[1])
        result: T = outcome[1]
        return result

    def wrap(self, distiller: nn.Module) -> nn.Module:
        """The module the training step calls: ``distiller`` in DDP (teacher excluded), or as it is."""
        if not self.enabled:
            return distiller
        from torch.nn.parallel import DistributedDataParallel as DDP

        frozen = [name for name, _ in distiller.named_parameters() if name.startswith("teacher.")]
        frozen += [name for name, _ in distiller.named_buffers() if name.startswith("teacher.")]
        # The teacher is identical everywhere and never trained: no broadcasts, no gradient buckets for it.
        DDP._set_params_and_buffers_to_ignore_for_model(distiller, frozen)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(distiller, device_ids=device_ids)


def prepare_distiller(distiller: nn.Module, ctx: DistContext, sync_bn: bool) -> None:
    """With ``sync_bn`` on several processes, synchronise the BatchNorms of everything but the teacher."""
    if not (sync_bn and ctx.enabled):
        return
    for name, child in list(distiller.named_children()):
        if name != "teacher":
            distiller.add_module(name, convert_sync_batchnorm(child, ctx.device))


def setup(device: str, world_size: int) -> DistContext:
    """This process's context; under a launcher, the process group (initialised once per process).

    ``world_size`` is the run config's: a launch with another count is refused, so a run's
    batch (per process × processes) and LR scaling are what its config records.
    """
    launched = launched_world_size()
    if launched != world_size:
        raise UsageError(
            f"the run is set up for {world_size} process{'es' if world_size > 1 else ''} but {launched} were "
            f"launched: use {'--nproc ' + str(world_size) if world_size > 1 else 'no launcher'} (torchrun "
            f"--nproc_per_node), or start a new run"
        )
    if launched == 1:
        return DistContext(device=resolve_device(device))
    rank = launched_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", launched))
    here = process_device(device, local_rank)
    if here.type == "cuda":
        torch.cuda.set_device(here)
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            raise UsageError("WORLD_SIZE is set but MASTER_ADDR is not: launch with torchrun or dskd train --nproc")
        dist.init_process_group("nccl" if here.type == "cuda" else "gloo")
        atexit.register(_teardown)
    return DistContext(rank, launched, local_rank, local_world, here, str(dist.get_backend()))


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def main_lock(ctx: DistContext, run_dir: Path) -> Iterator[None]:
    """The run folder's lock, held by rank 0 for the whole run; its failure stops every process."""
    lock = RunLock(run_dir)

    def acquire() -> None:
        lock.__enter__()

    ctx.on_main(acquire)
    try:
        yield
    finally:
        if ctx.is_main:
            lock.__exit__(None, None, None)
