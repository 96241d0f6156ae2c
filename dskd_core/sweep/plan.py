"""A sweep's runs: the DSKD README's grid for one method and pair, or an arbitrary grid from a TOML plan,
each resolved to its run config (duplicates, i.e. runs that land in one folder, removed)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dskd_core._compat import tomllib
from dskd_core.config import RunConfig, parse_scales
from dskd_core.errors import UsageError
from dskd_core.presets import check_source
from dskd_core.resolve import parse_overrides, resolve_run_config

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
    aug: bool = False

    def configs(self, runs_dir: Path) -> list[RunConfig]:
        """The run configs: the plan's, or the grid scales × plain/--stand × seeds of the pair."""
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
            "aug": self.aug or None,
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
