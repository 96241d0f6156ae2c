"""The torch device a run uses, from the ``--device`` setting, and its CPU threads (a leaf: imports nothing from
dskd but errors)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from dskd_core.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when visible, else CPU; anything else must be a torch device string."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"invalid --device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asked for, but no CUDA device is visible: use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= (count := torch.cuda.device_count()):
        gpus = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise UsageError(
            f"--device {name} asked for, but {count} CUDA device{'s are' if count > 1 else ' is'} "
            f"visible ({gpus}): pass one of them, or --device cuda"
        )
    return device


def available_cores() -> int:
    """The CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota (a container's)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_threads() -> int | None:
    """``--threads``'s default: torch's own pool size (the physical cores) capped by the cores this process may
    use (a container's quota, an affinity mask); None where ``OMP_NUM_THREADS`` decides (``--nproc`` gives each
    process its share that way, torchrun one thread)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return min(torch.get_num_threads(), available_cores())


def apply_threads(threads: int | None) -> int:
    """Size torch's CPU thread pool to ``threads`` (``--threads``); None leaves it as it is (a library caller's
    own ``torch.set_num_threads`` stands). Returns the size."""
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_competition(threads: int | None) -> str | None:
    """A note when other processes already keep this machine's cores busy (the 1-minute load average),
    so that a CPU run's threads will share them; None when the cores are free or the load is unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cores = available_cores()
    wanted = threads or default_threads() or torch.get_num_threads()
    if load < max(1.0, 0.25 * cores) or load + wanted <= cores + 0.5:  # a desktop's background load is no news
        return None
    return (
        f"the CPUs are busy (load {load:.1f} over the last minute on {cores} core{'s' if cores > 1 else ''}): "
        f"this run's {wanted} thread{'s' if wanted > 1 else ''} will share them and run slower; "
        "--threads N sets how many it uses"
    )
