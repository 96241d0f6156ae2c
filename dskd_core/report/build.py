"""The report: discovered runs grouped, aggregated and paired (what ``dskd report`` renders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dskd_core.errors import UsageError
from dskd_core.report.deltas import Delta, deltas
from dskd_core.report.discover import discover
from dskd_core.report.groups import Group, group_records
from dskd_core.report.records import METRICS, Hints, Metric


@dataclass(frozen=True)
class Report:
    metric: Metric
    groups: list[Group]
    deltas: list[Delta]
    skipped: list[tuple[str, str]]
    #: (path, reason) of every run excluded because its files could not be read (the CLI exits 1).
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def delta_for(self, group: Group) -> Delta | None:
        return next((d for d in self.deltas if d.other is group), None)

    @property
    def ungrouped_unreadable(self) -> list[tuple[str, str]]:
        """Unreadable runs that no group lists (nothing readable said which run they are)."""
        grouped = {r.path for g in self.groups for r in g.excluded}
        return [(p, r) for p, r in self.unreadable if p not in grouped]

    def as_dict(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        return {
            "metric": self.metric,
            "groups": [g.as_dict(self.metric) for g in self.groups],
            "deltas": [d.as_dict() for d in self.deltas],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
        }


def check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise UsageError(f"invalid --metric '{metric}': use best or last")
    return metric


def build_report(paths: Sequence[Path], metric: str = "best", hints: Hints | None = None) -> Report:
    """Discover, group and aggregate; a folder with nothing reportable (not even an unreadable run) is a
    usage error."""
    chosen = check_metric(metric)
    found = discover(paths, hints)
    if not found.records and not found.unreadable:
        where = ", ".join(str(p) for p in paths)
        raise UsageError(
            f"no runs found under {where}: point report at dskd run folders (runs/...) or legacy logs "
            "(worklog.txt, TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT.txt)"
        )
    groups = group_records(found.records)
    return Report(chosen, groups, deltas(groups, chosen), found.skipped, found.unreadable)
