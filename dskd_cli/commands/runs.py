"""``dskd runs``: list the run folders under a path, or show one (``dskd runs show RUN``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import (
    TABLE_JSON,
    RunsDir,
    TableJsonFormat,
    check_format,
    complete_dirs,
    complete_run_status,
    complete_runs_target,
)


def runs_(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="DIR | show",
            help="Folder to list (default: --runs-dir), or 'show' followed by a run folder.",
            autocompletion=complete_runs_target,
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Argument(metavar="RUN", help="With 'show': the run folder to show.", autocompletion=complete_dirs),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="Only runs in this state: finished, running, failed, interrupted, unfinished, unreadable.",
            autocompletion=complete_run_status,
        ),
    ] = None,
    method: Annotated[str | None, typer.Option(help="Only this method's runs.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Only this dataset's runs.")] = None,
    events: Annotated[int, typer.Option(help="With 'show': how many of the last log events to print.")] = 5,
    runs_dir: RunsDir = None,
    fmt: TableJsonFormat = "table",
) -> None:
    """List runs (variant, pair, seed, status, epochs, best/last top-1, folder); 'dskd runs show RUN' shows one."""
    from dskd_core.config import settings_from
    from dskd_core.errors import UsageError
    from dskd_core.runs.listing import list_runs, show_run

    check_format(fmt, TABLE_JSON)
    if target == "show":
        if run is None:
            raise UsageError("dskd runs show RUN: name the run folder to show (dskd runs lists them)")
        render.run_view(show_run(run, events), fmt)
        return
    if run is not None:
        raise UsageError(f"unexpected argument '{run}': dskd runs [DIR], or dskd runs show RUN")
    root = Path(target) if target is not None else settings_from(runs_dir=runs_dir).runs_dir
    render.runs_table(list_runs([root], status=status, method=method, dataset=dataset), root, fmt)


#: The examples at the end of ``--help``: a line of prose, then the command (indented), as it works.
EXAMPLES = """
The failed kd runs under runs/:
    dskd runs runs/ --status failed --method kd
One run's effective config, summary and last 10 events:
    dskd runs show runs/digits/resnet20/vanilla/seed0 --events 10
"""
