"""``dskd sweep``: the DSKD README's grid (or a TOML plan) as one resumable command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import (
    AUG_HELP,
    TABLE_JSON,
    SweepDataDir,
    SweepDevice,
    SweepRunsDir,
    SweepTeachersDir,
    TableJsonFormat,
    check_format,
)
from dskd_core.config import settings_from


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
    aug: Annotated[bool, typer.Option("--aug", help=AUG_HELP)] = False,
    lockstep: Annotated[
        bool, typer.Option(help="Train runs sharing teacher and data stream together (one teacher forward).")
    ] = True,
    devices: Annotated[str | None, typer.Option(help="Devices, one run per device at a time: cuda:0,cuda:1.")] = None,
    device: SweepDevice = None,
    data_dir: SweepDataDir = None,
    teachers_dir: SweepTeachersDir = None,
    runs_dir: SweepRunsDir = None,
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
    fmt: TableJsonFormat = "table",
) -> None:
    """Run a grid of trainings: scales x plain/--stand x seeds by default; finished runs of its config are skipped."""
    from dskd_core.sweep import SweepRequest, parse_devices, plan_rows, run_sweep

    check_format(fmt, TABLE_JSON)
    settings = settings_from(device=device, data_dir=data_dir, teachers_dir=teachers_dir, runs_dir=runs_dir)
    request = SweepRequest(
        method=method,
        teacher=teacher,
        student=student,
        seeds=seeds,
        scales_grid=scales_grid,
        stand=stand,
        plan=plan,
        dataset=dataset,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        base_temp=base_temp,
        kd_weight=kd_weight,
        teacher_ckpt=teacher_ckpt,
        preset_source=preset_source,
        overrides=set_ or [],
        deterministic=deterministic,
        aug=aug,
    )
    cfgs = request.configs(settings.runs_dir)
    if dry_run:
        render.sweep_plan(plan_rows(cfgs, settings.runs_dir, overwrite=overwrite, device=settings.device), fmt)
        return
    with render.progress_for(settings.progress) as observer:
        result = run_sweep(
            cfgs, settings, lockstep=lockstep, devices=parse_devices(devices), observer=observer, overwrite=overwrite
        )
    render.sweep_result(result, fmt)
    if any(row.status == "failed" for row in result.rows):
        raise typer.Exit(1)
