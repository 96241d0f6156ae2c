"""The run folder ``runs/<dataset>/<teacher>-<student>/<variant>/seed<k>/``: reading, checking and writing it.

``checkpoints/train_state.safetensors`` is the commit point of an epoch (``train/state.py``);
the student files, ``log.jsonl`` and ``summary.json`` are written after it and, on resume,
re-derived from it when a kill left them behind. :class:`RunDir` reads a folder as typed records
(:mod:`dskd_core.runs.records`); :func:`inspect_run_dir` measures it against a request; the
writers (:class:`RunLog`, :class:`RunFiles`) are the engine's.

Nothing here imports ``dskd_core.train`` (whose package imports the engine, which imports this).
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from dskd_core._version import __version__
from dskd_core.checkpoint import atomic_write_text, read_metadata, save_student
from dskd_core.config import EXECUTION_KEYS, RunConfig, config_differences
from dskd_core.errors import UsageError
from dskd_core.runs.layout import (
    CHECKPOINTS,
    CONFIG_FILE,
    LOG_FILE,
    STUDENT_BEST,
    STUDENT_LAST,
    SUMMARY_FILE,
    TRACKER_FILES,
    TRAIN_STATE,
    TRAIN_STATE_PREV,
)
from dskd_core.runs.records import EpochEvent, Event, Summary, event_from_json
from dskd_core.variants import parse_variant

if TYPE_CHECKING:
    from dskd_core.methods import Distiller
    from dskd_core.train.state import Progress


# --------------------------------------------------------------------------- reading files


class UnreadableRun(ValueError):
    """A run's files cannot be read (corrupt JSON, not an object, an I/O error); the message says which."""


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def error_reason(err: Exception) -> str:
    """What went wrong, in a few words (an OS error's ``strerror``)."""
    return (err.strerror if isinstance(err, OSError) else None) or str(err)


def read_json(path: Path, *, strict: bool = False) -> dict[str, Any]:
    """The JSON object in ``path``; {} when there is no such file.

    A file that cannot be read, is not JSON or holds something other than an object is {} too,
    unless ``strict``: then :class:`UnreadableRun` says why.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        if strict:
            raise UnreadableRun(f"{path.name} cannot be read ({error_reason(err)})") from None
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        if strict:
            raise UnreadableRun(f"{path.name} is not valid JSON ({err})") from None
        return {}
    if not isinstance(value, dict):
        if strict:
            kind = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
            raise UnreadableRun(f"{path.name} holds {kind}, not a JSON object")
        return {}
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line; [] when there is no such file (or its folder is a file).

    A line that does not parse or is not an object (a line cut by a kill) is skipped; other
    read errors are raised.
    """
    try:
        lines = path.read_text(errors="replace").splitlines()
    except (FileNotFoundError, NotADirectoryError):  # no such file, or a file where a folder should be
        return []
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a log as their JSON objects; a line cut by a kill is skipped."""
    return read_jsonl(path)


def accuracy_curve(events: Sequence[dict[str, Any]]) -> tuple[list[float], bool]:
    """Test top-1 per epoch (the last line of an epoch wins) and whether the log ended (an ``end`` line).

    An epoch line with odd values is skipped.
    """
    by_epoch: dict[int, float] = {}
    ended = False
    for event in events:
        try:
            if event.get("event") == "epoch" and "test_acc" in event:
                by_epoch[int(event["epoch"])] = float(event["test_acc"])
            elif event.get("event") == "end":
                ended = True
        except (KeyError, TypeError, ValueError):
            continue
    return [by_epoch[e] for e in sorted(by_epoch)], ended


def _logged_epochs(path: Path) -> set[Any]:
    return {e.get("epoch") for e in read_events(path) if e.get("event") == "epoch"}


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a dskd run folder (it holds ``config.json``)."""
    return (path / CONFIG_FILE).is_file()


def has_train_state(ckpt_dir: Path) -> bool:
    """Whether a committed train state (or its fallback) is there: something to resume."""
    return (ckpt_dir / TRAIN_STATE).exists() or (ckpt_dir / TRAIN_STATE_PREV).exists()


