"""The records a run folder holds: ``summary.json``, the events of ``log.jsonl`` and the train-state header.

Each record is a frozen dataclass whose ``to_json()`` is the JSON object written today (the same
keys, in the same order, optional keys left out when unset) and whose ``from_json()`` reads one
back, so folders written before these classes existed stay readable. The engine also hands the
``to_json()`` form of every event to its observer. A leaf: imports nothing from dskd.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: ``summary.json``'s ``status``.
RunStatus = Literal["running", "finished", "failed", "interrupted"]


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


# --------------------------------------------------------------------------- summary.json


@dataclass(frozen=True)
class Summary:
    """``summary.json``: what ran, how far it got and its accuracies (rewritten after every epoch)."""

    status: str  # RunStatus
    method: str
    variant: str
    name: str  # the run folder's name (``--name``, else the variant)
    teacher: str | None
    student: str
    dataset: str
    seed: int
    epochs: int  # configured
    epochs_done: int
    best_acc: float
    best_epoch: int
    last_acc: float | None  # None before the first epoch
    last_acc_top5: float | None
    wall_time_s: float
    device: str
    dskd_version: str
    torch_version: str
    python_version: str
    error: str | None = None  # a failed or interrupted run's message; absent from the file otherwise

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "method": self.method,
            "variant": self.variant,
            "name": self.name,
            "teacher": self.teacher,
            "student": self.student,
            "dataset": self.dataset,
            "seed": self.seed,
            "epochs": self.epochs,
            "epochs_done": self.epochs_done,
            "best_acc": self.best_acc,
            "best_epoch": self.best_epoch,
            "last_acc": self.last_acc,
            "last_acc_top5": self.last_acc_top5,
            "wall_time_s": self.wall_time_s,
            "device": self.device,
            "dskd_version": self.dskd_version,
            "torch_version": self.torch_version,
            "python_version": self.python_version,
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    def dumps(self) -> str:
        """The file's text (indented, newline-terminated)."""
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """A summary from its JSON object; raises ``KeyError``/``TypeError``/``ValueError`` on a malformed one."""
        return cls(
            status=str(data["status"]),
            method=str(data["method"]),
            variant=str(data["variant"]),
            name=str(data.get("name") or data["variant"]),
            teacher=None if data.get("teacher") is None else str(data["teacher"]),
            student=str(data["student"]),
            dataset=str(data["dataset"]),
            seed=int(data["seed"]),
            epochs=int(data["epochs"]),
            epochs_done=int(data.get("epochs_done") or 0),
            best_acc=float(data.get("best_acc") or 0.0),
            best_epoch=int(data.get("best_epoch") or 0),
            last_acc=_opt_float(data.get("last_acc")),
            last_acc_top5=_opt_float(data.get("last_acc_top5")),
            wall_time_s=float(data.get("wall_time_s") or 0.0),
            device=str(data.get("device", "")),
            dskd_version=str(data.get("dskd_version", "")),
            torch_version=str(data.get("torch_version", "")),
            python_version=str(data.get("python_version", "")),
            error=None if data.get("error") is None else str(data["error"]),
        )

    @property
    def finished(self) -> bool:
        return self.status == "finished"


# --------------------------------------------------------------------------- log.jsonl events


