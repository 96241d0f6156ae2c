"""``dskd quickstart``: the offline demo on the embedded digits."""

from __future__ import annotations

from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import Device, RunsDir, complete_models
from dskd_core.config import settings_from


def quickstart(
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (digits recipe: 1 epoch of 8 passes).")] = None,
    teacher: Annotated[
        str, typer.Option(help="Teacher trained from scratch.", autocompletion=complete_models)
    ] = "resnet20",
    student: Annotated[
        str, typer.Option(help="Student distilled twice: KD and DSKD.", autocompletion=complete_models)
    ] = "resnet8",
    seed: Annotated[int, typer.Option(help="Seed for all three runs.")] = 0,
    device: Device = None,
    runs_dir: RunsDir = None,
) -> None:
    """Offline demo on the embedded digits: a teacher, a KD student and a DSKD student, in a table."""
    from dskd_core.quickstart import run_quickstart

    settings = settings_from(device=device, runs_dir=runs_dir)
    with render.progress_for(settings.progress) as observer:
        runs = run_quickstart(settings, teacher=teacher, student=student, epochs=epochs, seed=seed, observer=observer)
    render.quickstart_runs(runs, student)
