"""``dskd runs``: the dskd run folders under a path, filtered, and one run's config, summary and last events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from dskd_core.errors import UsageError
from dskd_core.report.discover import discover
from dskd_core.report.records import RunRecord
from dskd_core.runlock import RunLock
from dskd_core.runs.layout import SUMMARY_FILE
from dskd_core.runs.records import RunStatus
from dskd_core.runs.store import RunDir, UnreadableRun, is_run_dir, read_events, read_json

#: The statuses ``dskd runs`` shows: ``summary.json``'s (``running`` only while a live process holds the
#: folder), ``unfinished`` for a run killed or not yet past its first epoch, ``unreadable`` for broken files.
RUN_STATUSES = (*get_args(RunStatus), "unfinished", "unreadable")


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
    runs = [_live_status(r) for r in discover(paths).records if r.source == "dskd"]
    return [
        r
        for r in runs
        if (status is None or r.status == status)
        and (method is None or r.method == method)
        and (dataset is None or r.dataset == dataset)
    ]


def _live_status(record: RunRecord) -> RunRecord:
    """A run whose summary says ``running`` but whose folder no live process holds was killed: ``unfinished``
    (``--resume`` continues it)."""
    if record.status == "running" and not RunLock.held(Path(record.path)):
        return replace(record, status="unfinished")
    return record


@dataclass(frozen=True)
class RunView:
    """One run folder as ``dskd runs show`` prints it."""

    path: Path
    config: dict[str, Any]  # config.json: the effective, resolved run config
    summary: dict[str, Any]  # summary.json ({} before the first epoch)
    events: list[dict[str, Any]]  # the last events of log.jsonl, oldest first


def show_run(path: Path, last: int = 5) -> RunView:
    """The config, summary and last ``last`` events of the run folder holding ``path`` (the folder or a file in it)."""
    if not path.exists():
        raise UsageError(f"{path} not found: pass a run folder (dskd runs lists them)")
    start = path if path.is_dir() else path.parent
    folder = next((p for p in (start, *start.parents) if is_run_dir(p) or (p / SUMMARY_FILE).is_file()), None)
    if folder is None:
        raise UsageError(f"{path} is not in a dskd run folder (no config.json or summary.json): dskd runs lists them")
    run = RunDir(folder)
    try:
        config = read_json(run.config_path, strict=True) if run.config_path.exists() else {}
        summary = read_json(run.summary_path, strict=True) if run.summary_path.exists() else {}
        events = read_events(run.log_path)
    except (UnreadableRun, OSError) as err:
        raise UsageError(f"{folder} cannot be read ({err}): check the folder's files and permissions") from None
    return RunView(folder, config, summary, events[-last:] if last > 0 else [])
