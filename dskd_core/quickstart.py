"""The offline quickstart: teacher, KD student and DSKD student on the embedded digits data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dskd_core.config import RunConfig, Settings, resolve_run_config
from dskd_core.train.engine import Observer, RunResult, fit

QUICKSTART_TEACHER = "resnet20"
QUICKSTART_STUDENT = "resnet8"
QUICKSTART_SCALES = [1, 2]


@dataclass(frozen=True)
class QuickstartRun:
    label: str
    config: RunConfig
    result: RunResult


def quickstart_configs(
    *, teacher: str, student: str, epochs: int | None, seed: int, teacher_run: Path | None = None
) -> list[tuple[str, RunConfig]]:
    """The three runs: the teacher from scratch, KD, and KD + SDD + standardization (DSKD)."""
    flags = {"epochs": epochs, "seed": seed}
    vanilla = resolve_run_config(method="vanilla", student=teacher, dataset="digits", flags=flags)
    distill = {**flags, "teacher_ckpt": str(teacher_run) if teacher_run else None}
    kd_plain = resolve_run_config(method="kd", teacher=teacher, student=student, dataset="digits", flags=distill)
    dskd = resolve_run_config(
        method="kd",
        teacher=teacher,
        student=student,
        dataset="digits",
        flags={**distill, "scales": QUICKSTART_SCALES, "stand": True},
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
) -> list[QuickstartRun]:
    """Train the three runs in turn (each resumes if it already exists) and return them."""
    (label, vanilla), *_ = quickstart_configs(teacher=teacher, student=student, epochs=epochs, seed=seed)
    runs = [QuickstartRun(label, vanilla, fit(vanilla, settings, resume=True, observer=observer))]
    teacher_dir = runs[0].result.run_dir
    for label, cfg in quickstart_configs(
        teacher=teacher, student=student, epochs=epochs, seed=seed, teacher_run=teacher_dir
    )[1:]:
        runs.append(QuickstartRun(label, cfg, fit(cfg, settings, resume=True, observer=observer)))
    return runs
