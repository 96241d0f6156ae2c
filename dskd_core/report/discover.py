"""Finding runs: dskd run folders and legacy logs under the given paths."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from dskd_core.errors import UsageError
from dskd_core.report.dskd import read_dskd_run
from dskd_core.report.legacy import LSKD_NAME, read_lskd_log, read_worklog
from dskd_core.report.records import UNREADABLE, Discovery, Hints, RunRecord, UnreadableRun
from dskd_core.runs.layout import CONFIG_FILE, LOG_FILE, SUMMARY_FILE
from dskd_core.runs.store import error_reason

_SKIP_DIRS = frozenset({"checkpoints", "train.events", "__pycache__"})


def discover(paths: Sequence[Path], hints: Hints | None = None) -> Discovery:
    """Every run under ``paths`` (folders are walked, a run folder may be given itself; files are read
    as logs), in path order. Unreadable runs are collected, never raised: see :class:`Discovery`."""
    hints = hints or Hints()
    records: list[RunRecord] = []
    skipped: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise UsageError(f"{root} not found: pass folders holding dskd runs or legacy logs")
        for kind, path in _candidates(root):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                record = _read(kind, path, hints)
            except UnreadableRun as err:
                unreadable.append((str(path), str(err)))
                continue
            except (OSError, ValueError) as err:
                unreadable.append((str(path), f"{path.name} cannot be read ({error_reason(err)})"))
                continue
            if record is None:
                why = "no method/student in summary.json or config.json" if kind == "dskd" else "no epoch blocks"
                skipped.append((str(path), why))
                continue
            records.append(record)
            if record.status == UNREADABLE:
                unreadable.append((record.path, record.error or UNREADABLE))
    return Discovery(records, skipped, unreadable)


def _candidates(root: Path) -> Iterator[tuple[str, Path]]:
    """("dskd", run folder) | ("worklog", file) | ("lskd", file), walking folders in sorted order."""
    if root.is_file():
        if root.name in (SUMMARY_FILE, CONFIG_FILE, LOG_FILE):
            yield "dskd", root.parent
        elif root.name == "worklog.txt":
            yield "worklog", root
        elif LSKD_NAME.match(root.name):
            yield "lskd", root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        here = Path(folder)
        if SUMMARY_FILE in files or (CONFIG_FILE in files and LOG_FILE in files):
            dirs[:] = []  # a run folder holds nothing else to report
            yield "dskd", here
            continue
        for name in sorted(files):
            if name == "worklog.txt":
                yield "worklog", here / name
            elif LSKD_NAME.match(name):
                yield "lskd", here / name


def _read(kind: str, path: Path, hints: Hints) -> RunRecord | None:
    if kind == "dskd":
        return read_dskd_run(path)
    if kind == "lskd":
        return read_lskd_log(path)
    return read_worklog(path, hints)
