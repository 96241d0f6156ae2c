"""The run record every reader returns, whatever wrote the run, and what discovery collects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dskd_core.runs.store import UnreadableRun

__all__ = [
    "CONFIG_IGNORED",
    "METRICS",
    "UNKNOWN",
    "UNREADABLE",
    "Discovery",
    "Hints",
    "Metric",
    "RunRecord",
    "UnreadableRun",
    "int_or_none",
]

Metric = Literal["best", "last"]
METRICS: tuple[Metric, ...] = ("best", "last")
UNKNOWN = "unknown"

UNREADABLE = "unreadable"

#: Config keys that may differ between the seeds of one group (epochs and epoch_passes get their own
#: flags). The teacher is compared by name, not by checkpoint path: paths differ between machines.
CONFIG_IGNORED = frozenset({"seed", "teacher_ckpt", "epochs", "epoch_passes", "name", "deterministic"})


@dataclass(frozen=True)
class Hints:
    """What to assume for legacy logs whose path says nothing (CLI ``--dataset`` etc.); never overrides."""

    dataset: str | None = None
    teacher: str | None = None
    student: str | None = None
    method: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run, whatever wrote it: ``source`` is ``dskd``, ``mdistiller`` (worklog.txt) or ``lskd``."""

    source: str
    path: str
    dataset: str
    teacher: str | None
    student: str
    method: str
    variant: str
    seed: int | None
    status: str  # finished | running | failed | interrupted | unfinished
    epochs: int | None  # configured; None when the log does not say
    epochs_done: int
    best_acc: float | None
    last_acc: float | None
    curve: tuple[float, ...] = ()  # test top-1 per epoch, epoch 1 first
    config: dict[str, Any] | None = None  # what must agree within a group (seed excluded)
    error: str | None = None
    epoch_passes: int | None = None  # shuffled passes per epoch; legacy trainers make one

    @property
    def epochs_run(self) -> int:
        """The configured epochs, else the epochs logged (what a group's epoch count compares)."""
        return self.epochs if self.epochs is not None else self.epochs_done

    @property
    def full_config(self) -> bool:
        """A dskd ``config.json`` was read: every run-config key is known (missing ones had defaults)."""
        return self.source == "dskd" and self.config is not None

    @property
    def complete(self) -> bool:
        """Finished, every configured epoch done, and a best accuracy to report."""
        enough = self.epochs is None or self.epochs_done >= self.epochs
        return self.status == "finished" and enough and self.best_acc is not None

    @property
    def metadata_known(self) -> bool:
        return UNKNOWN not in (self.dataset, self.student, self.method, self.variant, self.teacher)

    def incomplete_reason(self) -> str:
        if self.status == UNREADABLE:
            return f"unreadable: {self.error}"
        done = f"{self.epochs_done}/{self.epochs}" if self.epochs else f"{self.epochs_done}"
        if self.source != "dskd" and self.status == "unfinished":
            return f"no closing best_acc line ({done} epochs logged)"
        reason = f"{self.status} after {done} epochs"
        return f"{reason}: {self.error}" if self.error else reason

    def metric(self, metric: Metric) -> float | None:
        return self.best_acc if metric == "best" else self.last_acc

    def as_dict(self, used: bool) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "seed": self.seed,
            "status": self.status,
            "epochs": self.epochs,
            "epoch_passes": self.epoch_passes,
            "epochs_done": self.epochs_done,
            "best_acc": self.best_acc,
            "last_acc": self.last_acc,
            "used": used,
        }


@dataclass(frozen=True)
class Discovery:
    records: list[RunRecord]
    skipped: list[tuple[str, str]]  # (path, why it is not a run): no epoch blocks, no method/student
    #: (path, reason) of every run whose files could not be read; those whose folder names say which
    #: group they belong to are also records with status ``unreadable`` (excluded from their group).
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
