"""The only package that prints: results to stdout, notes, progress and errors to stderr.

:mod:`~dskd_cli.render.console` holds the primitives and the quiet flag,
:mod:`~dskd_cli.render.progress` the training and download progress,
:mod:`~dskd_cli.render.report` ``dskd report``'s views and :mod:`~dskd_cli.render.tables` the
other commands' views. Commands call them as ``render.<name>``.
"""

from dskd_cli.render.console import (
    completion_script,
    err,
    error,
    is_quiet,
    json_out,
    note,
    out,
    progress_enabled,
    set_quiet,
    text,
)
from dskd_cli.render.progress import fetch_progress, progress_for, training_progress
from dskd_cli.render.report import quickstart_result, report_curves, report_groups, report_paper
from dskd_cli.render.tables import (
    eval_result,
    models_table,
    presets,
    run_summary,
    run_view,
    runs_table,
    slurm_submission,
    sweep_plan,
    sweep_result,
    sweep_states,
    teacher_checks,
    teachers_fetched,
    train_outcome,
)

__all__ = [
    "completion_script",
    "err",
    "error",
    "eval_result",
    "fetch_progress",
    "is_quiet",
    "json_out",
    "models_table",
    "note",
    "out",
    "presets",
    "progress_enabled",
    "progress_for",
    "quickstart_result",
    "report_curves",
    "report_groups",
    "report_paper",
    "run_summary",
    "run_view",
    "runs_table",
    "set_quiet",
    "slurm_submission",
    "sweep_plan",
    "sweep_result",
    "sweep_states",
    "teacher_checks",
    "teachers_fetched",
    "text",
    "train_outcome",
    "training_progress",
]
