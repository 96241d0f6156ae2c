"""``dskd train``: a TrainRequest of the flags given, run by :func:`dskd_core.train.run.run_train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.invocation import child_argv
from dskd_cli.options import (
    AUG_HELP,
    DATA_PANEL,
    EXECUTION_PANEL,
    METHOD_PANEL,
    METHODS_HELP,
    MULTI_PANEL,
    OUTPUT_PANEL,
    RECIPE_PANEL,
    Log,
    TeachersDir,
    Threads,
    TrainDataDir,
    TrainDevice,
    TrainRunsDir,
    complete_lr_scaling,
    complete_method_or_run,
    complete_models,
    complete_precision,
    complete_preset_source,
    complete_sdd_weighting,
    note_busy_cpu,
)


def train(
    method: Annotated[
        str | None,
        typer.Argument(
            help=f"Distillation method ({METHODS_HELP}), or vanilla to train MODEL from scratch; omitted with a "
            "--config that names it. With --resume: the run folder to continue.",
            autocompletion=complete_method_or_run,
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEACHER STUDENT | MODEL",
            help="Model names (see dskd models).",
            autocompletion=complete_models,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="cifar100 (default, or the --config file's), imagenet (ImageFolder), digits (embedded, offline) "
            "or synthetic.",
            rich_help_panel=DATA_PANEL,
        ),
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(
            "--scales",
            "--M",
            help="SDD scales, a subset of 1,2,4 with 1: 1,2 or [1,2,4]; 1 alone = plain global loss; "
            "auto = the preset's recommendation.",
            rich_help_panel=METHOD_PANEL,
        ),
    ] = None,
    stand: Annotated[
        bool,
        typer.Option(
            "--stand",
            "--logit-stand",
            help="Logit standardization; enables --base-temp/--kd-weight.",
            rich_help_panel=METHOD_PANEL,
        ),
    ] = False,
    base_temp: Annotated[
        float | None,
        typer.Option(
            help="Temperature under --stand (default 2, or the preset's). "
            "Ignored without --stand, as in the DSKD README.",
            rich_help_panel=METHOD_PANEL,
        ),
    ] = None,
    kd_weight: Annotated[
        float | None,
        typer.Option(
            help="KD weight under --stand (default 9, or the preset's); DKD/RLD multiply alpha and beta by it. "
            "Ignored without --stand, as in the DSKD README.",
            rich_help_panel=METHOD_PANEL,
        ),
    ] = None,
    same_t: Annotated[
        bool, typer.Option("--same-t", help="RLD: alpha temperature = temperature.", rich_help_panel=METHOD_PANEL)
    ] = False,
    sdd_weighting: Annotated[
        str | None,
        typer.Option(
            help="SDD reduction: mean (mean loss x mean weight: DSKD's SD-DKD, the dkd default) or region "
            "(weight x loss per region: the SDD paper's form, the kd/rld default).",
            autocompletion=complete_sdd_weighting,
            rich_help_panel=METHOD_PANEL,
        ),
    ] = None,
    sdd_complementary: Annotated[
        float | None,
        typer.Option(
            help="SDD weight of regions whose teacher verdict flips (default 2).", rich_help_panel=METHOD_PANEL
        ),
    ] = None,
    clip_grad: Annotated[
        float | None,
        typer.Option(help="Clip the global gradient norm to this value (off).", rich_help_panel=RECIPE_PANEL),
    ] = None,
    aug: Annotated[bool, typer.Option("--aug", help=AUG_HELP, rich_help_panel=RECIPE_PANEL)] = False,
    no_preset: Annotated[
        bool, typer.Option("--no-preset", help="Ignore the paper preset for this pair.", rich_help_panel=RECIPE_PANEL)
    ] = False,
    preset_source: Annotated[
        str | None,
        typer.Option(
            help="Paper preset values from dskd (default: DSKD's config files) or mdistiller "
            "(mdistiller's/LSKD's published ImageNet protocol; on cifar100 the two agree).",
            autocompletion=complete_preset_source,
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Epochs (recipe: 240 on cifar100, 100 on imagenet, 1 of 8 passes on digits).",
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Training batch size (recipe: 64).", rich_help_panel=RECIPE_PANEL)
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Base LR (recipe: 0.05; 0.01 for ShuffleNet/MobileNet students on cifar100).",
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed; each seed is its own run folder (default 0).", rich_help_panel=RECIPE_PANEL),
    ] = None,
    device: TrainDevice = None,
    data_dir: TrainDataDir = None,
    teachers_dir: TeachersDir = None,
    teacher_ckpt: Annotated[
        Path | None,
        typer.Option(
            help="Teacher checkpoint file (.safetensors or legacy .pth) or a dskd run folder.",
            rich_help_panel=DATA_PANEL,
        ),
    ] = None,
    runs_dir: TrainRunsDir = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of run-config keys (over the preset, under flags), or a run's config.json / --dry-run "
            "JSON, replayed as it is (flags still apply on top).",
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override any run-config key, e.g. --set lr=0.1 (repeatable; values are JSON).",
            metavar="KEY=VALUE",
            rich_help_panel=RECIPE_PANEL,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Run folder name instead of the variant (no path separators).", rich_help_panel=OUTPUT_PANEL),
    ] = None,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="Deterministic kernels: bit-identical resumes on CPU.",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run from its last completed epoch; `dskd train --resume RUN_DIR` resumes a run folder.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Retrain over an existing run folder.", rich_help_panel=OUTPUT_PANEL)
    ] = False,
    allow_weak_teacher: Annotated[
        bool,
        typer.Option(
            "--allow-weak-teacher",
            help="Use a teacher that fetch-teachers --check measured >1 point below published.",
            rich_help_panel=DATA_PANEL,
        ),
    ] = False,
    image_size: Annotated[
        int | None,
        typer.Option(
            help="imagenet: crop size (recipe 224); evaluation resizes the short side to size x 256/224.",
            rich_help_panel=DATA_PANEL,
        ),
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(
            help="Expected class count (imagenet: default its class folders; refused when they differ).",
            rich_help_panel=DATA_PANEL,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="imagenet: decoding processes per training process (env DSKD_WORKERS; default auto).",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this node (DDP via torchrun's launcher): one per GPU (NCCL), "
            "or on CPU (Gloo). --batch-size is per process.",
            rich_help_panel=MULTI_PANEL,
        ),
    ] = None,
    sync_bn: Annotated[
        bool,
        typer.Option(
            "--sync-bn",
            help="With several processes: BatchNorm statistics over all of them.",
            rich_help_panel=MULTI_PANEL,
        ),
    ] = False,
    lr_scaling: Annotated[
        str | None,
        typer.Option(
            help="With several processes: none (default, the LR as given) or linear (LR x processes).",
            autocompletion=complete_lr_scaling,
            rich_help_panel=MULTI_PANEL,
        ),
    ] = None,
    fast: Annotated[
        bool | None,
        typer.Option(
            "--fast/--no-fast",
            help="Fast path: device-side step (autocast, channels_last, no per-step host reads). Default: on CUDA.",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="tf32 (fp32 with TF32 convolutions/matmuls: the reference's, the default on CUDA), fp32 (strict) "
            "or bf16 (fast-path autocast, a deviation). Evaluation is always strict fp32.",
            autocompletion=complete_precision,
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the fast step, CUDA graphs on CUDA (default: on CUDA).",
            rich_help_panel=EXECUTION_PANEL,
        ),
    ] = None,
    threads: Threads = None,
    log: Log = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check what the run would refuse (device, teacher checkpoint, run folder), then print the resolved "
            "run config as JSON and the run folder; nothing is written.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = False,
) -> None:
    """Train a student by distillation (METHOD TEACHER STUDENT) or a model from scratch (vanilla MODEL)."""
    given = dict(locals())  # the flags, before anything else is a local
    from dskd_core.device import apply_threads, default_threads

    if threads is None:  # --threads' default, for this process (a library caller's pool is its own)
        apply_threads(default_threads())
    from dskd_core.request import TrainRequest
    from dskd_core.train.run import run_train

    request = TrainRequest.given(**given)
    render.set_quiet(request.quiet)
    if not request.dry_run and not request.quiet:
        note_busy_cpu(request.settings.device, request.threads)
    outcome = run_train(request, argv=child_argv(), notify=render.note, progress=render.progress_for)
    render.train_outcome(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


#: The examples at the end of ``--help``: a line of prose, then the command (indented), as it works.
EXAMPLES = """
DSKD on CIFAR-100: SDD at scales 1,2 with logit standardization (teachers from dskd fetch-teachers):
    dskd train kd resnet32x4 resnet8x4 --scales 1,2 --stand
Every resolved value as JSON and the run folder, nothing trained:
    dskd train kd resnet32x4 resnet8x4 --scales 1,2 --stand --dry-run
Offline, on the embedded digits: a teacher from scratch, then DKD from it:
    dskd train vanilla resnet20 -d digits
    dskd train dkd resnet20 resnet8 -d digits \\
        --teacher-ckpt runs/digits/resnet20/vanilla/seed0
Continue a run from its last completed epoch (--dry-run: what it would resume):
    dskd train --resume runs/digits/resnet20/vanilla/seed0
"""
