"""The options several commands share, one ``Annotated`` alias each, and the checks they share.

Where commands word an option's help differently (``--device`` of ``fetch-teachers`` is only for
``--check``), each wording has its own alias, so every ``--help`` reads as it always has.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, get_args

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

# --------------------------------------------------------------------------- help panels (train, sweep)

#: The panels of ``train --help`` and ``sweep --help`` (an option's ``rich_help_panel``), in the order shown.
METHOD_PANEL = "Method"
GRID_PANEL = "Grid"
RECIPE_PANEL = "Recipe"
DATA_PANEL = "Data & paths"
EXECUTION_PANEL = "Execution"
MULTI_PANEL = "Multi-process"
OUTPUT_PANEL = "Output"
CLUSTER_PANEL = "Cluster (--launcher slurm)"
PANELS = (
    GRID_PANEL,
    METHOD_PANEL,
    RECIPE_PANEL,
    DATA_PANEL,
    EXECUTION_PANEL,
    MULTI_PANEL,
    CLUSTER_PANEL,
    OUTPUT_PANEL,
)

# --------------------------------------------------------------------------- value completion


def _launchers() -> Sequence[str]:
    from dskd_core.sweep.slurm import LAUNCHERS  # here: the CLI starts without torch

    return LAUNCHERS


def complete_models(incomplete: str) -> list[str]:
    from dskd_core.models import list_models  # here: the CLI starts without torch

    return [m for m in list_models(None) if m.startswith(incomplete)]


def complete_from(choices: Callable[[], Sequence[str]]) -> Callable[[str], list[str]]:
    """A completer of the fixed values ``choices()`` returns, read when asked (some sit behind torch's import).

    The static scripts (:mod:`dskd_cli.completions`) ask an option's completer for its words, so the values
    are written once, where the check that accepts them reads them.
    """

    def complete(incomplete: str) -> list[str]:
        return [c for c in choices() if c.startswith(incomplete)]

    return complete


def run_config_choices(key: str) -> tuple[str, ...]:
    """The values the run config's ``Literal`` field ``key`` accepts (``sdd_weighting``: region, mean)."""
    from dskd_core.config import RunConfig

    return tuple(str(v) for v in get_args(RunConfig.model_fields[key].annotation))


def _metrics() -> Sequence[str]:
    from dskd_core.report import METRICS  # here: the report package imports torch

    return METRICS


def _run_statuses() -> Sequence[str]:
    from dskd_core.runs.listing import RUN_STATUSES  # here: the listing imports torch

    return RUN_STATUSES


complete_sdd_weighting = complete_from(lambda: run_config_choices("sdd_weighting"))
complete_precision = complete_from(lambda: run_config_choices("precision"))
complete_preset_source = complete_from(lambda: run_config_choices("preset_source"))
complete_lr_scaling = complete_from(lambda: run_config_choices("lr_scaling"))
complete_metric = complete_from(_metrics)
complete_run_status = complete_from(_run_statuses)


def complete_dirs(incomplete: str) -> list[str]:
    """The folders whose path starts with ``incomplete``, each ending in a separator so the next one follows."""
    head, _, stem = incomplete.rpartition(os.sep)
    base = Path(head + os.sep if head or incomplete.startswith(os.sep) else ".")
    try:
        found = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(stem) and not p.name.startswith(".")]
    except OSError:
        return []
    prefix = incomplete[: len(incomplete) - len(stem)]
    return sorted(prefix + p.name + os.sep for p in found)


def complete_method_or_run(ctx: typer.Context, incomplete: str) -> list[str]:
    """train's first argument: a method, or after ``--resume`` (or once it holds a path) a run folder."""
    if ctx.params.get("resume") or os.sep in incomplete:
        return complete_dirs(incomplete)
    from dskd_core.methods import list_methods  # here: the CLI starts without torch

    return [m for m in list_methods() if m.startswith(incomplete)]


def complete_runs_target(incomplete: str) -> list[str]:
    """``dskd runs``' first argument: ``show``, or a folder to list."""
    return ["show", *complete_dirs(incomplete)] if "show".startswith(incomplete) else complete_dirs(incomplete)


def check_format(fmt: str, formats: Sequence[str]) -> str:
    """``fmt`` when it is one of ``formats``; else the one-line error every command gives."""
    if fmt not in formats:
        raise UsageError(f"invalid --format '{fmt}': use {', '.join(formats[:-1])} or {formats[-1]}")
    return fmt


TEXT_JSON = ("text", "json")
TABLE_JSON = ("table", "json")
REPORT_FORMATS = ("table", "md", "csv", "json")

# --------------------------------------------------------------------------- where and on what


def _device(panel: str | None = None) -> Any:
    return typer.Option(
        "--device", help="auto, cpu, cuda, cuda:N (env DSKD_DEVICE; default auto).", rich_help_panel=panel
    )


