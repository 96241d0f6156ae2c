"""``dskd fetch-teachers``: download, verify and convert the published teachers (and optionally check them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import CheckDataDir, CheckDevice, FetchTeachersDir
from dskd_core.config import settings_from


def fetch_teachers(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="cifar100 or imagenet.")] = "cifar100",
    models: Annotated[
        str | None,
        typer.Option("--models", help="Comma-separated teachers, e.g. resnet56,wrn_40_2 (default: all of them)."),
    ] = None,
    teachers_dir: FetchTeachersDir = None,
    url: Annotated[str | None, typer.Option("--url", help="A mirror of the teachers archive (cifar100).")] = None,
    archive: Annotated[
        Path | None, typer.Option("--archive", help="A local copy of the teachers archive, for offline installs.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Evaluate each teacher on the test split: published vs measured top-1."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Download and convert again, even teachers already present.")
    ] = False,
    data_dir: CheckDataDir = None,
    device: CheckDevice = None,
) -> None:
    """Download, verify and convert the published teachers to <teachers-dir>/<dataset>/<MODEL>.safetensors."""
    from dskd_core.teachers import fetch_teachers as fetch
    from dskd_core.teachers import parse_models
    from dskd_core.teachers.checks import check_teachers, ensure_checkable

    settings = settings_from(teachers_dir=teachers_dir, data_dir=data_dir, device=device)
    names = parse_models(models)
    if check:
        ensure_checkable(dataset, settings.data_dir)  # before a download that --check could not use
    interactive = render.progress_enabled(settings.progress)
    with render.fetch_progress(interactive) as observer:
        results = fetch(
            dataset,
            settings.teachers_dir,
            models=names,
            url=url,
            archive=archive,
            force=force,
            progress=interactive,
            notify=observer,
        )
    render.teachers_fetched(results)
    if check:
        render.teacher_checks(check_teachers(dataset, settings, models=names))
