"""Sweeps: a grid of runs → canonical run folders → a queue that skips, resumes and records.

``grid_configs`` builds the DSKD README's grid for one method and pair (scales × plain/--stand ×
seeds, duplicates removed); ``plan_configs`` reads an arbitrary grid from a TOML plan;
``run_sweep`` trains what is not finished yet: new runs that share a data stream and a teacher
in lockstep, interrupted ones resumed, failures recorded without stopping the sweep, and with
several devices one run per device at a time. A run folder counts as finished only for the same
config (``config.json`` compared with the request by ``config_differences``); one holding
another config is refused up front, or replaced with ``overwrite``.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dskd_core._compat import tomllib
from dskd_core.config import RunConfig, Settings, parse_scales
from dskd_core.errors import DskdError, UsageError
from dskd_core.resolve import resolve_run_config
from dskd_core.train.rundir import ReuseStatus, RunFolder, another_config, inspect_run_dir

Status = ReuseStatus
DEFAULT_SCALES_GRID = ([1], [1, 2], [1, 2, 4])


def parse_scales_grid(text: str) -> list[list[int]]:
    """``"1;1,2;1,2,4"`` → ``[[1], [1, 2], [1, 2, 4]]``."""
    parts = [p for p in text.split(";") if p.strip()]
    if not parts:
        raise UsageError(f"invalid --scales-grid '{text}': separate scale sets with ';', e.g. \"1;1,2;1,2,4\"")
    return [parse_scales(p) for p in parts]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise UsageError(f"invalid --seeds '{text}': use comma-separated integers, e.g. 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"invalid --seeds '{text}': use distinct non-negative integers, e.g. 0,1,2")
    return seeds


def stand_modes(text: str) -> list[bool]:
    modes = {"both": [False, True], "on": [True], "off": [False]}
    if text not in modes:
        raise UsageError(f"invalid --stand '{text}': use both, on or off")
    return modes[text]


def unique_runs(cfgs: Iterable[RunConfig], runs_dir: Path) -> list[RunConfig]:
    """Drop configs that land in a run folder already planned (e.g. ``[1]`` twice)."""
    seen: dict[Path, RunConfig] = {}
    for cfg in cfgs:
        seen.setdefault(cfg.run_dir(runs_dir), cfg)
    return list(seen.values())


def grid_configs(
    method: str,
    teacher: str | None,
    student: str,
    *,
    runs_dir: Path,
    scales_grid: Sequence[Sequence[int]] = DEFAULT_SCALES_GRID,
    stands: Sequence[bool] = (False, True),
    seeds: Sequence[int] = (0, 1, 2),
    **resolve: Any,
) -> list[RunConfig]:
    """The DSKD README's grid for one method and pair; ``resolve`` goes to ``resolve_run_config``."""
    flags = dict(resolve.pop("flags", None) or {})
    cfgs = [
        resolve_run_config(
            method=method,
            teacher=teacher,
            student=student,
            flags={**flags, "scales": list(scales), "stand": stand, "seed": seed},
            **resolve,
        )
        for seed, stand, scales in itertools.product(seeds, stands, scales_grid)
    ]
    return unique_runs(cfgs, runs_dir)


def plan_configs(path: Path, runs_dir: Path) -> list[RunConfig]:
    """An arbitrary grid from TOML: ``[defaults]`` (run-config keys) and ``[[grid]]`` tables whose list
    values are crossed (``method``, ``pair = ["resnet32x4:resnet8x4", …]``, ``seed``, ``scales``, …).
    ``base_temp``/``stand_kd_weight`` are the --base-temp/--kd-weight values used with ``stand``."""
    try:
        plan = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"plan file {path} not found: check the --plan path") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"plan file {path} is not valid TOML ({err}): fix it") from None
    defaults = dict(plan.get("defaults", {}))
    grids = plan.get("grid", [])
    if not grids:
        raise UsageError(f'plan file {path} has no [[grid]] table: add one, e.g. method = ["kd", "dkd"]')
    cfgs = []
    for grid in grids:
        table = {**defaults, **grid}
        axes = {key: _axis(key, value) for key, value in table.items()}
        keys = list(axes)
        for combo in itertools.product(*(axes[k] for k in keys)):
            cfgs.append(_plan_entry(dict(zip(keys, combo, strict=True)), path))
    return unique_runs(cfgs, runs_dir)