def _data_dir(panel: str | None = None) -> Any:
    return typer.Option(
        "--data-dir", metavar="DIR", help="Datasets folder (env DSKD_DATA_DIR; default data/).", rich_help_panel=panel
    )


def _runs_dir(panel: str | None = None) -> Any:
    return typer.Option(
        "--runs-dir",
        metavar="DIR",
        help="Where runs are written (env DSKD_RUNS_DIR; default runs/).",
        rich_help_panel=panel,
    )


Device = Annotated[str | None, _device()]
DataDir = Annotated[Path | None, _data_dir()]
RunsDir = Annotated[Path | None, _runs_dir()]
#: train: the same, in its help's panels.
TrainDevice = Annotated[str | None, _device(EXECUTION_PANEL)]
TrainDataDir = Annotated[Path | None, _data_dir(DATA_PANEL)]
TrainRunsDir = Annotated[Path | None, _runs_dir(DATA_PANEL)]
TeachersDir = Annotated[
    Path | None,
    typer.Option(
        "--teachers-dir",
        metavar="DIR",
        help="Teacher checkpoints: <dir>/<dataset>/<TEACHER>.safetensors (env DSKD_TEACHERS_DIR; default teachers/).",
        rich_help_panel=DATA_PANEL,
    ),
]

#: fetch-teachers: the device and datasets serve --check only; the teachers folder is written.
CheckDevice = Annotated[
    str | None, typer.Option("--device", help="For --check: auto, cpu, cuda, cuda:N (env DSKD_DEVICE).")
]
CheckDataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", metavar="DIR", help="Datasets folder, for --check (env DSKD_DATA_DIR; default data/)."),
]
FetchTeachersDir = Annotated[
    Path | None,
    typer.Option(
        "--teachers-dir",
        metavar="DIR",
        help="Where <dataset>/<MODEL>.safetensors go (env DSKD_TEACHERS_DIR; default teachers/).",
    ),
]

#: sweep: the short wordings, in its help's panels.
SweepDevice = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N.", rich_help_panel=EXECUTION_PANEL)
]
SweepDataDir = Annotated[
    Path | None, typer.Option("--data-dir", metavar="DIR", help="Datasets folder.", rich_help_panel=DATA_PANEL)
]
SweepTeachersDir = Annotated[
    Path | None,
    typer.Option("--teachers-dir", metavar="DIR", help="Teacher checkpoints folder.", rich_help_panel=DATA_PANEL),
]
SweepRunsDir = Annotated[
    Path | None,
    typer.Option("--runs-dir", metavar="DIR", help="Where runs are written.", rich_help_panel=DATA_PANEL),
]

# --------------------------------------------------------------------------- output


def _format(formats: tuple[str, ...], panel: str | None = None) -> Any:
    """``--format``, completing ``formats`` (the ones :func:`check_format` accepts for the command)."""
    words = f"{', '.join(formats[:-1])} or {formats[-1]}."
    return typer.Option("--format", help=words, autocompletion=complete_from(lambda: formats), rich_help_panel=panel)


TextJsonFormat = Annotated[str, _format(TEXT_JSON)]
TableJsonFormat = Annotated[str, _format(TABLE_JSON)]
ReportFormat = Annotated[str, _format(REPORT_FORMATS)]
#: sweep's, in its "Output" panel.
SweepFormat = Annotated[str, _format(TABLE_JSON, OUTPUT_PANEL)]

# --------------------------------------------------------------------------- trackers and threads (train, sweep)

Log = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        metavar="TRACKERS",
        help="Experiment trackers, comma-separated: tensorboard (event files in the run folder), wandb "
        "(WANDB_MODE=offline works offline); env DSKD_LOG; off by default. Extras: pip install 'dskd[tensorboard]', "
        "'dskd[wandb]'.",
        rich_help_panel="Output",
    ),
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads per process (env DSKD_THREADS; default: the cores available, a share of them each "
        "under --nproc).",
        rich_help_panel="Execution",
    ),
]


def note_busy_cpu(device: str, threads: int | None) -> None:
    """At a terminal, before a CPU run: a note when other processes already keep the cores busy. Only there:
    the machine's load is news to a person watching, and a log's lines must not depend on it."""
    import sys

    from dskd_cli import render

    if not sys.stderr.isatty():
        return
    from dskd_core.device import cpu_competition, resolve_device  # here: the CLI starts without torch
    from dskd_core.errors import DskdError

    try:
        on_cpu = resolve_device(device).type == "cpu"
    except DskdError:  # the run itself reports a bad --device
        return
    if on_cpu and (message := cpu_competition(threads)):
        render.note(message)


#: ``sweep --launcher``'s values.
complete_launcher = complete_from(_launchers)
