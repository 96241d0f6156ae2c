"""``dskd eval``: top-1/top-5 of a checkpoint on a dataset's test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import TEXT_JSON, DataDir, Device, TextJsonFormat, check_format, complete_models
from dskd_core.config import settings_from


def eval_(
    checkpoint: Annotated[
        Path,
        typer.Option(
            "-c",
            "--checkpoint",
            help="dskd .safetensors, legacy .pth ({'model': state_dict}) or a run folder (its best student).",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "-m",
            "--model",
            help="Architecture of the checkpoint (default: the one a dskd checkpoint or run folder records).",
            autocompletion=complete_models,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "-d",
            "--dataset",
            help="cifar100, imagenet (its val/ split), digits or synthetic (default: the checkpoint's, else cifar100).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("-bs", "--batch-size", help="Test batch size (default: the run's, else 64).")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="imagenet: crop size (default: the run's, else 224).")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    fmt: TextJsonFormat = "text",
) -> None:
    """Evaluate a checkpoint on a dataset's test split: top-1 and top-5."""
    from dskd_core.evaluation import evaluate_checkpoint

    check_format(fmt, TEXT_JSON)
    settings = settings_from(device=device, data_dir=data_dir)
    result = evaluate_checkpoint(model, checkpoint, dataset, settings, batch_size=batch_size, image_size=image_size)
    render.eval_result(result, fmt)


#: The examples at the end of ``--help``: a line of prose, then the command (indented), as it works.
EXAMPLES = """
A run folder's best student, on the dataset it trained on:
    dskd eval -c runs/digits/resnet20/vanilla/seed0
A legacy mdistiller/RepDistiller checkpoint, as tools/eval.py takes it:
    dskd eval -m resnet8x4 -c ckpt_epoch_240.pth -d cifar100
"""