def path_meta(run_dir: Path) -> dict[str, Any]:
    """``<dataset>/<teacher>-<student>/<variant>/seed<k>`` read back from the path (the inverse of
    ``RunConfig.run_dir``): seed, dataset, teacher, student and, for a canonical variant, method and
    variant; {} for a path of another shape."""
    parts = run_dir.resolve().parts  # "." or "../seed0" name the folder too
    if len(parts) < 4 or not re.fullmatch(r"seed\d+", parts[-1]):
        return {}
    teacher, sep, student = parts[-3].partition("-")
    meta: dict[str, Any] = {"seed": int(parts[-1][4:]), "dataset": parts[-4]}
    meta |= {"teacher": teacher, "student": student} if sep else {"teacher": None, "student": teacher}
    parsed = parse_variant(parts[-2])
    if parsed is not None:
        meta |= {"method": parsed.method, "variant": parts[-2]}
    return meta


@dataclass(frozen=True)
class RunDir:
    """One run folder, read as records (nothing written)."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def exists(self) -> bool:
        """Whether this is a run folder (``config.json`` is there)."""
        return is_run_dir(self.path)

    def config(self, *, strict: bool = False) -> dict[str, Any]:
        """``config.json`` as written ({} when missing; see :func:`read_json` for ``strict``)."""
        return read_json(self.config_path, strict=strict)

    def summary_json(self, *, strict: bool = False) -> dict[str, Any]:
        """``summary.json`` as written ({} when missing; see :func:`read_json` for ``strict``)."""
        return read_json(self.summary_path, strict=strict)

    def summary(self) -> Summary | None:
        """``summary.json`` as a record; None when it is missing, unreadable or malformed."""
        data = self.summary_json()
        try:
            return Summary.from_json(data) if data else None
        except (KeyError, TypeError, ValueError):
            return None

    def raw_events(self) -> list[dict[str, Any]]:
        """``log.jsonl``'s events as their JSON objects (what observers receive)."""
        return read_events(self.log_path)

    def events(self) -> list[Event]:
        """``log.jsonl``'s events as records; lines of an unknown kind or malformed are skipped."""
        out: list[Event] = []
        for data in self.raw_events():
            try:
                out.append(event_from_json(data))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def epochs(self) -> list[EpochEvent]:
        return [e for e in self.events() if isinstance(e, EpochEvent)]

    def curve(self) -> tuple[list[float], bool]:
        """Test top-1 per epoch and whether the log ended (:func:`accuracy_curve`)."""
        return accuracy_curve(self.raw_events())

    def inspect(self, cfg: RunConfig) -> RunFolder:
        """The folder measured against ``cfg`` (resolved): :func:`inspect_run_dir`."""
        return inspect_run_dir(cfg, self.path)

    def status(self, cfg: RunConfig) -> ReuseStatus:
        """What a sweep or the quickstart does here for ``cfg`` (resolved): :meth:`RunFolder.plan`."""
        return self.inspect(cfg).plan(cfg.epochs)


# --------------------------------------------------------------------------- a folder against a request


def saved_execution(run_dir: Path) -> dict[str, Any]:
    """The execution keys a run folder's config.json recorded (to resume a run as it ran)."""
    saved = read_json(run_dir / CONFIG_FILE)
    return {k: saved[k] for k in EXECUTION_KEYS if k in saved}


#: What a run folder is to a request that may reuse it (:meth:`RunFolder.plan`).
ReuseStatus = Literal["done", "resume", "new", "conflict"]


