"""``dskd train``: a TrainRequest of the flags given, run by :func:`dskd_core.train.run.run_train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.invocation import child_argv
from dskd_cli.options import AUG_HELP, METHODS_HELP, DataDir, Device, RunsDir, TeachersDir, complete_models


def train(
    method: Annotated[
        str | None,
        typer.Argument(
            help=f"Distillation method ({METHODS_HELP}), or vanilla to train MODEL from scratch; omitted with a "
            "--config that names it."
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
        ),
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(
            "--scales",
            "--M",
            help="SDD scales, a subset of 1,2,4 with 1: 1,2 or [1,2,4]; 1 alone = plain global loss; "
            "auto = the preset's recommendation.",
        ),
    ] = None,
    stand: Annotated[
        bool,
        typer.Option("--stand", "--logit-stand", help="Logit standardization; enables --base-temp/--kd-weight."),
    ] = False,
    base_temp: Annotated[
        float | None,
        typer.Option(
            help="Temperature under --stand (default 2, or the preset's). "
            "Ignored without --stand, as in the DSKD README."
        ),
    ] = None,
    kd_weight: Annotated[
        float | None,
        typer.Option(
            help="KD weight under --stand (default 9, or the preset's); DKD/RLD multiply alpha and beta by it. "
            "Ignored without --stand, as in the DSKD README."
        ),
    ] = None,
    same_t: Annotated[bool, typer.Option("--same-t", help="RLD: alpha temperature = temperature.")] = False,
    sdd_weighting: Annotated[
        str | None,
        typer.Option(
            help="SDD reduction: mean (mean loss x mean weight: DSKD's SD-DKD, the dkd default) or region "
            "(weight x loss per region: the SDD paper's form, the kd/rld default)."
        ),
    ] = None,
    sdd_complementary: Annotated[
        float | None, typer.Option(help="SDD weight of regions whose teacher verdict flips (default 2).")
    ] = None,
    clip_grad: Annotated[float | None, typer.Option(help="Clip the global gradient norm to this value (off).")] = None,
    aug: Annotated[bool, typer.Option("--aug", help=AUG_HELP)] = False,
    no_preset: Annotated[bool, typer.Option("--no-preset", help="Ignore the paper preset for this pair.")] = False,
    preset_source: Annotated[
        str | None,
        typer.Option(
            help="Paper preset values from dskd (default: DSKD's config files) or mdistiller "
            "(mdistiller's/LSKD's published ImageNet protocol; on cifar100 the two agree)."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs (recipe: 240 on cifar100, 100 on imagenet, 1 of 8 passes on digits).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size (recipe: 64).")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Base LR (recipe: 0.05; 0.01 for ShuffleNet/MobileNet students on cifar100)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed; each seed is its own run folder (default 0).")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    teachers_dir: TeachersDir = None,
    teacher_ckpt: Annotated[
        Path | None,
        typer.Option(help="Teacher checkpoint file (.safetensors or legacy .pth) or a dskd run folder."),
    ] = None,
    runs_dir: RunsDir = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of run-config keys (over the preset, under flags), or a run's config.json / --dry-run "
            "JSON, replayed as it is (flags still apply on top).",
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any run-config key, e.g. --set lr=0.1 (repeatable; values are JSON)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run folder name instead of the variant (no path separators).")
    ] = None,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic kernels: bit-identical resumes on CPU.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run from its last completed epoch; `dskd train --resume RUN_DIR` resumes a run folder."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Retrain over an existing run folder.")] = False,
    allow_weak_teacher: Annotated[
        bool,
        typer.Option(
            "--allow-weak-teacher", help="Use a teacher that fetch-teachers --check measured >1 point below published."
        ),
    ] = False,
    image_size: Annotated[
        int | None,
        typer.Option(help="imagenet: crop size (recipe 224); evaluation resizes the short side to size x 256/224."),
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(help="Expected class count (imagenet: default its class folders; refused when they differ)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="imagenet: decoding processes per training process (env DSKD_WORKERS; default auto)."),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this node (DDP via torchrun's launcher): one per GPU (NCCL), "
            "or on CPU (Gloo). --batch-size is per process.",
        ),
    ] = None,
    sync_bn: Annotated[
        bool, typer.Option("--sync-bn", help="With several processes: BatchNorm statistics over all of them.")
    ] = False,
    lr_scaling: Annotated[
        str | None,
        typer.Option(help="With several processes: none (default, the LR as given) or linear (LR x processes)."),
    ] = None,
    fast: Annotated[
        bool | None,
        typer.Option(
            "--fast/--no-fast",
            help="Fast path: device-side step (autocast, channels_last, no per-step host reads). Default: on CUDA.",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="tf32 (fp32 with TF32 convolutions/matmuls: the reference's, the default on CUDA), fp32 (strict) "
            "or bf16 (fast-path autocast, a deviation). Evaluation is always strict fp32."
        ),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help="torch.compile the fast step, CUDA graphs on CUDA (default: on CUDA)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved run config as JSON and exit.")] = False,
) -> None:
    """Train a student by distillation (METHOD TEACHER STUDENT) or a model from scratch (vanilla MODEL)."""
    given = dict(locals())  # the flags, before anything else is a local
    from dskd_core.request import TrainRequest
    from dskd_core.train.run import run_train

    request = TrainRequest.given(**given)
    render.set_quiet(request.quiet)
    outcome = run_train(request, argv=child_argv(), notify=render.note, progress=render.progress_for)
    render.train_outcome(outcome)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)
