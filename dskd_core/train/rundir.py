"""A run folder: its preparation, its derived files, and their repair after a kill.

``checkpoints/train_state.safetensors`` is the commit point of an epoch (see ``state.py``);
the student files, ``log.jsonl`` and ``summary.json`` are written after it and, on resume,
re-derived from it when a kill left them behind.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

import dskd_core
from dskd_core.checkpoint import atomic_write_text, read_metadata, save_student
from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.methods import Distiller
from dskd_core.train.build import STUDENT_BEST, STUDENT_LAST
from dskd_core.train.state import Progress, has_train_state, save_train_state


class RunLog:
    """``log.jsonl``: one JSON object per event, flushed per line (``write=False``: a process that must not write)."""

    def __init__(self, path: Path, keep_epochs_upto: int | None, *, write: bool = True) -> None:
        """``keep_epochs_upto=None`` starts a fresh log; else epochs past it (an uncommitted epoch) go."""
        self.path = path
        self.enabled = write
        if not write:
            return
        if keep_epochs_upto is None:
            path.unlink(missing_ok=True)
            return
        kept = [e for e in read_events(path) if e.get("event") != "epoch" or e.get("epoch", 0) <= keep_epochs_upto]
        atomic_write_text(path, "".join(json.dumps(e) + "\n" for e in kept))

    def write(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a log; a line cut by a kill is skipped."""
    events = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


#: Config keys of how a run's steps execute; ``fit`` records their effective values.
EXECUTION_KEYS = ("fast", "precision", "compile")


def saved_execution(run_dir: Path) -> dict[str, Any]:
    """The execution keys a run folder's config.json recorded (to resume a run as it ran)."""
    saved = _read_json(run_dir / "config.json")
    return {k: saved[k] for k in EXECUTION_KEYS if k in saved}


def check_run_dir(cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse what :func:`prepare_run_dir` would refuse, without touching the folder."""
    if overwrite:
        return
    ckpt_dir = run_dir / "checkpoints"
    summary = _read_json(run_dir / "summary.json")
    if has_train_state(ckpt_dir) and not resume:
        if summary.get("status") == "finished":
            raise UsageError(
                f"{run_dir} holds a finished run (best top-1 {summary.get('best_acc', 0):.2f}): pass --overwrite to "
                "retrain it, --resume with more --epochs to extend it, or another --seed/--name"
            )
        raise UsageError(
            f"{run_dir} holds an unfinished run: pass --resume to continue it or --overwrite to restart it"
        )
    saved = _read_json(run_dir / "config.json")
    if resume and saved:
        now = cfg.model_dump(mode="json")
        # A key the saved config lacks (written by an older dskd) had its default value.
        defaults = RunConfig.model_construct(**{k: now[k] for k in ("method", "student")}).model_dump(mode="json")
        # How steps execute (fast/precision/compile) was not recorded before the fast path existed.
        unrecorded = {k for k in EXECUTION_KEYS if k not in saved}
        changed = sorted(
            k for k in now if k != "epochs" and k not in unrecorded and saved.get(k, defaults.get(k)) != now[k]
        )
        if changed == ["world_size"]:
            raise UsageError(
                f"--resume with {now['world_size']} processes, but {run_dir} trained with "
                f"{saved.get('world_size', 1)}: launch that many processes (--nproc/torchrun), or start a new run"
            )
        if changed:
            raise UsageError(
                f"--resume with a different config ({', '.join(changed)} changed): drop those flags, or start a "
                "new run with another --seed/--name"
            )


def prepare_run_dir(cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check what the folder holds against the request; True when there is a state to resume."""
    check_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite)
    ckpt_dir = run_dir / "checkpoints"
    if overwrite:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        for name in ("log.jsonl", "summary.json", "config.json"):
            (run_dir / name).unlink(missing_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", cfg.to_json() + "\n")
    return resume and has_train_state(ckpt_dir)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


class RunFiles:
    """The derived files of one run folder: student checkpoints, the log and ``summary.json``.

    ``write=False`` (every process but rank 0 of a distributed run) computes the same values and
    writes nothing.
    """

    def __init__(
        self, cfg: RunConfig, run_dir: Path, device: torch.device, num_classes: int, *, write: bool = True
    ) -> None:
        self.cfg, self.run_dir, self.device, self.num_classes = cfg, run_dir, device, num_classes
        self.ckpt_dir = run_dir / "checkpoints"
        self.enabled = write

    def summary(self, progress: Progress, status: str, **extra: Any) -> dict[str, Any]:
        summary = {**summarize(self.cfg, progress, self.device, status), **extra}
        if self.enabled:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def commit(self, distiller: Distiller, optimizer: torch.optim.Optimizer, progress: Progress) -> None:
        """Save the train state: the commit point of an epoch."""
        if self.enabled:
            save_train_state(self.ckpt_dir, distiller, optimizer, progress, self.cfg.to_json())

    def students(self, distiller: Distiller, progress: Progress, *, only_missing: bool = False) -> None:
        """``student_last`` (this epoch) and ``student_best`` (the best epoch), from the committed state."""
        if not self.enabled:
            return
        last = progress.last_event or {}
        for name, epoch in ((STUDENT_LAST, progress.epoch), (STUDENT_BEST, progress.best_epoch)):
            path = self.ckpt_dir / name
            if only_missing and path.exists() and read_metadata(path).get("epoch") == str(epoch):
                continue
            if not only_missing and name == STUDENT_BEST and progress.best_epoch != progress.epoch:
                continue  # unchanged since its epoch
            state = distiller.student.state_dict() if epoch == progress.epoch else progress.best_state
            if state is None:
                continue
            top1 = last.get("test_acc") if epoch == progress.epoch else progress.best_acc
            top5 = last.get("test_acc_top5") if epoch == progress.epoch else None
            meta = {
                "epoch": epoch,
                "dataset": self.cfg.dataset,
                "top1": top1,
                "top5": top5,
                "test_batch_size": self.cfg.test_batch_size,
            }
            if self.cfg.image_size is not None:
                meta["image_size"] = self.cfg.image_size
            save_student(path, state, arch=self.cfg.student, num_classes=self.num_classes, extra=meta)

    def repair(self, distiller: Distiller, progress: Progress, log: RunLog) -> None:
        """After a resume: re-derive what a kill between the commit and these writes left out."""
        if not self.enabled:
            return
        logged = {e.get("epoch") for e in read_events(log.path) if e.get("event") == "epoch"}
        if progress.last_event is not None and progress.epoch not in logged:
            log.write(progress.last_event)
        self.students(distiller, progress, only_missing=True)


def summarize(cfg: RunConfig, progress: Progress, device: torch.device, status: str) -> dict[str, Any]:
    last = progress.last_event
    return {
        "status": status,
        "method": cfg.method,
        "variant": cfg.variant,
        "name": cfg.run_name,
        "teacher": cfg.teacher,
        "student": cfg.student,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "epochs_done": progress.epoch,
        "best_acc": progress.best_acc,
        "best_epoch": progress.best_epoch,
        "last_acc": last["test_acc"] if last else None,
        "last_acc_top5": last["test_acc_top5"] if last else None,
        "wall_time_s": round(progress.wall_time_s, 3),
        "device": str(device),
        "dskd_version": dskd_core.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