@dataclass(frozen=True)
class RunFolder:
    """What a run folder holds, measured against a requested config (read only, nothing written)."""

    path: Path
    has_state: bool  # a committed train state (something to resume)
    finished: bool  # summary.json says finished
    epochs_done: int
    best_acc: float | None
    #: The run-config keys in which ``config.json`` trains another run than the request, ``epochs``
    #: included (:func:`~dskd_core.config.config_differences`); ``config.json`` when it is unreadable.
    differences: tuple[str, ...]
    #: Both student files and the last epoch's log line are there (a kill after the commit leaves them out).
    intact: bool = True

    @property
    def occupied(self) -> bool:
        """Whether training afresh here would replace something: a committed epoch or a finished run."""
        return self.has_state or self.finished

    @property
    def reusable(self) -> bool:
        """A finished, intact run of the requested config: the request's result is already here."""
        return self.finished and not self.differences and self.intact

    @property
    def resume_differences(self) -> tuple[str, ...]:
        """The differences a resume refuses: all but ``epochs`` (a resume may change how long the run is)."""
        return tuple(k for k in self.differences if k != "epochs")

    def plan(self, epochs: int) -> ReuseStatus:
        """What a sweep or the quickstart does here for a request of ``epochs`` epochs.

        ``done``: a finished run of the requested config, reused as it is. ``resume``: a train
        state of this config short of ``epochs`` (a finished run of fewer epochs is extended).
        ``new``: nothing committed here. ``conflict``: another run, or more epochs than requested.
        """
        if not self.occupied:
            return "new"
        if self.reusable:
            return "done"
        if self.resume_differences:
            return "conflict"
        if self.has_state and ("epochs" not in self.differences or self.epochs_done < epochs):
            return "resume"
        return "conflict"

    @property
    def conflict_keys(self) -> tuple[str, ...]:
        """The keys to name when :meth:`plan` says ``conflict`` (an unfinished run's epochs only when
        they are the reason: it has done more than requested)."""
        keys = self.differences if self.finished else self.resume_differences
        return keys or ("epochs",)


def inspect_run_dir(cfg: RunConfig, run_dir: Path) -> RunFolder:
    """Compare ``run_dir``'s ``config.json`` and ``summary.json`` with ``cfg``, touching nothing.

    ``cfg`` is taken as resolved: what it leaves to the device (fast/precision/compile "auto")
    compares as recorded (``sweep.inspect_for`` resolves it for a device first). A folder
    holding a run whose ``config.json`` cannot be read differs in ``config.json``: it is never
    taken for the request.
    """
    summary = read_json(run_dir / SUMMARY_FILE)
    saved = read_json(run_dir / CONFIG_FILE)
    finished = summary.get("status") == "finished"
    has_state = has_train_state(run_dir / CHECKPOINTS)
    if saved:
        differences = config_differences(saved, cfg.model_dump(mode="json"))
    else:
        differences = [CONFIG_FILE] if finished or has_state else []
    try:
        epochs_done = int(summary.get("epochs_done") or 0)
    except (TypeError, ValueError):
        epochs_done = 0
    if finished and epochs_done < cfg.epochs and "epochs" not in differences:
        differences.append("epochs")  # a finished run stopped short of the requested epochs is not it
    best = summary.get("best_acc")
    logged = _logged_epochs(run_dir / LOG_FILE)
    students = all((run_dir / CHECKPOINTS / name).is_file() for name in (STUDENT_LAST, STUDENT_BEST))
    return RunFolder(
        path=run_dir,
        has_state=has_state,
        finished=finished,
        epochs_done=epochs_done,
        best_acc=best if isinstance(best, (int, float)) else None,
        differences=tuple(differences),
        intact=students and epochs_done in logged,
    )


def finished_result(cfg: RunConfig, run_dir: Path) -> dict[str, Any] | None:
    """The ``summary.json`` of a finished, intact run of ``cfg`` (resolved) in ``run_dir``, else None.

    A folder a kill left behind (derived files missing) is resumed and repaired instead.
    """
    return read_json(run_dir / SUMMARY_FILE) if inspect_run_dir(cfg, run_dir).reusable else None


def another_config(run_dir: Path, keys: Sequence[str]) -> str:
    """``RUN_DIR holds a run with another config (lr, beta differ)``: the start of a refusal."""
    if list(keys) == [CONFIG_FILE]:
        return f"{run_dir} holds a run whose config.json cannot be read (so it cannot be compared)"
    verb = "differs" if len(keys) == 1 else "differ"
    return f"{run_dir} holds a run with another config ({', '.join(keys)} {verb})"