#: Keys whose single value is itself a list: a grid over them is a list of lists.
LIST_VALUED = frozenset({"scales", "lr_decay_epochs"})


def _axis(key: str, value: Any) -> list[Any]:
    if key in LIST_VALUED:
        return value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    return value if isinstance(value, list) else [value]


def _plan_entry(values: dict[str, Any], path: Path) -> RunConfig:
    pair = values.pop("pair", None)
    if pair is not None:
        teacher, _, student = str(pair).partition(":")
        values.setdefault("teacher", teacher or None)
        values.setdefault("student", student or teacher)
    method, student = values.pop("method", None), values.pop("student", None)
    if not method or not student:
        raise UsageError(f'plan file {path}: every run needs a method and a student (or pair = "T:S")')
    teacher, dataset = values.pop("teacher", None), values.pop("dataset", "cifar100")
    base_temp, stand_kd = values.pop("base_temp", None), values.pop("stand_kd_weight", None)
    return resolve_run_config(
        method=method,
        student=student,
        teacher=teacher,
        dataset=dataset,
        flags=values,
        stand_base_temp=base_temp,
        stand_kd_weight=stand_kd,
    )


def run_status(cfg: RunConfig, runs_dir: Path, device: str | None = None) -> Status:
    """What the sweep does with ``cfg``'s run folder.

    ``done``: a finished run of this very config (``config.json`` equal to the request up to keys
    that do not change the run, ``epochs`` included): skipped, nothing written. ``resume``: a
    train state of this config (a finished run of fewer epochs is extended). ``new``: nothing
    committed there. ``conflict``: the folder holds another run (the sweep refuses, unless
    ``overwrite``). ``device``: what ``cfg`` leaves to the device is resolved for it first.
    """
    return inspect_run_dir(cfg, cfg.run_dir(runs_dir), device).plan(cfg.epochs)


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


Observer = Callable[[dict[str, Any]], None]


