"""``dskd presets``: the paper presets, filtered."""

from __future__ import annotations

from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import TABLE_JSON, TableJsonFormat, check_format, complete_preset_source


def presets_(
    method: Annotated[str | None, typer.Option(help="Only this method's presets.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Only this dataset's presets.")] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Only the presets of this --preset-source: dskd or mdistiller.",
            autocompletion=complete_preset_source,
        ),
    ] = None,
    fmt: TableJsonFormat = "table",
) -> None:
    """List the paper presets: per (dataset, source, method, teacher, student, SDD on/off) values."""
    from dskd_core.presets import select

    check_format(fmt, TABLE_JSON)
    render.presets(select(method, dataset, source), fmt)
