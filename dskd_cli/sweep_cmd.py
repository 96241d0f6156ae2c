"""``dskd sweep``: the DSKD README's grid (or a TOML plan) as one resumable command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dskd_cli import render
from dskd_core.errors import UsageError


def sweep(
    method: Annotated[str | None, typer.Argument(help="kd, dkd, rld, … (omit with --plan).")] = None,
    teacher: Annotated[str | None, typer.Argument(help="Teacher model.")] = None,
    student: Annotated[str | None, typer.Argument(help="Student model.")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. 0,1,2.")] = "0,1,2",
    scales_grid: Annotated[str, typer.Option(help="Scale sets separated by ';'.")] = "1;1,2;1,2,4",
    stand: Annotated[str, typer.Option("--stand", help="both, on or off: runs with/without --stand.")] = "both",
    plan: Annotated[Path | None, typer.Option(help="TOML plan of arbitrary grids (see README).")] = None,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="cifar100, digits or synthetic.")] = "cifar100",
    epochs: Annotated[int | None, typer.Option(help="Epochs of every run.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base LR.")] = None,
    base_temp: Annotated[float | None, typer.Option(help="--base-temp of the --stand runs.")] = None,
    kd_weight: Annotated[float | None, typer.Option(help="--kd-weight of the --stand runs.")] = None,
    teacher_ckpt: Annotated[Path | None, typer.Option(help="Teacher checkpoint file or run folder.")] = None,
    preset_source: Annotated[
        str | None, typer.Option(help="Paper preset values from dskd (default: DSKD's config files) or mdistiller.")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a run-config key (repeatable).")] = None,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Deterministic kernels.")] = False,
    lockstep: Annotated[
        bool, typer.Option(help="Train runs sharing teacher and data stream together (one teacher forward).")
    ] = True,
    devices: Annotated[str | None, typer.Option(help="Devices, one run per device at a time: cuda:0,cuda:1.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Datasets folder.")] = None,
    teachers_dir: Annotated[Path | None, typer.Option(help="Teacher checkpoints folder.")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Where runs are written.")] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Train afresh over run folders that hold another config (else the sweep refuses them).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the plan (run names, folders, skip/resume/conflict) and exit.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Run a grid of trainings: scales x plain/--stand x seeds by default; finished runs of its config are skipped."""
    from dskd_core.config import Settings
    from dskd_core.resolve import parse_overrides
    from dskd_core.sweep import grid_configs, parse_scales_grid, parse_seeds, plan_configs, plan_rows, run_sweep
    from dskd_core.sweep import stand_modes as parse_stand

    if fmt not in ("table", "json"):
        raise UsageError(f"invalid --format '{fmt}': use table or json")
    from dskd_core.presets import check_source

    check_source(preset_source)
    if plan is not None and preset_source is not None:
        raise UsageError("--preset-source goes in the plan file with --plan: set preset_source there")
    given: dict[str, Any] = {
        k: v
        for k, v in {"device": device, "data_dir": data_dir, "teachers_dir": teachers_dir, "runs_dir": runs_dir}.items()
        if v is not None
    }
    settings = Settings(**given)
    if plan is not None:
        if method or teacher or student:
            raise UsageError("--plan replaces METHOD TEACHER STUDENT: pass one or the other")
        cfgs = plan_configs(plan, settings.runs_dir)
    else:
        if not method or not student:
            raise UsageError("dskd sweep METHOD TEACHER STUDENT (or --plan FILE): a method and a pair are needed")
        flags: dict[str, Any] = {
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "teacher_ckpt": str(teacher_ckpt) if teacher_ckpt else None,
            "deterministic": deterministic or None,
        }
        cfgs = grid_configs(
            method,
            teacher,
            student,
            runs_dir=settings.runs_dir,
            scales_grid=parse_scales_grid(scales_grid),
            stands=parse_stand(stand),
            seeds=parse_seeds(seeds),
            dataset=dataset,
            flags=flags,
            stand_base_temp=base_temp,
            stand_kd_weight=kd_weight,
            preset_source=preset_source,
            overrides=parse_overrides(set_ or []),
        )
    if dry_run:
        render.sweep_plan(plan_rows(cfgs, settings.runs_dir, overwrite=overwrite, device=settings.device), fmt)
        return
    device_list = [d.strip() for d in devices.split(",") if d.strip()] if devices else []
    with render.training_progress(render.progress_enabled(settings.progress)) as observer:
        result = run_sweep(
            cfgs, settings, lockstep=lockstep, devices=device_list, observer=observer, overwrite=overwrite
        )
    render.sweep_result(result, fmt)
    if any(row.status == "failed" for row in result.rows):
        raise typer.Exit(1)
