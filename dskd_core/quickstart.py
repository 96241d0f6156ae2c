"""The offline quickstart: does distillation help a student that has few labels, and by more than seed noise?

On the embedded digits: a teacher trained from scratch on the whole training split, then a student
that sees only ``per_class`` labelled images of each class, trained three ways for each seed: from
scratch, by KD, and by DSKD (KD + SDD + logit standardization). The KD and DSKD students of a seed
train in lockstep (one data stream, one teacher forward). Its table is ``dskd report`` of its own
runs folder (``<runs>/quickstart``), so that command regenerates it: mean ± std over seeds, KD
against the student from scratch and DSKD against KD as paired differences with their 95% interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dskd_core.config import RunConfig, Settings
from dskd_core.data import get_dataset_spec
from dskd_core.errors import DskdError, UsageError
from dskd_core.report import Report, build_report
from dskd_core.report.deltas import Delta
from dskd_core.resolve import resolve_run_config
from dskd_core.runs.records import NoteEvent
from dskd_core.runs.store import RunDir, RunFolder, another_config
from dskd_core.sweep.run import inspect_for, run_sweep
from dskd_core.train.engine import Observer, RunResult, fit

QUICKSTART_TEACHER = "resnet20"
QUICKSTART_STUDENT = "resnet8"
QUICKSTART_SCALES = [1, 2]
QUICKSTART_SEEDS = (0, 1, 2)
#: Labelled images per class the students see (of ~144 per class): the few-label setting, where a teacher's
#: soft targets carry what the labels do not.
QUICKSTART_PER_CLASS = 10
#: Steps of a student's epoch at the recipe's batch of 64: its passes over its few images are chosen to give
#: these (the digits recipe's 8 passes over the whole split give 180).
QUICKSTART_STUDENT_STEPS = 200


def student_passes(per_class: int) -> int:
    """Passes per epoch over ``per_class`` images of each digit that make :data:`QUICKSTART_STUDENT_STEPS` steps
    of the recipe's batch."""
    spec = get_dataset_spec("digits")
    batch = int(spec.recipe.get("batch_size", 64))
    return max(1, round(QUICKSTART_STUDENT_STEPS * batch / (per_class * spec.num_classes)))


#: The quickstart's runs folder, under the runs dir: its own, so ``dskd report`` of it is the quickstart's table.
QUICKSTART_DIR = "quickstart"


@dataclass(frozen=True)
class QuickstartRun:
    label: str  # teacher, scratch, KD, DSKD
    config: RunConfig
    result: RunResult
    reused: bool = False  # a finished run of this config was already there (nothing trained or written)


@dataclass(frozen=True)
class QuickstartResult:
    runs: list[QuickstartRun]  # the teacher, then per seed: scratch, KD, DSKD
    runs_dir: Path  # the quickstart's own runs folder (``dskd report`` of it regenerates the table)
    report: Report
    per_class: int | None  # labelled images per class the students saw (None: every image)
    seeds: tuple[int, ...]

    def delta(self, label: str) -> Delta | None:
        """``KD`` against the student from scratch, or ``DSKD`` against KD."""
        cfg = next(r.config for r in self.runs if r.label == label)
        return next((d for d in self.report.deltas if d.other.variant == cfg.variant and d.other.teacher), None)


