"""Running a sweep: each run folder's status, then a queue that skips, resumes and records.

New runs that share a data stream and a teacher train in lockstep, interrupted ones resume,
failures are recorded without stopping the sweep, and with several devices one run per device
at a time. A run folder counts as finished only for the same config (``config.json`` compared
with the request by ``config_differences``); one holding another config is refused up front,
or replaced with ``overwrite``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dskd_core.config import RunConfig, Settings
from dskd_core.device import resolve_device
from dskd_core.errors import DskdError, UsageError
from dskd_core.runs.store import ReuseStatus, RunDir, RunFolder, another_config, inspect_run_dir
from dskd_core.train import fit
from dskd_core.train.fast import resolve_execution
from dskd_core.train.fused import FusedThroughput, alone_note, fit_fused, plan_fused
from dskd_core.train.lockstep import can_share, fit_lockstep, stream_key
from dskd_core.train.setup import check_teacher

Status = ReuseStatus


def resolved_for(cfg: RunConfig, device: str | torch.device) -> RunConfig:
    """``cfg`` with what it leaves to the device (fast/precision/compile "auto") decided for ``device``."""
    where = resolve_device(device) if isinstance(device, str) else device
    return cfg.model_copy(update=resolve_execution(cfg, where, cfg.world_size).as_config())


def inspect_for(cfg: RunConfig, run_dir: Path, device: str | torch.device | None = None) -> RunFolder:
    """:func:`~dskd_core.runs.store.inspect_run_dir` with ``cfg`` first resolved for ``device``, so
    an old run recorded as ``bf16`` is not the request's TF32 run; without ``device``, ``cfg`` is
    taken as resolved."""
    return inspect_run_dir(cfg if device is None else resolved_for(cfg, device), run_dir)


def run_status(cfg: RunConfig, runs_dir: Path, device: str | None = None) -> Status:
    """What the sweep does with ``cfg``'s run folder.

    ``done``: a finished run of this very config (``config.json`` equal to the request up to keys
    that do not change the run, ``epochs`` included): skipped, nothing written. ``resume``: a
    train state of this config (a finished run of fewer epochs is extended). ``new``: nothing
    committed there. ``conflict``: the folder holds another run (the sweep refuses, unless
    ``overwrite``). ``device``: what ``cfg`` leaves to the device is resolved for it first.
    """
    return inspect_for(cfg, cfg.run_dir(runs_dir), device).plan(cfg.epochs)


def check_sweep(cfgs: Sequence[RunConfig], settings: Settings, devices: Sequence[str] = ()) -> None:
    """Refuse, before anything trains (and in ``--dry-run``), what every run of the sweep would refuse: a device
    that is not there, a teacher checkpoint that is missing, unreadable or of another architecture or class
    count (each distinct one read once, from its header)."""
    for device in devices or [settings.device]:
        resolve_device(device)
    seen: set[tuple[object, ...]] = set()
    for cfg in cfgs:
        key = (cfg.dataset, cfg.teacher, cfg.teacher_ckpt, cfg.num_classes)
        if cfg.teacher and key not in seen:
            seen.add(key)
            check_teacher(cfg, settings)


def conflict_message(folders: Sequence[RunFolder]) -> str:
    """One line for the run folders of a sweep that hold other runs: the first, the count, the fixes."""
    first, rest = folders[0], len(folders) - 1
    also = f", as do {rest} more run folder{'s' if rest > 1 else ''} of this sweep" if rest else ""
    them = "them" if rest else "it"
    return (
        f"{another_config(first.path, first.conflict_keys)}{also}: pass --overwrite to replace {them} (the "
        f"sweep trains nothing until then), or another --runs-dir to train this sweep beside {them}"
    )


@dataclass
class SweepRow:
    config: RunConfig
    run_dir: Path
    status: str  # done (skipped), finished, failed
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class SweepResult:
    rows: list[SweepRow]
    speedups: list[float]  # one per lockstep group, estimated from measured times
    fused: list[FusedThroughput] = field(default_factory=list)  # one per fused group, measured
    notes: list[str] = field(default_factory=list)  # runs that could have shared a step and did not, and why


Observer = Callable[[dict[str, Any]], None]


def run_sweep(
    cfgs: Sequence[RunConfig],
    settings: Settings,
    *,
    lockstep: bool = True,
    fuse: bool = True,
    devices: Sequence[str] = (),
    observer: Observer | None = None,
    overwrite: bool = False,
) -> SweepResult:
    """Train every unfinished config; finished ones are skipped, a failure does not stop the sweep.

    With ``lockstep``, runs sharing a teacher and a data stream share its pass: on the reference path
    new runs train in lockstep (one teacher forward per batch); on the fast path, with ``fuse``, runs
    of one student architecture train as one fused step (:mod:`dskd_core.train.fused`), new or resumed.

    A run folder that holds another config (``conflict``) is refused before anything trains,
    unless ``overwrite``: then that run trains afresh over it (finished runs of the requested
    config are still skipped, unfinished ones still resumed).
    """
    rows: dict[Path, SweepRow] = {}
    folders: dict[Path, RunFolder] = {}
    statuses: dict[Path, Status] = {}
    device = devices[0] if devices else settings.device
    for cfg in cfgs:  # every folder is read before anything trains
        run_dir = cfg.run_dir(settings.runs_dir)
        folders[run_dir] = inspect_for(cfg, run_dir, device)
        statuses[run_dir] = folders[run_dir].plan(cfg.epochs)
    conflicts = [folders[d] for d, status in statuses.items() if status == "conflict"]
    if conflicts and not overwrite:
        raise UsageError(conflict_message(conflicts))
    todo: list[RunConfig] = []
    for cfg in cfgs:
        run_dir = cfg.run_dir(settings.runs_dir)
        if statuses[run_dir] == "done":  # reused as it is: read, never written
            rows[run_dir] = SweepRow(cfg, run_dir, "done", RunDir(run_dir).summary_json())
        else:
            todo.append(cfg)
    result = SweepResult([], [])
    if len(devices) > 1:
        _run_on_devices(todo, settings, devices, rows, statuses, lockstep and fuse, result)
    else:
        if devices:
            settings = settings.model_copy(update={"device": devices[0]})
        if lockstep and fuse:
            todo = _run_fused(todo, settings, observer, rows, result, statuses)
        _run_here(todo, settings, lockstep, observer, rows, result.speedups, statuses)
    result.rows = [rows[c.run_dir(settings.runs_dir)] for c in cfgs]
    return result


def _run_fused(
    todo: Sequence[RunConfig],
    settings: Settings,
    observer: Observer | None,
    rows: dict[Path, SweepRow],
    result: SweepResult,
    statuses: dict[Path, Status],
) -> list[RunConfig]:
    """Train the fused groups of ``todo``; returns the runs left to train otherwise.

    A group whose fused step fails with an error of its own (not a run's: a device or torch that cannot run
    the stacked step, memory for K students) leaves its runs to train one at a time, resumed from whatever
    they committed, and a note says why; ``statuses`` is updated for them.
    """
    groups, alone = plan_fused(todo, resolve_device(settings.device))
    result.notes = [alone_note(cfg, why) for cfg, why in alone]
    unfused: list[RunConfig] = []
    for group in groups:
        try:
            fused = fit_fused(group, settings, statuses=statuses, observer=observer)
        except DskdError as err:  # the whole group could not start: record each run
            for cfg in group:
                _record(rows, cfg, settings.runs_dir, err)
            continue
        except Exception as err:
            first = " ".join(str(err).split())[:200] or type(err).__name__
            result.notes.append(
                f"the fused group of {len(group)} {group[0].student} runs (seed {group[0].seed}) stopped "
                f"({type(err).__name__}: {first}); its runs train one at a time"
            )
            for cfg in group:
                run_dir = cfg.run_dir(settings.runs_dir)
                statuses[run_dir] = inspect_for(cfg, run_dir, settings.device).plan(cfg.epochs)
                if statuses[run_dir] == "done":  # finished before the group stopped
                    rows[run_dir] = SweepRow(cfg, run_dir, "finished", RunDir(run_dir).summary_json())
                else:
                    unfused.append(cfg)
            continue
        for cfg, outcome in zip(group, fused.results, strict=True):
            _record(rows, cfg, settings.runs_dir, outcome)
        if fused.throughput is not None:
            result.fused.append(fused.throughput)
    grouped = {id(c) for group in groups for c in group} - {id(c) for c in unfused}
    return [c for c in todo if id(c) not in grouped]  # in the sweep's order


def _record(rows: dict[Path, SweepRow], cfg: RunConfig, runs_dir: Path, outcome: Any) -> None:
    run_dir = cfg.run_dir(runs_dir)
    if isinstance(outcome, BaseException):
        rows[run_dir] = SweepRow(
            cfg, run_dir, "failed", RunDir(run_dir).summary_json(), str(outcome) or type(outcome).__name__
        )
    else:
        rows[run_dir] = SweepRow(cfg, run_dir, "finished", outcome.summary)


def _run_here(
    todo: Sequence[RunConfig],
    settings: Settings,
    lockstep: bool,
    observer: Observer | None,
    rows: dict[Path, SweepRow],
    speedups: list[float],
    statuses: Mapping[Path, Status],
) -> None:
    def status(cfg: RunConfig) -> Status:
        return statuses[cfg.run_dir(settings.runs_dir)]

    singles = [c for c in todo if not lockstep or not can_share(c, settings) or status(c) == "resume"]
    groups: dict[tuple[Any, ...], list[RunConfig]] = {}
    for cfg in todo:
        if cfg not in singles:
            groups.setdefault(stream_key(cfg), []).append(cfg)
    for group in groups.values():
        if len(group) == 1:
            singles.append(group[0])
            continue
        try:  # new runs and replaced ones (overwrite: a new run's folder holds no committed epoch)
            result = fit_lockstep(
                group, settings, observer=observer, overwrite=any(status(c) == "conflict" for c in group)
            )
        except DskdError as err:  # the whole group could not start: record each run
            for cfg in group:
                _record(rows, cfg, settings.runs_dir, err)
            continue
        for cfg, group_outcome in zip(group, result.results, strict=True):
            _record(rows, cfg, settings.runs_dir, group_outcome)
        if result.speedup is not None:
            speedups.append(result.speedup)
    for cfg in singles:
        try:
            outcome: Any = fit(
                cfg, settings, resume=status(cfg) == "resume", overwrite=status(cfg) == "conflict", observer=observer
            )
        except DskdError as err:
            outcome = err
        _record(rows, cfg, settings.runs_dir, outcome)


@dataclass
class DeviceShare:
    """What one ``--devices`` process reports: each run's summary or error (by its config's JSON), and the
    measured throughput and notes of the fused groups it trained."""

    outcomes: list[tuple[str, dict[str, Any] | str]]
    fused: list[FusedThroughput] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _device_worker(
    cfg_jsons: list[str], settings_json: str, device: str, overwrite: bool = False, fuse: bool = False
) -> DeviceShare:
    """One process per device: its runs one after another (separately, resumed where possible); with ``fuse``,
    the fused groups among them first (``_run_on_devices`` keeps a group on one device)."""
    settings = Settings.model_validate_json(settings_json).model_copy(update={"device": device, "progress": False})
    cfgs = {text: RunConfig.model_validate_json(text) for text in cfg_jsons}
    share = DeviceShare([])
    left = list(cfgs)
    if fuse:
        statuses: dict[Path, Status] = {}
        for cfg in cfgs.values():
            folder = inspect_for(cfg, cfg.run_dir(settings.runs_dir), device)
            statuses[cfg.run_dir(settings.runs_dir)] = folder.plan(cfg.epochs)
        rows: dict[Path, SweepRow] = {}
        result = SweepResult([], [])
        rest = {id(c) for c in _run_fused(list(cfgs.values()), settings, None, rows, result, statuses)}
        share.fused, share.notes = result.fused, result.notes
        left = [text for text, cfg in cfgs.items() if id(cfg) in rest]  # not in a group, or its group stopped
        for text, cfg in cfgs.items():
            row = rows.get(cfg.run_dir(settings.runs_dir))
            if id(cfg) not in rest and row is not None:
                share.outcomes.append((text, row.summary if row.status == "finished" else (row.error or "failed")))
    for text in left:
        cfg = cfgs[text]
        try:
            folder = inspect_for(cfg, cfg.run_dir(settings.runs_dir), device)
            status = folder.plan(cfg.epochs)
            if status == "conflict" and not overwrite:
                raise UsageError(conflict_message([folder]))
            result_ = fit(cfg, settings, resume=status == "resume", overwrite=status == "conflict")
            share.outcomes.append((text, result_.summary))
        except DskdError as err:
            share.outcomes.append((text, str(err)))
    return share


def _run_on_devices(
    todo: Sequence[RunConfig],
    settings: Settings,
    devices: Sequence[str],
    rows: dict[Path, SweepRow],
    statuses: Mapping[Path, Status],
    fuse: bool,
    result: SweepResult,
) -> None:
    """One process per device, each with its share of the runs; a fused group (``fuse``) stays on one device.
    Shares are balanced by run count, the largest groups placed first."""
    units: list[list[RunConfig]] = [[c] for c in todo]
    if fuse:
        groups, alone = plan_fused(todo, resolve_device(devices[0]))
        result.notes = [alone_note(cfg, why) for cfg, why in alone]
        grouped = {id(c) for group in groups for c in group}
        units = [*groups, *([c] for c in todo if id(c) not in grouped)]
    shares: list[list[str]] = [[] for _ in devices]
    loads = [0] * len(devices)
    for unit in sorted(units, key=len, reverse=True):  # stable: single runs keep the sweep's order
        least = loads.index(min(loads))
        shares[least].extend(cfg.model_dump_json() for cfg in unit)
        loads[least] += len(unit)
    by_json = {cfg.model_dump_json(): cfg for cfg in todo}
    # Conflicts reach here only under --overwrite (run_sweep refused them otherwise).
    overwrite = any(statuses[cfg.run_dir(settings.runs_dir)] == "conflict" for cfg in todo)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(devices), mp_context=context) as pool:
        futures = [
            pool.submit(_device_worker, share, settings.model_dump_json(), dev, overwrite, fuse)
            for share, dev in zip(shares, devices, strict=True)
            if share
        ]
        for future in futures:
            report = future.result()
            result.fused.extend(report.fused)
            result.notes.extend(n for n in report.notes if n not in result.notes)  # its own: a group that stopped
            for text, outcome in report.outcomes:
                cfg = by_json[text]
                run_dir = cfg.run_dir(settings.runs_dir)
                if isinstance(outcome, str):
                    rows[run_dir] = SweepRow(cfg, run_dir, "failed", RunDir(run_dir).summary_json(), outcome)
                else:
                    rows[run_dir] = SweepRow(cfg, run_dir, "finished", outcome)


def plan_rows(
    cfgs: Sequence[RunConfig],
    runs_dir: Path,
    *,
    overwrite: bool = False,
    device: str | None = None,
    fuse: bool = False,
) -> list[dict[str, Any]]:
    """What ``--dry-run`` shows: each run's name, folder and whether it would be skipped, resumed or
    (a folder holding another config) refused — ``conflict``, or ``overwrite`` with ``overwrite`` —
    with the keys that differ. With ``fuse`` (a local sweep's lockstep and fusing on), also the fused group
    each run would train in (``fused_group``, of ``fused`` runs), or why a run of a shared stream would
    train alone (``not_fused``), as :func:`run_sweep` decides on ``device``."""
    rows = []
    folders = [inspect_for(c, c.run_dir(runs_dir), device) for c in cfgs]  # each folder read once
    plans: list[str] = [folder.plan(c.epochs) for folder, c in zip(folders, cfgs, strict=True)]
    fused: dict[int, tuple[int, int]] = {}  # id(config) -> (its group, the group's size)
    why_alone: dict[int, str] = {}
    if fuse:
        trains = [
            c
            for c, plan in zip(cfgs, plans, strict=True)
            if plan in ("new", "resume") or (plan == "conflict" and overwrite)
        ]
        groups, alone = plan_fused(trains, resolve_device(device or "auto"))
        fused = {id(c): (i, len(group)) for i, group in enumerate(groups) for c in group}
        why_alone = {id(c): why for c, why in alone}
    for c, folder, status in zip(cfgs, folders, plans, strict=True):
        rows.append(
            {
                "method": c.method,
                "teacher": c.teacher,
                "student": c.student,
                "dataset": c.dataset,
                "seed": c.seed,
                "run": c.run_name,
                "run_dir": str(c.run_dir(runs_dir)),
                "status": "overwrite" if status == "conflict" and overwrite else status,
                "differs": list(folder.conflict_keys) if status == "conflict" else [],
                **(_fused_keys(fused.get(id(c)), why_alone.get(id(c))) if fuse else {}),
            }
        )
    return rows


def _fused_keys(group: tuple[int, int] | None, why_alone: str | None) -> dict[str, Any]:
    """A dry-run row's fused group (``fused_group``: its index, ``fused``: its size), or why it trains alone."""
    index, size = group if group is not None else (None, None)
    return {"fused": size, "fused_group": index, "not_fused": why_alone}


def summary_rows(result: SweepResult) -> list[Mapping[str, Any]]:
    return [
        {
            "run": r.config.run_name,
            "seed": r.config.seed,
            "status": r.status,
            "best_acc": r.summary.get("best_acc"),
            "last_acc": r.summary.get("last_acc"),
            "run_dir": str(r.run_dir),
            "error": r.error,
        }
        for r in result.rows
    ]