def run_sweep(
    cfgs: Sequence[RunConfig],
    settings: Settings,
    *,
    lockstep: bool = True,
    devices: Sequence[str] = (),
    observer: Observer | None = None,
    overwrite: bool = False,
) -> SweepResult:
    """Train every unfinished config; finished ones are skipped, a failure does not stop the sweep.

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
        folders[run_dir] = inspect_run_dir(cfg, run_dir, device)
        statuses[run_dir] = folders[run_dir].plan(cfg.epochs)
    conflicts = [folders[d] for d, status in statuses.items() if status == "conflict"]
    if conflicts and not overwrite:
        raise UsageError(conflict_message(conflicts))
    todo: list[RunConfig] = []
    for cfg in cfgs:
        run_dir = cfg.run_dir(settings.runs_dir)
        if statuses[run_dir] == "done":  # reused as it is: read, never written
            rows[run_dir] = SweepRow(cfg, run_dir, "done", _read_summary(run_dir))
        else:
            todo.append(cfg)
    speedups: list[float] = []
    if len(devices) > 1:
        _run_on_devices(todo, settings, devices, rows, statuses)
    else:
        if devices:
            settings = settings.model_copy(update={"device": devices[0]})
        _run_here(todo, settings, lockstep, observer, rows, speedups, statuses)
    return SweepResult([rows[c.run_dir(settings.runs_dir)] for c in cfgs], speedups)


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _record(rows: dict[Path, SweepRow], cfg: RunConfig, runs_dir: Path, outcome: Any) -> None:
    run_dir = cfg.run_dir(runs_dir)
    if isinstance(outcome, BaseException):
        rows[run_dir] = SweepRow(cfg, run_dir, "failed", _read_summary(run_dir), str(outcome) or type(outcome).__name__)
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
    from dskd_core.train import fit
    from dskd_core.train.lockstep import can_share, fit_lockstep, stream_key

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


def _device_worker(
    cfg_jsons: list[str], settings_json: str, device: str, overwrite: bool = False
) -> list[tuple[str, dict[str, Any] | str]]:
    """One process per device: its runs one after another (separately, resumed where possible)."""
    from dskd_core.train import fit

    settings = Settings.model_validate_json(settings_json).model_copy(update={"device": device, "progress": False})
    out: list[tuple[str, dict[str, Any] | str]] = []
    for text in cfg_jsons:
        cfg = RunConfig.model_validate_json(text)
        try:
            folder = inspect_run_dir(cfg, cfg.run_dir(settings.runs_dir), device)
            status = folder.plan(cfg.epochs)
            if status == "conflict" and not overwrite:
                raise UsageError(conflict_message([folder]))
            result = fit(cfg, settings, resume=status == "resume", overwrite=status == "conflict")
            out.append((text, result.summary))
        except DskdError as err:
            out.append((text, str(err)))
    return out


def _run_on_devices(
    todo: Sequence[RunConfig],
    settings: Settings,
    devices: Sequence[str],
    rows: dict[Path, SweepRow],
    statuses: Mapping[Path, Status],
) -> None:
    shares: list[list[str]] = [[] for _ in devices]
    for i, cfg in enumerate(todo):
        shares[i % len(devices)].append(cfg.model_dump_json())
    by_json = {cfg.model_dump_json(): cfg for cfg in todo}
    # Conflicts reach here only under --overwrite (run_sweep refused them otherwise).
    overwrite = any(statuses[cfg.run_dir(settings.runs_dir)] == "conflict" for cfg in todo)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(devices), mp_context=context) as pool:
        futures = [
            pool.submit(_device_worker, share, settings.model_dump_json(), dev, overwrite)
            for share, dev in zip(shares, devices, strict=True)
            if share
        ]
        for future in futures:
            for text, outcome in future.result():
                cfg = by_json[text]
                run_dir = cfg.run_dir(settings.runs_dir)
                if isinstance(outcome, str):
                    rows[run_dir] = SweepRow(cfg, run_dir, "failed", _read_summary(run_dir), outcome)
                else:
                    rows[run_dir] = SweepRow(cfg, run_dir, "finished", outcome)


def plan_rows(
    cfgs: Sequence[RunConfig], runs_dir: Path, *, overwrite: bool = False, device: str | None = None
) -> list[dict[str, Any]]:
    """What ``--dry-run`` shows: each run's name, folder and whether it would be skipped, resumed or
    (a folder holding another config) refused — ``conflict``, or ``overwrite`` with ``overwrite`` —
    with the keys that differ."""
    rows = []
    for c in cfgs:
        folder = inspect_run_dir(c, c.run_dir(runs_dir), device)
        status: str = folder.plan(c.epochs)
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
            }
        )
    return rows


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


@dataclass(frozen=True)
class SweepRequest:
    """What ``dskd sweep`` asks for: a grid for one method and pair, or a TOML ``plan``, as given."""

    method: str | None = None
    teacher: str | None = None
    student: str | None = None
    seeds: str = "0,1,2"
    scales_grid: str = "1;1,2;1,2,4"
    stand: str = "both"
    plan: Path | None = None
    dataset: str = "cifar100"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    base_temp: float | None = None
    kd_weight: float | None = None
    teacher_ckpt: Path | None = None
    preset_source: str | None = None
    overrides: Sequence[str] = ()
    deterministic: bool = False

    def configs(self, runs_dir: Path) -> list[RunConfig]:
        """The run configs: the plan's, or the grid scales × plain/--stand × seeds of the pair."""
        from dskd_core.presets import check_source
        from dskd_core.resolve import parse_overrides

        check_source(self.preset_source)
        if self.plan is not None and self.preset_source is not None:
            raise UsageError("--preset-source goes in the plan file with --plan: set preset_source there")
        if self.plan is not None:
            if self.method or self.teacher or self.student:
                raise UsageError("--plan replaces METHOD TEACHER STUDENT: pass one or the other")
            return plan_configs(self.plan, runs_dir)
        if not self.method or not self.student:
            raise UsageError("dskd sweep METHOD TEACHER STUDENT (or --plan FILE): a method and a pair are needed")
        flags: dict[str, Any] = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "teacher_ckpt": str(self.teacher_ckpt) if self.teacher_ckpt else None,
            "deterministic": self.deterministic or None,
        }
        return grid_configs(
            self.method,
            self.teacher,
            self.student,
            runs_dir=runs_dir,
            scales_grid=parse_scales_grid(self.scales_grid),
            stands=stand_modes(self.stand),
            seeds=parse_seeds(self.seeds),
            dataset=self.dataset,
            flags=flags,
            stand_base_temp=self.base_temp,
            stand_kd_weight=self.kd_weight,
            preset_source=self.preset_source,
            overrides=parse_overrides(list(self.overrides)),
        )


def parse_devices(text: str | None) -> list[str]:
    """``--devices cuda:0,cuda:1`` as a list; none given: ``[]``."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else []