@dataclass(frozen=True)
class StartEvent:
    """The first line of a run's (or a resume's) log: where it runs and on what."""

    resumed: bool  # ``"event": "resume"`` instead of ``"start"``
    epoch: int  # the last committed epoch (0 for a new run)
    run_dir: str
    device: str
    train_samples: int
    test_samples: int
    steps_per_epoch: int
    epochs: int
    # Present only for a run of several processes (``DistContext.describe``).
    world_size: int | None = None
    backend: str | None = None
    global_batch_size: int | None = None
    cuda_graphs: str | None = None  # the fast path's CUDA graphs (``FastStep.graphs``); absent on the reference path
    teacher_acc: float | None = None  # the teacher's test top-1 (a new distillation run only)
    notes: tuple[str, ...] = ()  # the method's one-line notes (``Distiller.describe``)

    @property
    def kind(self) -> str:
        return "resume" if self.resumed else "start"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.kind,
            "epoch": self.epoch,
            "run_dir": self.run_dir,
            "device": self.device,
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
            "steps_per_epoch": self.steps_per_epoch,
            "epochs": self.epochs,
        }
        if self.world_size is not None:
            out |= {"world_size": self.world_size, "backend": self.backend, "global_batch_size": self.global_batch_size}
        if self.cuda_graphs is not None:
            out["cuda_graphs"] = self.cuda_graphs
        if self.teacher_acc is not None:
            out["teacher_acc"] = self.teacher_acc
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StartEvent:
        return cls(
            resumed=data["event"] == "resume",
            epoch=int(data["epoch"]),
            run_dir=str(data["run_dir"]),
            device=str(data["device"]),
            train_samples=int(data["train_samples"]),
            test_samples=int(data["test_samples"]),
            steps_per_epoch=int(data["steps_per_epoch"]),
            epochs=int(data["epochs"]),
            world_size=_opt_int(data.get("world_size")),
            backend=None if data.get("backend") is None else str(data["backend"]),
            global_batch_size=_opt_int(data.get("global_batch_size")),
            cuda_graphs=None if data.get("cuda_graphs") is None else str(data["cuda_graphs"]),
            teacher_acc=_opt_float(data.get("teacher_acc")),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


#: The keys of an epoch line other than its loss terms.
_EPOCH_KEYS = (
    "event",
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_acc",
    "test_acc_top5",
    "test_loss",
    "best_acc",
    "epoch_time_s",
    "train_loss_curve",
    "train_time_s",
    "eval_time_s",
)


@dataclass(frozen=True)
class EpochEvent:
    """One epoch: its weighted loss terms, train and test accuracy, and its times.

    The train state records it too (``Progress.last_event``), so a resume can write a line a
    kill left out.
    """

    epoch: int
    lr: float
    terms: Mapping[str, float]  # weighted mean of each loss term (``loss_ce``, ``loss_kd``, …), in the method's order
    train_loss: float  # their sum
    train_acc: float
    test_acc: float
    test_acc_top5: float
    test_loss: float
    best_acc: float
    epoch_time_s: float
    train_loss_curve: tuple[float, ...]  # mean training loss per tenth of the epoch (empty tenths left out)
    train_time_s: float
    eval_time_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "epoch",
            "epoch": self.epoch,
            "lr": self.lr,
            **self.terms,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "test_acc": self.test_acc,
            "test_acc_top5": self.test_acc_top5,
            "test_loss": self.test_loss,
            "best_acc": self.best_acc,
            "epoch_time_s": self.epoch_time_s,
            "train_loss_curve": list(self.train_loss_curve),
            "train_time_s": self.train_time_s,
            "eval_time_s": self.eval_time_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpochEvent:
        return cls(
            epoch=int(data["epoch"]),
            lr=float(data["lr"]),
            terms={k: float(v) for k, v in data.items() if k not in _EPOCH_KEYS},
            train_loss=float(data["train_loss"]),
            train_acc=float(data["train_acc"]),
            test_acc=float(data["test_acc"]),
            test_acc_top5=float(data["test_acc_top5"]),
            test_loss=float(data["test_loss"]),
            best_acc=float(data["best_acc"]),
            epoch_time_s=float(data["epoch_time_s"]),
            train_loss_curve=tuple(float(v) for v in data.get("train_loss_curve", ())),
            train_time_s=float(data.get("train_time_s", 0.0)),
            eval_time_s=float(data.get("eval_time_s", 0.0)),
        )


@dataclass(frozen=True)
class EndEvent:
    """The last line of a finished run."""

    best_acc: float
    best_epoch: int
    last_acc: float | None
    wall_time_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "event": "end",
            "best_acc": self.best_acc,
            "best_epoch": self.best_epoch,
            "last_acc": self.last_acc,
            "wall_time_s": self.wall_time_s,
        }

    @classmethod
    def from_summary(cls, summary: Summary) -> EndEvent:
        return cls(summary.best_acc, summary.best_epoch, summary.last_acc, summary.wall_time_s)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EndEvent:
        return cls(
            best_acc=float(data["best_acc"]),
            best_epoch=int(data["best_epoch"]),
            last_acc=_opt_float(data.get("last_acc")),
            wall_time_s=float(data["wall_time_s"]),
        )