def check_run_dir(cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse what :func:`prepare_run_dir` would refuse, without touching the folder.

    Without ``resume``, a folder holding a committed epoch or a finished run is refused: with the
    keys in which its config differs from ``cfg`` when it is another run, else as a finished or
    unfinished run of this config. With ``resume``, every key but ``epochs`` must match.
    """
    if overwrite:
        return
    folder = inspect_run_dir(cfg, run_dir)
    if resume:
        _check_resume(cfg, folder)
        return
    if not folder.occupied:
        return
    changed = folder.differences if folder.finished else folder.resume_differences
    if changed:
        extend = list(changed) == ["epochs"] and folder.has_state and cfg.epochs > folder.epochs_done
        fixes = "--resume to extend it, --overwrite to replace it," if extend else "--overwrite to replace it,"
        raise UsageError(f"{another_config(run_dir, changed)}: pass {fixes} or --name to train this one beside it")
    if folder.finished:
        raise UsageError(
            f"{run_dir} holds a finished run (best top-1 {folder.best_acc or 0:.2f}): pass --overwrite to "
            "retrain it, --resume with more --epochs to extend it, or another --seed/--name"
        )
    raise UsageError(f"{run_dir} holds an unfinished run: pass --resume to continue it or --overwrite to restart it")


def _check_resume(cfg: RunConfig, folder: RunFolder) -> None:
    # Keys an older config.json lacks had their defaults; an execution key it did not record matches.
    changed = folder.resume_differences
    if changed == (CONFIG_FILE,):
        raise UsageError(
            f"cannot resume {folder.path}: its config.json cannot be read, so it cannot be compared with this "
            "request: restore it, or pass --overwrite to start the run afresh"
        )
    if changed == ("world_size",):
        saved = read_json(folder.path / CONFIG_FILE)
        raise UsageError(
            f"--resume with {cfg.world_size} processes, but {folder.path} trained with "
            f"{saved.get('world_size', 1)}: launch that many processes (--nproc/torchrun), or start a new run"
        )
    if changed:
        raise UsageError(
            f"--resume with a different config ({', '.join(sorted(changed))} changed): drop those flags, or start a "
            "new run with another --seed/--name"
        )


# --------------------------------------------------------------------------- writing (the engine's)


def prepare_run_dir(cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check what the folder holds against the request; True when there is a state to resume."""
    check_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite)
    ckpt_dir = run_dir / CHECKPOINTS
    if overwrite:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        for name in (LOG_FILE, SUMMARY_FILE, CONFIG_FILE):
            (run_dir / name).unlink(missing_ok=True)
        for name in TRACKER_FILES:  # the trackers' record of the run replaced
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, cfg.to_json() + "\n")
    return resume and has_train_state(ckpt_dir)


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
        """Append one event (the ``to_json()`` of a :mod:`~dskd_core.runs.records` event)."""
        if not self.enabled:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()


class RunFiles:
    """The derived files of one run folder: student checkpoints, the log and ``summary.json``.

    ``write=False`` (every process but rank 0 of a distributed run) computes the same values and
    writes nothing. The train state itself (the commit) is ``train/state.py``'s.
    """

    def __init__(
        self, cfg: RunConfig, run_dir: Path, device: torch.device, num_classes: int, *, write: bool = True
    ) -> None:
        self.cfg, self.run_dir, self.device, self.num_classes = cfg, run_dir, device, num_classes
        self.ckpt_dir = run_dir / CHECKPOINTS
        self.enabled = write

    def summary(self, progress: Progress, status: str, *, error: str | None = None) -> Summary:
        """Write ``summary.json`` for ``progress`` (rank 0) and return it."""
        summary = summarize(self.cfg, progress, self.device, status, error=error)
        if self.enabled:
            atomic_write_text(self.run_dir / SUMMARY_FILE, summary.dumps())
        return summary

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
        if progress.last_event is not None and progress.epoch not in _logged_epochs(log.path):
            log.write(progress.last_event)
        self.students(distiller, progress, only_missing=True)


def summarize(
    cfg: RunConfig, progress: Progress, device: torch.device, status: str, *, error: str | None = None
) -> Summary:
    """The summary of ``cfg``'s run at ``progress``."""
    last = progress.last_event
    return Summary(
        status=status,
        method=cfg.method,
        variant=cfg.variant,
        name=cfg.run_name,
        teacher=cfg.teacher,
        student=cfg.student,
        dataset=cfg.dataset,
        seed=cfg.seed,
        epochs=cfg.epochs,
        epochs_done=progress.epoch,
        best_acc=progress.best_acc,
        best_epoch=progress.best_epoch,
        last_acc=last["test_acc"] if last else None,
        last_acc_top5=last["test_acc_top5"] if last else None,
        wall_time_s=round(progress.wall_time_s, 3),
        device=str(device),
        dskd_version=__version__,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        error=error,
    )
