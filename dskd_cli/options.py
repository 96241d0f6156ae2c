"""The options several commands share, one ``Annotated`` alias each, and the checks they share.

Where commands word an option's help differently (``--device`` of ``fetch-teachers`` is only for
``--check``), each wording has its own alias, so every ``--help`` reads as it always has.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from dskd_core.errors import UsageError


def methods_help() -> str:
    """The registered distillation methods for ``--help``: the logit ones, then the others."""
    from dskd_core.methods import get_method, list_methods  # here: only a command that runs needs torch
    from dskd_core.methods.logit import LogitDistiller

    names = [m for m in list_methods() if get_method(m).needs_teacher]
    logit = [m for m in names if issubclass(get_method(m), LogitDistiller)]
    return ", ".join(logit) + "; " + ", ".join(m for m in names if m not in logit)


#: Where a help text lists the registered methods; :class:`dskd_cli.app.DskdGroup` fills it in when the
#: command runs (reading the registry needs torch, which ``dskd --help`` does without).
METHODS_HELP = "{methods}"

#: ``--aug`` of train and sweep: DSKD's, not torchvision's RandAugment.
AUG_HELP = "DSKD's strong augmentation after the flip: RandAugment (2 of 14 ops) + Cutout."


def complete_models(incomplete: str) -> list[str]:
    from dskd_core.models import list_models  # here: the CLI starts without torch

    return [m for m in list_models(None) if m.startswith(incomplete)]


def check_format(fmt: str, formats: Sequence[str]) -> str:
    """``fmt`` when it is one of ``formats``; else the one-line error every command gives."""
    if fmt not in formats:
        raise UsageError(f"invalid --format '{fmt}': use {', '.join(formats[:-1])} or {formats[-1]}")
    return fmt


TEXT_JSON = ("text", "json")
TABLE_JSON = ("table", "json")
REPORT_FORMATS = ("table", "md", "csv", "json")

# --------------------------------------------------------------------------- where and on what

Device = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N (env DSKD_DEVICE; default auto).")
]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Datasets folder (env DSKD_DATA_DIR; default data/).")]
RunsDir = Annotated[
    Path | None, typer.Option("--runs-dir", help="Where runs are written (env DSKD_RUNS_DIR; default runs/).")
]
TeachersDir = Annotated[
    Path | None,
    typer.Option(
        "--teachers-dir",
        help="Teacher checkpoints: <dir>/<dataset>/<TEACHER>.safetensors (env DSKD_TEACHERS_DIR; default teachers/).",
    ),
]

#: fetch-teachers: the device and datasets serve --check only; the teachers folder is written.
CheckDevice = Annotated[
    str | None, typer.Option("--device", help="For --check: auto, cpu, cuda, cuda:N (env DSKD_DEVICE).")
]
CheckDataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Datasets folder, for --check (env DSKD_DATA_DIR; default data/).")
]
FetchTeachersDir = Annotated[
    Path | None,
    typer.Option(
        "--teachers-dir", help="Where <dataset>/<MODEL>.safetensors go (env DSKD_TEACHERS_DIR; default teachers/)."
    ),
]

#: sweep: the short wordings.
SweepDevice = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")]
SweepDataDir = Annotated[Path | None, typer.Option("--data-dir", help="Datasets folder.")]
SweepTeachersDir = Annotated[Path | None, typer.Option("--teachers-dir", help="Teacher checkpoints folder.")]
SweepRunsDir = Annotated[Path | None, typer.Option("--runs-dir", help="Where runs are written.")]

# --------------------------------------------------------------------------- output

TextJsonFormat = Annotated[str, typer.Option("--format", help="text or json.")]
TableJsonFormat = Annotated[str, typer.Option("--format", help="table or json.")]
ReportFormat = Annotated[str, typer.Option("--format", help="table, md, csv or json.")]
