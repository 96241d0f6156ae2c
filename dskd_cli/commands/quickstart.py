"""``dskd quickstart``: the offline demo on the embedded digits, with its uncertainty."""

from __future__ import annotations

from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import Device, RunsDir, complete_models
from dskd_core.config import settings_from


def quickstart(
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (digits recipe: 1 epoch).")] = None,
    teacher: Annotated[
        str, typer.Option(help="Teacher trained from scratch on every image.", autocompletion=complete_models)
    ] = "resnet20",
    student: Annotated[
        str,
        typer.Option(help="Student trained three ways: from scratch, by KD, by DSKD.", autocompletion=complete_models),
    ] = "resnet8",
    seeds: Annotated[str, typer.Option(help="Seeds of the students, e.g. 0,1,2 (more seeds, a narrower interval).")] = (
        "0,1,2"
    ),
    per_class: Annotated[
        int,
        typer.Option(
            min=0, help="Labelled images per class the students see (0: every image, the plain digits recipe)."
        ),
    ] = 10,
    device: Device = None,
    runs_dir: RunsDir = None,
) -> None:
    """Offline demo on the embedded digits: does distillation help a student with few labels, beyond seed noise?

    A teacher learns from every training image; the student sees 10 labelled images per class and is trained
    from scratch, by KD and by DSKD, for each seed. The table is `dskd report` of the quickstart's runs folder:
    mean ± std over seeds, and paired differences with their 95% interval.
    """
    from dskd_core.quickstart import run_quickstart
    from dskd_core.sweep.plan import parse_seeds

    settings = settings_from(device=device, runs_dir=runs_dir)
    chosen = parse_seeds(seeds)
    with render.progress_for(settings.progress) as observer:
        result = run_quickstart(
            settings,
            teacher=teacher,
            student=student,
            epochs=epochs,
            seeds=chosen,
            per_class=per_class or None,
            observer=observer,
        )
    render.quickstart_result(result)