@dataclass(frozen=True)
class FailureEvent:
    """The last line of a run that failed or was interrupted: the last committed epoch and why."""

    interrupted: bool  # ``"event": "interrupted"`` (Ctrl-C) instead of ``"failed"``
    epoch: int
    error: str

    @property
    def kind(self) -> str:
        return "interrupted" if self.interrupted else "failed"

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "epoch": self.epoch, "error": self.error}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailureEvent:
        return cls(data["event"] == "interrupted", int(data["epoch"]), str(data["error"]))


@dataclass(frozen=True)
class NoteEvent:
    """Information for the reader (the fast step's fallback, a reused quickstart run)."""

    message: str
    epoch: int | None = None  # absent from the JSON when None

    def to_json(self) -> dict[str, Any]:
        if self.epoch is None:
            return {"event": "note", "message": self.message}
        return {"event": "note", "epoch": self.epoch, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoteEvent:
        return cls(str(data["message"]), _opt_int(data.get("epoch")))


@dataclass(frozen=True)
class FallbackEvent:
    """A resume fell back from a train state that failed verification (``reason`` says which and why)."""

    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"event": "fallback", "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FallbackEvent:
        return cls(str(data["reason"]))


@dataclass(frozen=True)
class StepEvent:
    """One training step, for a progress display only (never logged). ``loss`` is None on the fast path."""

    epoch: int
    step: int
    steps: int
    loss: float | None

    def to_json(self) -> dict[str, Any]:
        return {"event": "step", "epoch": self.epoch, "step": self.step, "steps": self.steps, "loss": self.loss}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepEvent:
        return cls(int(data["epoch"]), int(data["step"]), int(data["steps"]), _opt_float(data.get("loss")))


Event = StartEvent | EpochEvent | EndEvent | FailureEvent | NoteEvent | FallbackEvent | StepEvent

_BY_KIND: dict[str, Any] = {
    "start": StartEvent,
    "resume": StartEvent,
    "epoch": EpochEvent,
    "end": EndEvent,
    "failed": FailureEvent,
    "interrupted": FailureEvent,
    "note": NoteEvent,
    "fallback": FallbackEvent,
    "step": StepEvent,
}


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The record of one log line; ``ValueError`` for an unknown kind, ``KeyError``/``TypeError``/
    ``ValueError`` for a malformed line."""
    kind = data.get("event")
    if not isinstance(kind, str) or kind not in _BY_KIND:
        raise ValueError(f"unknown event {kind!r}")
    record: Event = _BY_KIND[kind].from_json(data)
    return record


# --------------------------------------------------------------------------- the train state's header


@dataclass(frozen=True)
class TrainStateHeader:
    """The JSON metadata of ``checkpoints/train_state.safetensors`` (every value a string in the file)."""

    format: str  # ``checkpoint.TRAIN_STATE_FORMAT``
    progress: Mapping[str, Any]  # ``Progress``'s scalars and ``last_event``
    rng: Mapping[str, Any]  # Python's and NumPy's RNG state (torch's and CUDA's are tensors)
    param_groups: list[Any]  # the optimizer's param groups
    config: str  # the run's ``config.json`` text
    extra: Mapping[str, str] = field(default_factory=dict)  # keys a later writer added, kept as they are

    def to_json(self) -> dict[str, str]:
        return {
            "format": self.format,
            "progress": json.dumps(self.progress),
            "rng": json.dumps(self.rng),
            "param_groups": json.dumps(self.param_groups),
            "config": self.config,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> TrainStateHeader:
        known = ("format", "progress", "rng", "param_groups", "config")
        return cls(
            format=data["format"],
            progress=json.loads(data["progress"]),
            rng=json.loads(data["rng"]),
            param_groups=json.loads(data["param_groups"]),
            config=data.get("config", ""),
            extra={k: v for k, v in data.items() if k not in known},
        )
