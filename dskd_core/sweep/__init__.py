"""Sweeps: a grid of runs → canonical run folders → a queue that skips, resumes and records.

``grid_configs`` builds the DSKD README's grid for one method and pair (scales × plain/--stand ×
seeds, duplicates removed); ``plan_configs`` reads an arbitrary grid from a TOML plan;
``run_sweep`` trains what is not finished yet: new runs that share a data stream and a teacher
in lockstep, interrupted ones resumed, failures recorded without stopping the sweep, and with
several devices one run per device at a time. A run folder counts as finished only for the same
config (``config.json`` compared with the request by ``config_differences``); one holding
another config is refused up front, or replaced with ``overwrite``.
"""

from __future__ import annotations

from dskd_core.sweep.plan import (
    DEFAULT_SCALES_GRID,
    LIST_VALUED,
    SweepRequest,
    grid_configs,
    parse_devices,
    parse_scales_grid,
    parse_seeds,
    plan_configs,
    stand_modes,
    unique_runs,
)
from dskd_core.sweep.run import (
    Observer,
    Status,
    SweepResult,
    SweepRow,
    _device_worker,
    check_sweep,
    conflict_message,
    inspect_for,
    plan_rows,
    resolved_for,
    run_status,
    run_sweep,
    summary_rows,
)

__all__ = [
    "DEFAULT_SCALES_GRID",
    "LIST_VALUED",
    "Observer",
    "Status",
    "SweepRequest",
    "SweepResult",
    "SweepRow",
    "_device_worker",
    "check_sweep",
    "conflict_message",
    "grid_configs",
    "inspect_for",
    "parse_devices",
    "parse_scales_grid",
    "parse_seeds",
    "plan_configs",
    "plan_rows",
    "resolved_for",
    "run_status",
    "run_sweep",
    "stand_modes",
    "summary_rows",
    "unique_runs",
]
