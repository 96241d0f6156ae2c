"""The offline quickstart: teacher, KD student and DSKD student on the embedded digits data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dskd_core.config import RunConfig, Settings
from dskd_core.errors import UsageError
from dskd_core.resolve import resolve_run_config
from dskd_core.runs.records import NoteEvent
from dskd_core.runs.store import RunDir, another_config
from dskd_core.sweep.run import inspect_for
from dskd_core.train.engine import Observer, RunResult, fit

QUICKSTART_TEACHER = "resnet20"
QUICKSTART_STUDENT = "resnet8"
QUICKSTART_SCALES = [1, 2]


@dataclass(frozen=True)
class QuickstartRun:
    label: str
    config: RunConfig
    result: RunResult
    reused: bool = False  # a finished run of this config was already there (nothing trained or written)


def quickstart_configs(
    *,
    teacher: str,
    student: str,
    epochs: int | None,
    seed: int,
    teacher_run: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[tuple[str, RunConfig]]:
    """The three runs: the teacher from scratch, KD, and KD + SDD + standardization (DSKD).

    ``overrides`` are ``--set``-style run-config values applied to all three (e.g. ``epoch_passes``).
    """
    flags = {"epochs": epochs, "seed": seed}
    extra = dict(overrides or {})
    vanilla = resolve_run_config(method="vanilla", student=teacher, dataset="digits", flags=flags, overrides=extra)
    distill = {**flags, "teacher_ckpt": str(teacher_run) if teacher_run else None}
    kd_plain = resolve_run_config(
        method="kd", teacher=teacher, student=student, dataset="digits", flags=distill, overrides=extra
    )
    dskd = resolve_run_config(
        method="kd",
        teacher=teacher,
        student=student,
        dataset="digits",
        flags={**distill, "scales": QUICKSTART_SCALES, "stand": True},
        overrides=extra,
    )
    return [("teacher", vanilla), ("KD", kd_plain), ("DSKD", dskd)]


def run_quickstart(
    settings: Settings,
    *,
    teacher: str = QUICKSTART_TEACHER,
    student: str = QUICKSTART_STUDENT,
    epochs: int | None = None,
    seed: int = 0,
    observer: Observer | None = None,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> list[QuickstartRun]:
    """Train the three runs in turn and return them.

    A finished run of the same config is reused as it is (read, nothing written); an unfinished
    one resumes. A run folder that holds another config is refused, unless ``overwrite``.
    """
    (label, vanilla), *_ = quickstart_configs(
        teacher=teacher, student=student, epochs=epochs, seed=seed, overrides=overrides
    )
    runs = [_run(label, vanilla, settings, observer, overwrite)]
    teacher_dir = runs[0].result.run_dir
    for label, cfg in quickstart_configs(
        teacher=teacher, student=student, epochs=epochs, seed=seed, teacher_run=teacher_dir, overrides=overrides
    )[1:]:
        runs.append(_run(label, cfg, settings, observer, overwrite))
    return runs


def _run(label: str, cfg: RunConfig, settings: Settings, observer: Observer | None, overwrite: bool) -> QuickstartRun:
    run_dir = cfg.run_dir(settings.runs_dir)
    folder = inspect_for(cfg, run_dir, settings.device)
    status = folder.plan(cfg.epochs)
    if status == "done":  # read, never written: the folder stays byte-identical
        summary = RunDir(run_dir).summary_json()
        if observer is not None:
            best = f" (best top-1 {folder.best_acc:.2f})" if folder.best_acc is not None else ""
            observer(NoteEvent(f"reusing the finished {label} run {run_dir}{best}").to_json())
        return QuickstartRun(label, cfg, RunResult(run_dir, summary), reused=True)
    if status == "conflict" and not overwrite:
        raise UsageError(
            f"{another_config(run_dir, folder.conflict_keys)}: pass another --runs-dir or --seed to run the "
            "quickstart beside it"
        )
    result = fit(cfg, settings, resume=status == "resume", overwrite=status == "conflict", observer=observer)
    return QuickstartRun(label, cfg, result)
