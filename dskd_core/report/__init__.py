"""Reports: run records on disk → groups → mean ± std rows, paired Δ and the DSKD README grids.

A pure function of files: :func:`discover` finds dskd run folders
(``config.json``/``summary.json``/``log.jsonl``) and legacy logs — mdistiller/DSKD ``worklog.txt``
epoch blocks and the logit-standardization repo's ``TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT[,BETA].txt``
files — and :func:`build_report` groups them by (dataset, teacher, student, method, variant).
Nothing here prints; ``dskd_cli/render/report.py`` turns the returned data into tables.

Policy: a run that did not finish (status other than finished, fewer epochs than configured, a
legacy log without its closing ``best_acc`` line) is never averaged: it is excluded from n, mean
and std and listed under the group's ``excluded`` with a flag. A run whose ``summary.json`` or
``config.json`` cannot be read (corrupt JSON, not an object, an unreadable file) is excluded the
same way and also listed in :attr:`Report.unreadable`, which the CLI turns into exit code 1. A
group whose complete runs disagree (mixed epoch counts, epoch passes or configs, a seed twice)
is averaged over those runs but flagged inconsistent in every view (``ok`` false, a ``!`` in the
grids).

A Δ pairs a variant with its plain method only as far as their configs agree on every key but
the variant's own (:data:`VARIANT_KEYS`, plus :data:`STAND_KEYS` when one side has ``--stand``):
otherwise it is flagged inconsistent with the differing keys named. Legacy logs record little
of their config; a Δ that involves one compares what is known (epochs, epoch passes, the keys
both record) and says ``config unknown`` instead of passing or flagging it.

Modules: ``records`` (RunRecord, Hints, Discovery), ``naming`` (variant and model names),
``dskd`` (dskd run folders, through :mod:`dskd_core.runs.store`), ``legacy`` (mdistiller, LSKD,
yacs), ``discover``, ``stats`` (Stat, summarize), ``groups`` (Group, make_group), ``deltas``
(Delta, paired_delta), ``build`` (Report, build_report), ``paper`` (the README grids), ``curves``.
"""

from __future__ import annotations

from dskd_core.config import STAND_KEYS
from dskd_core.report.build import Report, build_report, check_metric
from dskd_core.report.curves import Curve, group_curves
from dskd_core.report.deltas import (
    VARIANT_KEYS,
    ConfigCheck,
    Delta,
    compare_groups,
    deltas,
    paired_delta,
    variant_keys,
)
from dskd_core.report.discover import discover
from dskd_core.report.dskd import read_dskd_run, read_jsonl_curve
from dskd_core.report.groups import Group, GroupKey, config_mismatch, group_records, make_group
from dskd_core.report.legacy import LSKD_NAME, Worklog, parse_worklog, parse_yacs_dump, read_lskd_log, read_worklog
from dskd_core.report.naming import (
    LEGACY_METHODS,
    MODEL_ALIASES,
    is_dskd_variant,
    model_name,
    own_reduction,
    parse_variant,
    variant_name,
)
from dskd_core.report.paper import (
    MODEL_LABELS,
    PAPER_DATASET,
    PAPER_METHODS,
    PAPER_TITLES,
    Paper,
    PaperCell,
    PaperRow,
    PaperTable,
    paper_grids,
    paper_tables,
    pick_dskd_group,
    recommended_scales,
)
from dskd_core.report.records import (
    CONFIG_IGNORED,
    METRICS,
    UNKNOWN,
    UNREADABLE,
    Discovery,
    Hints,
    Metric,
    RunRecord,
    UnreadableRun,
)
from dskd_core.report.stats import Stat, summarize

__all__ = [
    "CONFIG_IGNORED",
    "LEGACY_METHODS",
    "LSKD_NAME",
    "METRICS",
    "MODEL_ALIASES",
    "MODEL_LABELS",
    "PAPER_DATASET",
    "PAPER_METHODS",
    "PAPER_TITLES",
    "STAND_KEYS",
    "UNKNOWN",
    "UNREADABLE",
    "VARIANT_KEYS",
    "ConfigCheck",
    "Curve",
    "Delta",
    "Discovery",
    "Group",
    "GroupKey",
    "Hints",
    "Metric",
    "Paper",
    "PaperCell",
    "PaperRow",
    "PaperTable",
    "Report",
    "RunRecord",
    "Stat",
    "UnreadableRun",
    "Worklog",
    "build_report",
    "check_metric",
    "compare_groups",
    "config_mismatch",
    "deltas",
    "discover",
    "group_curves",
    "group_records",
    "is_dskd_variant",
    "make_group",
    "model_name",
    "own_reduction",
    "paired_delta",
    "paper_grids",
    "paper_tables",
    "parse_variant",
    "parse_worklog",
    "parse_yacs_dump",
    "pick_dskd_group",
    "read_dskd_run",
    "read_jsonl_curve",
    "read_lskd_log",
    "read_worklog",
    "recommended_scales",
    "summarize",
    "variant_keys",
    "variant_name",
]
