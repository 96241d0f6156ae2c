"""``dskd train`` end to end: a :class:`~dskd_core.request.TrainRequest` → a dry run, ``--nproc``
processes, or a fitted run; what happened comes back as data (:data:`TrainOutcome`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from dskd_core.config import RunConfig, Settings
from dskd_core.errors import UsageError
from dskd_core.methods import get_method
from dskd_core.request import Notify, TrainRequest
from dskd_core.runlock import RunLock
from dskd_core.runs.layout import CHECKPOINTS
from dskd_core.runs.store import check_run_dir, finished_result, has_train_state
from dskd_core.train.engine import Observer, RunResult, fit
from dskd_core.train.fast import resolve_execution
from dskd_core.train.launch import check_devices, launch, preflight
from dskd_core.train.setup import check_teacher

#: ``progress(interactive)`` → a context whose value observes the engine's events.
Progress = Callable[[bool], AbstractContextManager[Observer | None]]


@dataclass(frozen=True)
class DryRun:
    """``--dry-run``: the config as ``config.json`` would record it here (execution resolved for the device), and
    the run folder it would write."""

    config: RunConfig
    run_dir: Path | None = None
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


def dry_run(
    cfg: RunConfig,
    settings: Settings,
    *,
    resume: bool = False,
    overwrite: bool = False,
    run_dir: Path | None = None,
    allow_weak_teacher: bool = False,
    notify: Notify | None = None,
) -> DryRun:
    """``--dry-run``: refuse what the run would refuse before it writes anything, with its errors: the device
    (for every process), the teacher checkpoint (from its header), the run folder's state. Nothing is written
    and the dataset is not read (nor downloaded); ``notify`` gets the run folder."""
    device = check_devices(settings.device, cfg.world_size)
    check_teacher(cfg, settings, allow_weak=allow_weak_teacher)
    folder = run_dir or cfg.run_dir(settings.runs_dir)
    resolved = cfg.model_copy(update=resolve_execution(cfg, device, cfg.world_size).as_config())
    if not RunLock.held(folder):  # a live run's folder is the lock's to refuse, as in the run
        # a resumed run keeps the execution it recorded, which the request's open values match
        check_run_dir(cfg if resume else resolved, folder, resume=resume, overwrite=overwrite)
    if notify is not None:
        for note in get_method(cfg.method).config_notes(resolved):  # what the run's start records, said now
            notify(note)
        finished = resume and not overwrite and any(finished_result(c, folder) is not None for c in (cfg, resolved))
        if finished:  # as the run would: its result, nothing trained
            notify(f"dry run, nothing written: {folder} holds this run finished; the run would train nothing")
        else:
            verb = "resume" if resume and has_train_state(folder / CHECKPOINTS) else "train into"
            verb = "replace the run in" if overwrite else verb
            notify(f"dry run, nothing written: the run would {verb} {folder}")
    return DryRun(resolved, folder)


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
        return dry_run(
            cfg,
            settings,
            resume=request.resume,
            overwrite=request.overwrite,
            run_dir=run_dir,
            allow_weak_teacher=request.allow_weak_teacher,
            notify=notify,
        )
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