def quickstart_configs(
    *,
    teacher: str,
    student: str,
    epochs: int | None,
    seeds: Sequence[int],
    per_class: int | None = QUICKSTART_PER_CLASS,
    teacher_run: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[tuple[str, RunConfig]]:
    """The runs: the teacher from scratch on every image, then per seed the student from scratch, by KD and
    by DSKD on ``per_class`` labelled images per class (None: every image, the digits recipe's passes).

    ``overrides`` are ``--set``-style run-config values applied to every run.
    """
    extra = dict(overrides or {})
    out = [
        (
            "teacher",
            resolve_run_config(
                method="vanilla", student=teacher, dataset="digits", flags={"epochs": epochs}, overrides=extra
            ),
        )
    ]
    few = {} if per_class is None else {"train_per_class": per_class, "epoch_passes": student_passes(per_class)}
    students = {**few, **extra}
    ckpt = str(teacher_run) if teacher_run else None
    for seed in seeds:
        flags = {"epochs": epochs, "seed": seed}
        distill = {**flags, "teacher_ckpt": ckpt}
        dskd = {**distill, "scales": QUICKSTART_SCALES, "stand": True}
        out += [
            (
                "scratch",
                resolve_run_config(
                    method="vanilla", student=student, dataset="digits", flags=flags, overrides=students
                ),
            ),
            (
                "KD",
                resolve_run_config(
                    method="kd", teacher=teacher, student=student, dataset="digits", flags=distill, overrides=students
                ),
            ),
            (
                "DSKD",
                resolve_run_config(
                    method="kd", teacher=teacher, student=student, dataset="digits", flags=dskd, overrides=students
                ),
            ),
        ]
    return out


def run_quickstart(
    settings: Settings,
    *,
    teacher: str = QUICKSTART_TEACHER,
    student: str = QUICKSTART_STUDENT,
    epochs: int | None = None,
    seeds: Sequence[int] = QUICKSTART_SEEDS,
    per_class: int | None = QUICKSTART_PER_CLASS,
    observer: Observer | None = None,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> QuickstartResult:
    """Train the teacher, then the students (KD and DSKD of a seed in lockstep), under ``<runs>/quickstart``.

    A finished run of the same config is reused as it is (read, nothing written); an unfinished one resumes.
    A run folder that holds another config is refused, unless ``overwrite``.
    """
    if not seeds:
        raise UsageError("--seeds is empty: pass seeds like 0,1,2")
    if teacher == student:  # the teacher's folder would be the student-from-scratch's of seed 0
        raise UsageError(f"--teacher and --student are both {student}: pass a larger --teacher (default resnet20)")
    here = settings.model_copy(update={"runs_dir": settings.runs_dir / QUICKSTART_DIR})
    (label, vanilla), *_ = quickstart_configs(
        teacher=teacher, student=student, epochs=epochs, seeds=seeds, per_class=per_class, overrides=overrides
    )
    runs = [_teacher_run(label, vanilla, here, observer, overwrite)]
    students = quickstart_configs(
        teacher=teacher,
        student=student,
        epochs=epochs,
        seeds=seeds,
        per_class=per_class,
        teacher_run=runs[0].result.run_dir,
        overrides=overrides,
    )[1:]
    cfgs = [cfg for _, cfg in students]
    _refuse_conflicts(cfgs, here, overwrite)
    result = run_sweep(cfgs, here, lockstep=True, observer=observer, overwrite=overwrite)
    for (label, cfg), row in zip(students, result.rows, strict=True):
        if row.status == "failed":
            raise DskdError(f"the quickstart's {label} run {row.run_dir} failed: {row.error}")
        if row.status == "done" and observer is not None:
            observer(NoteEvent(f"reusing the finished {label} run {row.run_dir}").to_json())
        runs.append(QuickstartRun(label, cfg, RunResult(row.run_dir, row.summary), reused=row.status == "done"))
    return QuickstartResult(runs, here.runs_dir, build_report([here.runs_dir], "best"), per_class, tuple(seeds))


def _refuse_conflicts(cfgs: Sequence[RunConfig], settings: Settings, overwrite: bool) -> None:
    """The sweep's refusal of a folder holding another run, worded with the quickstart's own options."""
    if overwrite:
        return
    for cfg in cfgs:
        folder = inspect_for(cfg, cfg.run_dir(settings.runs_dir), settings.device)
        if folder.plan(cfg.epochs) == "conflict":
            raise _conflict(folder)


def _conflict(folder: RunFolder) -> UsageError:
    return UsageError(
        f"{another_config(folder.path, folder.conflict_keys)}: pass another --runs-dir to run the quickstart beside it"
    )


def _teacher_run(
    label: str, cfg: RunConfig, settings: Settings, observer: Observer | None, overwrite: bool
) -> QuickstartRun:
    run_dir = cfg.run_dir(settings.runs_dir)
    folder = inspect_for(cfg, run_dir, settings.device)
    status = folder.plan(cfg.epochs)
    if status == "done":  # read, never written: the folder stays byte-identical
        summary = RunDir(run_dir).summary_json()
        if observer is not None:
            best = f" (best top-1 {folder.best_acc:.2f})" if folder.best_acc is not None else ""
            observer(NoteEvent(f"reusing the finished {label} run {run_dir}{best}").to_json())
        return QuickstartRun(label, cfg, RunResult(run_dir, summary), reused=True)
    if status == "conflict" and not overwrite:  # the folder just read: the sweep's refusal, in the quickstart's words
        raise _conflict(folder)
    result = fit(cfg, settings, resume=status == "resume", overwrite=status == "conflict", observer=observer)
    return QuickstartRun(label, cfg, result)
