"""``dskd sweep``: the DSKD README's grid (or a TOML plan) as one resumable command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.invocation import status_command
from dskd_cli.options import (
    AUG_HELP,
    CLUSTER_PANEL,
    DATA_PANEL,
    EXECUTION_PANEL,
    GRID_PANEL,
    METHOD_PANEL,
    OUTPUT_PANEL,
    RECIPE_PANEL,
    TABLE_JSON,
    Log,
    SweepDataDir,
    SweepDevice,
    SweepFormat,
    SweepRunsDir,
    SweepTeachersDir,
    Threads,
    check_format,
    complete_launcher,
    complete_preset_source,
    note_busy_cpu,
)
from dskd_core.config import settings_from


def sweep(
    method: Annotated[str | None, typer.Argument(help="kd, dkd, rld, … (omit with --plan).")] = None,
    teacher: Annotated[str | None, typer.Argument(help="Teacher model.")] = None,
    student: Annotated[str | None, typer.Argument(help="Student model.")] = None,
    seeds: Annotated[str, typer.Option(help="Seeds, e.g. 0,1,2.", rich_help_panel=GRID_PANEL)] = "0,1,2",
    scales_grid: Annotated[
        str, typer.Option(help="Scale sets separated by ';'.", metavar="GRID", rich_help_panel=GRID_PANEL)
    ] = "1;1,2;1,2,4",
    stand: Annotated[
        str, typer.Option("--stand", help="both, on or off: runs with/without --stand.", rich_help_panel=GRID_PANEL)
    ] = "both",
    plan: Annotated[
        Path | None, typer.Option(help="TOML plan of arbitrary grids (see README).", rich_help_panel=GRID_PANEL)
    ] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="cifar100, digits or synthetic.", rich_help_panel=DATA_PANEL)
    ] = "cifar100",
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Epochs of every run (recipe: 240 on cifar100, 1 of 8 passes on digits).", rich_help_panel=RECIPE_PANEL
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size.", rich_help_panel=RECIPE_PANEL)] = None,
    lr: Annotated[float | None, typer.Option(help="Base LR.", rich_help_panel=RECIPE_PANEL)] = None,
    base_temp: Annotated[
        float | None, typer.Option(help="--base-temp of the --stand runs.", rich_help_panel=METHOD_PANEL)
    ] = None,
    kd_weight: Annotated[
        float | None, typer.Option(help="--kd-weight of the --stand runs.", rich_help_panel=METHOD_PANEL)
    ] = None,
    teacher_ckpt: Annotated[
        Path | None, typer.Option(help="Teacher checkpoint file or run folder.", rich_help_panel=DATA_PANEL)
    ] = None,
    preset_source: Annotated[
        str | None,
        typer.Option(
            help="Paper preset values from dskd (default: DSKD's config files) or mdistiller.",
            autocompletion=complete_preset_source,
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a run-config key (repeatable).", metavar="KEY=VALUE", rich_help_panel=RECIPE_PANEL
        ),
    ] = None,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic kernels.", rich_help_panel=EXECUTION_PANEL)
    ] = False,
    aug: Annotated[bool, typer.Option("--aug", help=AUG_HELP, rich_help_panel=RECIPE_PANEL)] = False,
    lockstep: Annotated[
        bool,
        typer.Option(
            help="Train runs sharing teacher and data stream together (one teacher forward).",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = True,
    fuse: Annotated[
        bool,
        typer.Option(
            help="On the fast path (CUDA's default), train runs of one teacher, data stream and student "
            "architecture as one fused step: students stacked, one teacher forward (--no-fuse: one at a time).",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = True,
    devices: Annotated[
        str | None,
        typer.Option(help="Devices, one run per device at a time: cuda:0,cuda:1.", rich_help_panel=EXECUTION_PANEL),
    ] = None,
    device: SweepDevice = None,
    data_dir: SweepDataDir = None,
    teachers_dir: SweepTeachersDir = None,
    runs_dir: SweepRunsDir = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Train afresh over run folders that hold another config (else the sweep refuses them).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    threads: Threads = None,
    log: Log = None,
    launcher: Annotated[
        str,
        typer.Option(
            help="local (here, the default) or slurm: each run, or lockstep group, one task of one Slurm job array "
            "(submitit; pip install 'dskd[slurm]'), the runs folder on a filesystem the nodes share.",
            autocompletion=complete_launcher,
            rich_help_panel=CLUSTER_PANEL,
        ),
    ] = "local",
    partition: Annotated[str | None, typer.Option(help="Slurm partition.", rich_help_panel=CLUSTER_PANEL)] = None,
    time: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="MINUTES",
            help="Each job's time limit (default 60); a longer run checkpoints at the signal and requeues.",
            rich_help_panel=CLUSTER_PANEL,
        ),
    ] = None,
    gpus_per_job: Annotated[
        int | None, typer.Option(min=0, help="GPUs per job (one per run is the usual).", rich_help_panel=CLUSTER_PANEL)
    ] = None,
    cpus_per_job: Annotated[
        int | None, typer.Option(min=1, help="CPUs per job.", rich_help_panel=CLUSTER_PANEL)
    ] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account.", rich_help_panel=CLUSTER_PANEL)] = None,
    sbatch: Annotated[
        list[str] | None,
        typer.Option(
            metavar="OPTION",
            help="An extra #SBATCH option, e.g. --sbatch=--qos=high (repeatable).",
            rich_help_panel=CLUSTER_PANEL,
        ),
    ] = None,
    max_running: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many of the array's tasks at once.", rich_help_panel=CLUSTER_PANEL),
    ] = None,
    status: Annotated[
        bool,
        typer.Option(
            "--status",
            help="Each run's state from its folder and, for submitted runs, the scheduler's; nothing runs.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (run names, folders, skip/resume/conflict) and exit.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    fmt: SweepFormat = "table",
) -> None:
    """Run a grid of trainings: scales x plain/--stand x seeds by default; finished runs of its config are skipped."""
    from dskd_core.device import apply_threads, default_threads
    from dskd_core.errors import UsageError
    from dskd_core.sweep import SweepRequest, check_sweep, parse_devices, plan_rows, run_sweep
    from dskd_core.sweep.slurm import LAUNCHERS, plan_slurm_table, slurm_options, submit_sweep, sweep_status
    from dskd_core.trackers import check_available, parse_log

    check_format(fmt, TABLE_JSON)
    settings = settings_from(
        device=device,
        data_dir=data_dir,
        teachers_dir=teachers_dir,
        runs_dir=runs_dir,
        threads=threads,
        log=",".join(log) if log else None,
    )
    check_available(parse_log(settings.log))
    if threads is None:  # --threads' default, for this process
        apply_threads(default_threads())
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
    if launcher not in LAUNCHERS:
        raise UsageError(f"invalid --launcher '{launcher}': use local or slurm")
    cfgs = request.configs(settings.runs_dir)
    if status:
        render.sweep_states(sweep_status(cfgs, settings), fmt)
        return
    if launcher == "slurm" and devices:
        raise UsageError(
            "--devices is for the local launcher: with --launcher slurm, --gpus-per-job gives each job its GPUs"
        )
    check_sweep(cfgs, settings, parse_devices(devices) if launcher == "local" else ())
    if dry_run:
        where = (parse_devices(devices) or [settings.device])[0]  # --devices: all of one kind
        fused = lockstep and fuse and launcher == "local"
        rows = plan_rows(cfgs, settings.runs_dir, overwrite=overwrite, device=where, fuse=fused)
        render.sweep_plan(rows, fmt)
        return
    if launcher == "slurm":
        options = slurm_options(
            plan_slurm_table(plan),
            partition=partition,
            time_min=time,
            gpus_per_job=gpus_per_job,
            cpus_per_job=cpus_per_job,
            account=account,
            sbatch=tuple(sbatch or ()),
            max_running=max_running,
        )
        submission = submit_sweep(cfgs, settings, options, lockstep=lockstep, fuse=fuse, overwrite=overwrite)
        render.slurm_submission(submission, status_command(), fmt)
        return
    note_busy_cpu(settings.device, settings.threads)
    with render.progress_for(settings.progress) as observer:
        result = run_sweep(
            cfgs,
            settings,
            lockstep=lockstep,
            fuse=fuse,
            devices=parse_devices(devices),
            observer=observer,
            overwrite=overwrite,
        )
    render.sweep_result(result, fmt)
    if any(row.status == "failed" for row in result.rows):
        raise typer.Exit(1)


#: The examples at the end of ``--help``: a line of prose, then the command (indented), as it works.
EXAMPLES = """
The DSKD README's grid (scales x plain/--stand x 3 seeds): its 18 runs and their status, nothing trained:
    dskd sweep kd resnet32x4 resnet8x4 --dry-run
Only the --stand runs (the three scale sets), one seed, on digits:
    dskd sweep kd resnet20 resnet8 -d digits --stand on --seeds 0 \\
        --teacher-ckpt runs/digits/resnet20/vanilla/seed0
On a Slurm cluster, one GPU per job, the runs folder on a shared filesystem; then their state:
    dskd sweep kd resnet32x4 resnet8x4 --runs-dir /shared/runs \\
        --launcher slurm --gpus-per-job 1
    dskd sweep kd resnet32x4 resnet8x4 --runs-dir /shared/runs --status
"""
