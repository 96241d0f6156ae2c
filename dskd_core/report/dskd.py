"""dskd run folders read as report records (through :mod:`dskd_core.runs.store`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dskd_core.config import RunConfig, common_keys, run_config_keys
from dskd_core.errors import DskdError
from dskd_core.report.naming import variant_name
from dskd_core.report.records import CONFIG_IGNORED, UNKNOWN, UNREADABLE, RunRecord, UnreadableRun, int_or_none
from dskd_core.runs.layout import CONFIG_FILE, LOG_FILE, SUMMARY_FILE
from dskd_core.runs.store import accuracy_curve, error_reason, path_meta, read_json, read_jsonl


def read_jsonl_curve(path: Path) -> tuple[list[float], bool]:
    """Test top-1 per epoch from ``log.jsonl`` (the last entry of an epoch wins) and whether it ended.

    A line that does not parse, or an event with odd values, is skipped (a line cut by a kill).
    """
    return accuracy_curve(read_jsonl(path))


def _dskd_progress(summary: dict[str, Any], curve: list[float], ended: bool, epochs: int | None) -> tuple[str, int]:
    """(status, epochs done): the summary's, else what the log says."""
    done = int_or_none(summary.get("epochs_done"))
    if done is None:
        done = len(curve) or (epochs or 0 if summary.get("best_acc") is not None else 0)
    status = summary.get("status")
    if not status:
        status = "finished" if ended or (epochs is not None and 0 < epochs <= done) else "running"
    return str(status), done


def _read_part(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return read_json(path, strict=True)
    except UnreadableRun as err:
        problems.append(str(err))
        return {}


def read_dskd_run(run_dir: Path) -> RunRecord | None:
    """A dskd run folder: ``summary.json`` first, then ``config.json``, ``log.jsonl`` and the folder names.

    A file that cannot be read makes the run a record with status ``unreadable`` (never averaged)
    when the rest says which group it is, else raises :class:`UnreadableRun`.
    """
    problems: list[str] = []
    summary = _read_part(run_dir / SUMMARY_FILE, problems)
    config = _read_part(run_dir / CONFIG_FILE, problems)
    try:
        curve, ended = read_jsonl_curve(run_dir / LOG_FILE)
    except OSError as err:
        problems.append(f"log.jsonl cannot be read ({error_reason(err)})")
        curve, ended = [], False
    info = {**path_meta(run_dir), **config, **{k: v for k, v in summary.items() if v is not None}}
    if "method" not in info or "student" not in info:
        if problems:
            raise UnreadableRun("; ".join(problems))
        return None
    if not problems:
        try:
            return _dskd_record(run_dir, summary, config, info, curve, ended)
        except (TypeError, ValueError) as err:
            problems.append(f"summary.json or config.json holds a value of the wrong type ({err})")
    return _unreadable_record(run_dir, summary, config, info, "; ".join(problems))


def _unreadable_record(
    run_dir: Path, summary: dict[str, Any], config: dict[str, Any], info: dict[str, Any], why: str
) -> RunRecord:
    """A run that is listed (excluded, with ``why``) under the group its readable parts name."""
    method = str(info["method"])
    try:
        variant = _dskd_variant(method, summary, config, info)
    except (TypeError, ValueError):
        variant = str(info.get("variant", method))
    return RunRecord(
        source="dskd",
        path=str(run_dir),
        dataset=str(info.get("dataset", UNKNOWN)),
        teacher=None if info.get("teacher") is None else str(info["teacher"]),
        student=str(info["student"]),
        method=method,
        variant=variant,
        seed=int_or_none(info.get("seed")),
        status=UNREADABLE,
        epochs=int_or_none(info.get("epochs")),
        epochs_done=0,
        best_acc=None,
        last_acc=None,
        error=why,
    )


def _dskd_variant(method: str, summary: dict[str, Any], config: dict[str, Any], info: dict[str, Any]) -> str:
    """The variant of the config, named as dskd names it now (a run trained before the SDD
    reduction was part of the name is named by its config, not by its summary), else as recorded."""
    if config:
        try:
            return RunConfig(**{k: v for k, v in config.items() if k in run_config_keys()}).variant
        except (ValidationError, DskdError, TypeError):
            scales, stand = config.get("scales", [1]), bool(config.get("stand"))
            return variant_name(method, scales, stand)
    return str(summary.get("variant") or info.get("variant"))


def _dskd_record(
    run_dir: Path,
    summary: dict[str, Any],
    config: dict[str, Any],
    info: dict[str, Any],
    curve: list[float],
    ended: bool,
) -> RunRecord:
    method = str(info["method"])
    variant = _dskd_variant(method, summary, config, info)
    epochs = int_or_none(info.get("epochs"))
    status, epochs_done = _dskd_progress(summary, curve, ended, epochs)
    best = summary.get("best_acc") if epochs_done > 0 else None
    last = summary.get("last_acc")
    full = _with_defaults(config)
    return RunRecord(
        source="dskd",
        path=str(run_dir),
        dataset=str(info.get("dataset", UNKNOWN)),
        teacher=info.get("teacher"),
        student=str(info["student"]),
        method=method,
        variant=variant,
        seed=int_or_none(info.get("seed")),
        status=status,
        epochs=epochs,
        epochs_done=epochs_done,
        best_acc=float(best) if best is not None else (max(curve) if curve else None),
        last_acc=float(last) if last is not None else (curve[-1] if curve else None),
        curve=tuple(curve),
        config={k: v for k, v in full.items() if k not in CONFIG_IGNORED} or None,
        error=summary.get("error"),
        epoch_passes=int_or_none(full.get("epoch_passes")) if config else None,
    )


def _with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config with the keys an older dskd did not write, at the defaults that applied then."""
    if not config:
        return config
    missing = {
        name: spec.get_default(call_default_factory=True)
        for name, spec in ((k, RunConfig.model_fields[k]) for k in common_keys())
        if name not in config and not spec.is_required()
    }
    return {**missing, **config} if missing else config
