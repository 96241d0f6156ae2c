"""``dskd train … --nproc N``: check once, then start N processes on this node as ``torchrun`` would.

The processes run ``python -m dskd_cli <the same arguments without --nproc>`` under PyTorch's
elastic launcher (the machinery behind ``torchrun --standalone``: a rendezvous on a free local
port, ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` per process). Before that, what every process would
refuse (the device, the dataset layout, the teacher checkpoint, the run folder's state) is
checked here, so bad input is one line and no process starts. Several nodes: run ``torchrun``
with its rendezvous flags on each node (README "ImageNet and several GPUs").
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import torch

from dskd_core.config import RunConfig, Settings
from dskd_core.device import available_cores, resolve_device
from dskd_core.errors import UsageError
from dskd_core.resolve import check_run_config
from dskd_core.runlock import LOCK_NAME, RunLock
from dskd_core.runs.store import check_run_dir
from dskd_core.train.distributed import launched_world_size, process_device
from dskd_core.train.setup import load_teacher, open_dataset

#: Exit code when the launcher itself is interrupted (as the CLI's Ctrl-C).
INTERRUPTED = 130


def preflight(
    cfg: RunConfig,
    settings: Settings,
    *,
    nproc: int,
    resume: bool = False,
    overwrite: bool = False,
    run_dir: Path | None = None,
    allow_weak_teacher: bool = False,
) -> None:
    """Refuse, once and before any process starts, what each of ``nproc`` processes would refuse."""
    if launched_world_size() > 1:
        raise UsageError("--nproc starts its own processes: drop it when launching with torchrun")
    if cfg.world_size != nproc:
        raise UsageError(
            f"the run is set up for {cfg.world_size} processes, not {nproc}: pass --nproc {cfg.world_size}, or start "
            "a new run"
        )
    check_devices(settings.device, nproc)
    check_run_config(cfg)
    data = open_dataset(cfg.dataset, settings, cfg.num_classes)
    load_teacher(cfg, settings, data.spec.num_classes, torch.device("cpu"), allow_weak=allow_weak_teacher)
    folder = run_dir or cfg.run_dir(settings.runs_dir)
    check_run_dir(cfg, folder, resume=resume, overwrite=overwrite)
    if (folder / LOCK_NAME).exists():
        with RunLock(folder):  # refuses while another live process trains this run
            pass


def check_devices(setting: str, nproc: int) -> torch.device:
    """The ``--device`` of a run of ``nproc`` processes, refused when one of them would have no GPU."""
    device = resolve_device(setting)
    if device.type == "cuda" and nproc > 1:
        process_device(setting, 0)
        visible = torch.cuda.device_count()
        if visible < nproc:
            raise UsageError(
                f"--nproc {nproc} needs a GPU per process but {visible} are visible: pass --nproc {visible}, or "
                "--device cpu"
            )
    return device


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m dskd_cli *argv`` in ``nproc`` local processes; the first failure's exit code, else 0.

    Each process gets ``OMP_NUM_THREADS`` = cores / ``nproc`` unless it is set (torchrun sets 1).
    The launcher's own failure report (a traceback) is not printed: rank 0 has printed the error.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise UsageError(f"--nproc {nproc}: pass a process count of at least 1")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"dskd-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        elastic_launch(config, sys.executable)("-m", "dskd_cli", *argv)
    except ChildFailedError as err:
        _, failure = err.get_first_failure()
        code = int(failure.exitcode)
        return code if code > 0 else 128 - code if code < 0 else 1
    except (SignalException, KeyboardInterrupt):
        return INTERRUPTED
    finally:  # the launcher installs its own; a library call leaves the caller's in place
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0
