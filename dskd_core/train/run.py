"""``dskd train`` end to end: a :class:`~dskd_core.request.TrainRequest` → a dry run, ``--nproc``
processes, or a fitted run; what happened comes back as data (:data:`TrainOutcome`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from dskd_core.config import RunConfig
from dskd_core.device import resolve_device
from dskd_core.errors import UsageError
from dskd_core.request import Notify, TrainRequest
from dskd_core.train.engine import Observer, RunResult, fit
from dskd_core.train.fast import resolve_execution
from dskd_core.train.launch import launch, preflight

#: ``progress(interactive)`` → a context whose value observes the engine's events.
Progress = Callable[[bool], AbstractContextManager[Observer | None]]


@dataclass(frozen=True)
class DryRun:
    """``--dry-run``: the config as ``config.json`` would record it here (execution resolved for the device)."""

    config: RunConfig
    exit_code: int = 0


@dataclass(frozen=True)
class Launched:
    """``--nproc N``: the processes ran; the first failure's exit code, else 0."""

    config: RunConfig
    exit_code: int


@dataclass(frozen=True)
class Trained:
    config: RunConfig
    result: RunResult
    exit_code: int = 0


TrainOutcome = DryRun | Launched | Trained


@contextmanager
def _no_progress(interactive: bool) -> Iterator[Observer | None]:
    del interactive
    yield None


def run_train(
    request: TrainRequest,
    *,
    argv: Sequence[str] = (),
    notify: Notify | None = None,
    progress: Progress = _no_progress,
) -> TrainOutcome:
    """Resolve ``request`` and train it: here, or in ``--nproc`` processes that rerun ``argv`` (the
    command line without ``--nproc``); with ``dry_run`` only resolve. ``notify`` gets the notes of
    the resolution, ``progress`` opens the observer of the training."""
    run_dir = request.resume_dir
    if request.resume and request.overwrite:
        raise UsageError("--resume and --overwrite contradict each other: pass one")
    if request.nproc is not None and request.launched > 1:
        raise UsageError("--nproc starts its own processes: drop it when launching with torchrun")
    cfg = request.run_config(notify) if notify is not None else request.run_config()
    settings = request.settings
    if request.dry_run:
        execution = resolve_execution(cfg, resolve_device(settings.device), cfg.world_size)
        return DryRun(cfg.model_copy(update=execution.as_config()))
    if request.nproc is not None and request.nproc > 1:
        preflight(
            cfg,
            settings,
            nproc=request.nproc,
            resume=request.resume,
            overwrite=request.overwrite,
            run_dir=run_dir,
            allow_weak_teacher=request.allow_weak_teacher,
        )
        return Launched(cfg, launch(request.nproc, argv))
    with progress(settings.progress) as observer:
        result = fit(
            cfg,
            settings,
            resume=request.resume,
            overwrite=request.overwrite,
            run_dir=run_dir,
            observer=observer,
            allow_weak_teacher=request.allow_weak_teacher,
        )
    return Trained(cfg, result)
