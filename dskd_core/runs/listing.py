"""``dskd runs``: the dskd run folders under a path, filtered, and one run's config, summary and last events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dskd_core.errors import UsageError
from dskd_core.report.discover import discover
from dskd_core.report.records import RunRecord
from dskd_core.runs.store import RunDir, is_run_dir

#: The statuses a run folder can be in (``summary.json``'s, or ``unfinished`` when it has none).
RUN_STATUSES = ("finished", "running", "failed", "interrupted", "unfinished", "unreadable")


def list_runs(
    paths: Sequence[Path],
    *,
    status: str | None = None,
    method: str | None = None,
    dataset: str | None = None,
) -> list[RunRecord]:
    """The dskd runs under ``paths`` (legacy logs are ``dskd report``'s), in folder order, filtered."""
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"invalid --status '{status}': use one of {', '.join(RUN_STATUSES)}")
    runs = [r for r in discover(paths).records if r.source == "dskd"]
    return [
        r
        for r in runs
        if (status is None or r.status == status)
        and (method is None or r.method == method)
        and (dataset is None or r.dataset == dataset)
    ]


@dataclass(frozen=True)
class RunView:
    """One run folder as ``dskd runs show`` prints it."""

    path: Path
    config: dict[str, Any]  # config.json: the effective, resolved run config
    summary: dict[str, Any]  # summary.json ({} before the first epoch)
    events: list[dict[str, Any]]  # the last events of log.jsonl, oldest first


def show_run(path: Path, last: int = 5) -> RunView:
    """The config, summary and last ``last`` events of the run folder ``path`` (its summary.json or log also do)."""
    folder = path.parent if path.is_file() else path
    if not folder.exists():
        raise UsageError(f"{path} not found: pass a run folder (dskd runs lists them)")
    if not is_run_dir(folder):
        raise UsageError(f"{folder} is not a dskd run folder (no config.json): dskd runs lists them")
    run = RunDir(folder)
    events = run.raw_events()
    return RunView(folder, run.config(), run.summary_json(), events[-last:] if last > 0 else [])
