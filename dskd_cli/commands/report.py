"""``dskd report``: aggregate dskd runs and legacy logs into mean ± std tables and the DSKD README grids."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from dskd_cli import render
from dskd_cli.options import REPORT_FORMATS, ReportFormat, check_format, complete_metric
from dskd_core.config import Settings
from dskd_core.errors import DskdError, UsageError


def report(
    dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DIR",
            help="Folders (walked) or log files: dskd run folders, worklog.txt, TYPE,TEACHER,STUDENT,T,W[,BETA].txt "
            "(default: the runs dir).",
        ),
    ] = None,
    fmt: ReportFormat = "table",
    metric: Annotated[
        str,
        typer.Option(
            help="best (max over epochs, as papers report) or last top-1; used by Δ and --paper.",
            autocompletion=complete_metric,
        ),
    ] = "best",
    paper: Annotated[
        bool, typer.Option("--paper", help="The DSKD README's CIFAR-100 grids: pairs as columns, METHOD and + DSKD.")
    ] = False,
    curves: Annotated[
        Path | None,
        typer.Option(
            "--curves",
            help="Also draw each group's test top-1 per epoch and training loss within epochs (a one-epoch run "
            "too) into this PNG.",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset of legacy logs whose path does not say.")
    ] = None,
    teacher: Annotated[str | None, typer.Option(help="Teacher of legacy logs whose path does not say.")] = None,
    student: Annotated[str | None, typer.Option(help="Student of legacy logs whose path does not say.")] = None,
    method: Annotated[str | None, typer.Option(help="Method of legacy logs whose path does not say.")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Variant (e.g. kd+sdd[1,2]+ls) of legacy logs whose path does not say.")
    ] = None,
) -> None:
    """Report runs: n, mean ± std of best and last top-1 per (dataset, pair, method, variant), Δ vs the method.

    A Δ whose configs differ beyond the variant's own keys (--scales/--stand's) is flagged: ! and ok false.

    Exit code 1 when a run's summary.json or config.json cannot be read: it is listed as excluded, with why.
    """
    from dskd_core.report import Hints, build_report, check_metric, group_curves, paper_grids

    check_format(fmt, REPORT_FORMATS)
    chosen = check_metric(metric)
    if curves is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--curves needs matplotlib: pip install -e '.[plot]' (or 'dskd[plot]')")
    hints = Hints(dataset=dataset, teacher=teacher, student=student, method=method, variant=variant)
    result = build_report(dirs or [Settings().runs_dir], chosen, hints)
    for path, why in result.skipped:
        render.note(f"skipped {path}: {why}")
    for path, why in result.unreadable:
        render.note(f"excluded {path}: unreadable: {why}")
    if paper:
        render.report_paper(paper_grids(result), fmt)
    else:
        render.report_groups(result, fmt)
    if curves is not None:
        drawn = group_curves(result)
        if not drawn:
            raise UsageError("--curves: no complete run logged per-epoch accuracies; nothing to draw")
        render.report_curves(drawn, curves)
    if result.unreadable:
        count = len(result.unreadable)
        raise DskdError(
            f"{count} run{'s' if count > 1 else ''} excluded as unreadable (listed above): "
            "restore or delete their summary.json/config.json, then report again"
        )


#: The examples at the end of ``--help``: a line of prose, then the command (indented), as it works.
EXAMPLES = """
Every run under runs/, one row per group:
    dskd report runs/
The DSKD README's two CIFAR-100 grids, as Markdown:
    dskd report runs/ --paper --format md
Last-epoch top-1 instead of the best, as CSV:
    dskd report runs/ --metric last --format csv
"""
