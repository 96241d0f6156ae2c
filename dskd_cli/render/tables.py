"""The views of the listing and single-result commands: run and eval results, models, presets,
quickstart, teachers and sweeps."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from dskd_cli.render.console import err, is_quiet, json_out, out, print_wide, text
from dskd_core.runs.records import Summary

if TYPE_CHECKING:
    from dskd_core.models.registry import ModelInfo
    from dskd_core.presets import Preset
    from dskd_core.report.records import RunRecord
    from dskd_core.runs.listing import RunView
    from dskd_core.sweep import SweepResult
    from dskd_core.sweep.slurm import RunState, Submission
    from dskd_core.teachers import TeacherResult
    from dskd_core.teachers.checks import CheckResult
    from dskd_core.train.run import TrainOutcome


def run_summary(summary: Summary, run_dir: str) -> None:
    if is_quiet():
        return
    pair = f"{summary.teacher}→{summary.student}" if summary.teacher else summary.student
    last = f"{summary.last_acc:.2f}" if summary.last_acc is not None else "none"
    out.print(
        f"{summary.variant} {pair} on {summary.dataset}: best top-1 {summary.best_acc:.2f} "
        f"(epoch {summary.best_epoch}), last {last} after {summary.epochs_done} epochs, "
        f"{summary.wall_time_s:.0f}s → {run_dir}",
        markup=False,
    )


def eval_result(result: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        json_out(result)
        return
    out.print(
        f"top-1 {result['top1']:.2f}  top-5 {result['top5']:.2f}  loss {result['loss']:.4f}  "
        f"({result['samples']} {result['dataset']} test images, {result['model']} from {result['checkpoint']})",
        markup=False,
    )


def models_table(rows: Sequence[ModelInfo]) -> None:
    """Rows of (zoo, model, parameters or None, aliases)."""
    table = Table("zoo", "model", "parameters", "also accepted as", box=box.SIMPLE_HEAD)
    for zoo, name, params, aliases in rows:
        table.add_row(zoo, name, f"{params / 1e6:.2f} M" if params is not None else "", aliases)
    out.print(table)


def presets(rows: Sequence[Preset], fmt: str) -> None:
    if fmt == "json":
        json_out(
            [
                {
                    "dataset": p.dataset,
                    "source": list(p.sources),
                    "sdd": p.sdd,
                    "method": p.method,
                    "teacher": p.teacher,
                    "student": p.student,
                    "structure": p.structure,
                    "sdd_scales": p.sdd_scales,
                    "base_temp": p.base_temp,
                    "stand_kd_weight": p.stand_kd_weight,
                    **p.values,
                    "note": p.note,
                }
                for p in rows
            ]
        )
        return
    datasets = ", ".join(sorted({p.dataset for p in rows}))
    table = Table(
        title=f"{len(rows)} presets ({datasets})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="source: --preset-source; sdd: for runs with SDD scales (on), without (off) or both; "
        "scales: for --scales auto; τ and w: --base-temp and --kd-weight under --stand; --format json for every value",
    )
    for column in ("dataset", "source", "sdd", "method", "teacher", "student", "scales", "τ", "w", "lr", "batch"):
        table.add_column(column, no_wrap=True)
    for column in ("β", "from"):
        table.add_column(column)
    for p in rows:
        beta = p.values.get("beta")
        table.add_row(
            p.dataset,
            ",".join(p.sources),
            "both" if p.sdd is None else "on" if p.sdd else "off",
            p.method,
            p.teacher,
            p.student,
            ",".join(map(str, p.sdd_scales)),
            f"{p.base_temp:g}",
            f"{p.stand_kd_weight:g}",
            f"{p.values.get('lr', '')}",
            f"{p.values.get('batch_size', '')}",
            "" if beta is None else f"{beta:g}",
            p.note,
        )
    print_wide(table, detail=("source", "β", "from"))


def teachers_fetched(results: Sequence[TeacherResult]) -> None:
    """One line per teacher on stdout: what was done and where the checkpoint is."""
    for r in results:
        if r.status == "missing":
            out.print(f"{r.model}: missing from the archive, skipped", markup=False)
            continue
        done = "converted" if r.status == "converted" else "present (verified)"
        details = [f"published top-1 {r.published_top1:.2f}"]
        if r.reported_top1 is not None:
            details.append(f"checkpoint reports {r.reported_top1:.2f}")
        if r.epoch is not None:
            details.append(f"epoch {r.epoch}")
        out.print(f"{r.model}: {done} → {r.path} ({', '.join(details)})", markup=False)


def teacher_checks(results: Sequence[CheckResult]) -> None:
    """Published vs measured top-1 per teacher on stdout; a warning on stderr for each gap over 1 point."""
    table = Table("teacher", "published", "measured", "gap", "test images", box=box.SIMPLE_HEAD, pad_edge=False)
    for r in results:
        table.add_row(r.model, f"{r.published_top1:.2f}", f"{r.measured_top1:.2f}", f"{r.gap:+.2f}", str(r.samples))
    out.print(table)
    for r in results:
        if r.weak:
            err.print(
                f"warning: {r.model} measures {r.measured_top1:.2f}, {r.gap:.2f} points below the published "
                f"{r.published_top1:.2f}: `dskd train` refuses it unless --allow-weak-teacher",
                markup=False,
            )


def sweep_plan(rows: Sequence[Mapping[str, Any]], fmt: str) -> None:
    if fmt == "json":
        json_out(list(rows))
        return
    table = Table(title=f"sweep plan: {len(rows)} runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "seed", "pair", "dataset", "status"):
        table.add_column(column, no_wrap=True)
    labels = {"done": "done (skip)", "resume": "resume", "new": "new", "conflict": "conflict", "overwrite": "overwrite"}
    for row in rows:
        pair = f"{row['teacher']}→{row['student']}" if row["teacher"] else row["student"]
        status = labels[row["status"]]
        if row.get("differs"):
            status += f" ({', '.join(row['differs'])} differ{'s' if len(row['differs']) == 1 else ''})"
        table.add_row(row["run"], str(row["seed"]), pair, row["dataset"], status)
    out.print(table)
    roots = sorted({str(Path(row["run_dir"]).parents[2]) for row in rows})
    out.print(f"run folders under: {', '.join(roots)} (--format json lists each)", markup=False)
    fused = [row for row in rows if row.get("fused")]
    if fused:
        groups = len({row["fused_group"] for row in fused})
        out.print(
            f"fused: {len(fused)} runs in {groups} group{'s' if groups != 1 else ''}, one stacked step each "
            "(--no-fuse: one at a time)",
            markup=False,
        )
    for row in rows:
        if row.get("not_fused"):
            why = row["not_fused"]
            err.print(f"note: {row['run']} seed {row['seed']} trains alone, not fused: {why}", markup=False)
    conflicts = sum(row["status"] == "conflict" for row in rows)
    if conflicts:
        out.print(
            f"{conflicts} run folder{'s' if conflicts > 1 else ''} hold{'s' if conflicts == 1 else ''} another "
            "config: the sweep refuses to start until you pass --overwrite (to replace them) or another --runs-dir",
            markup=False,
        )


def sweep_result(result: SweepResult, fmt: str) -> None:
    from dskd_core.sweep import summary_rows  # here, not at the top: the CLI starts without torch

    rows = summary_rows(result)
    if fmt == "json":
        fused = [
            {
                "students": f.students,
                "student": f.student,
                "student_img_per_s": f.student_img_per_s,
                "single_img_per_s": f.single_img_per_s,
                "ratio": f.ratio,
                "single_error": f.single_error,
            }
            for f in result.fused
        ]
        json_out({"runs": list(rows), "lockstep_speedups": result.speedups, "fused": fused, "notes": result.notes})
        return
    table = Table(title="sweep", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "seed", "status", "best top-1", "last top-1"):
        table.add_column(column, justify="right" if "top-1" in column else "left")
    for row in rows:
        best = "" if row["best_acc"] is None else f"{row['best_acc']:.2f}"
        last = "" if row["last_acc"] is None else f"{row['last_acc']:.2f}"
        status = {"done": "skipped (done)"}.get(row["status"], row["status"])
        table.add_row(row["run"], str(row["seed"]), status, best, last)
    out.print(table)
    for row in rows:
        if row["error"]:
            err.print(f"failed: {row['run']} seed {row['seed']}: {row['error']}", markup=False)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    for f in result.fused:
        ratio = f" = {f.ratio:.2f}x separate runs (one alone: {f.single_img_per_s:,.0f} img/s)" if f.ratio else ""
        if f.single_error:
            ratio = f" (one run alone could not be timed: {f.single_error})"
        out.print(
            f"fused: {f.students} {f.student} students as one step, {f.student_img_per_s:,.0f} student-img/s{ratio}, "
            "measured",
            markup=False,
        )
    for speedup in result.speedups:
        out.print(
            f"lockstep: {speedup:.2f}x the throughput of separate runs (estimated from the measured "
            "teacher-forward and data time)",
            markup=False,
        )


def train_outcome(outcome: TrainOutcome) -> None:
    """``dskd train``'s result: the resolved config (``--dry-run``), the run's summary, or nothing (``--nproc``:
    the processes reported)."""
    from dskd_core.train.run import DryRun, Trained  # here, not at the top: the CLI starts without torch

    if isinstance(outcome, DryRun):
        json_out(outcome.config.model_dump(mode="json"))
    elif isinstance(outcome, Trained):
        run_summary(Summary.from_json(outcome.result.summary), str(outcome.result.run_dir))


def runs_table(rows: Sequence[RunRecord], root: Path, fmt: str) -> None:
    """``dskd runs``: one line per run folder (``--format json``: every field)."""
    if fmt == "json":
        json_out(
            [
                {
                    "dataset": r.dataset,
                    "teacher": r.teacher,
                    "student": r.student,
                    "method": r.method,
                    "variant": r.variant,
                    "seed": r.seed,
                    "status": r.status,
                    "epochs": r.epochs,
                    "epochs_done": r.epochs_done,
                    "best_acc": r.best_acc,
                    "last_acc": r.last_acc,
                    "path": r.path,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        text(f"no runs under {root}")
        return
    table = Table(
        title=f"{len(rows)} runs under {root}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="epochs: done/configured; top-1 in %; dskd runs show RUN for one run's config and last events",
    )
    for column in ("dataset", "pair", "variant", "seed", "status", "epochs", "best", "last"):
        table.add_column(column, no_wrap=column not in ("pair", "variant"))
    table.add_column("folder", overflow="fold")
    for r in rows:
        pair = f"{r.teacher}→{r.student}" if r.teacher else r.student
        epochs = f"{r.epochs_done}/{r.epochs}" if r.epochs is not None else str(r.epochs_done)
        table.add_row(
            r.dataset,
            pair,
            r.variant,
            "" if r.seed is None else str(r.seed),
            r.status,
            epochs,
            "" if r.best_acc is None else f"{r.best_acc:.2f}",
            "" if r.last_acc is None else f"{r.last_acc:.2f}",
            _relative(r.path, root),
        )
    print_wide(table, detail=("folder",))


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


def run_view(view: RunView, fmt: str) -> None:
    """``dskd runs show``: the effective config, the summary and the last events of one run."""
    if fmt == "json":
        json_out({"path": str(view.path), "config": view.config, "summary": view.summary, "events": view.events})
        return
    text(f"run {view.path}")
    summary = view.summary
    if summary:
        best, last = summary.get("best_acc"), summary.get("last_acc")
        parts = [
            f"status {summary.get('status', '?')}",
            f"epochs {summary.get('epochs_done', '?')}/{summary.get('epochs', '?')}",
        ]
        if best is not None:
            parts.append(f"best top-1 {best:.2f} (epoch {summary.get('best_epoch', '?')})")
        if last is not None:
            parts.append(f"last {last:.2f}")
        text("summary: " + ", ".join(parts))
    else:
        text("summary: none yet (no epoch has finished)")
    text("config (config.json, the effective values):")
    for key, value in view.config.items():
        text(f"  {key} = {json.dumps(value)}")
    text(f"last {len(view.events)} events (log.jsonl):")
    for event in view.events:
        text("  " + json.dumps(event))


def slurm_submission(submission: Submission, status_command: str, fmt: str) -> None:
    """What ``sweep --launcher slurm`` submitted: the array, its tasks and runs; or that nothing was left."""
    runs = sum(len(g) for g in submission.groups)
    if fmt == "json":
        json_out(
            {
                "array_id": submission.array_id,
                "tasks": [
                    {"job_id": job, "runs": [c.run_name + f"/seed{c.seed}" for c in group]}
                    for job, group in zip(submission.job_ids, submission.groups, strict=True)
                ],
                "skipped": [c.run_name + f"/seed{c.seed}" for c in submission.skipped],
            }
        )
        return
    if not submission.job_ids:
        done = len(submission.skipped)
        text(
            f"nothing to submit: the {done} run{'s' if done != 1 else ''} of this sweep "
            f"{'are' if done != 1 else 'is'} finished"
        )
        return
    table = Table(title=f"Slurm job array {submission.array_id}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("job", "run", "seed", "pair"):
        table.add_column(column, no_wrap=column != "run")
    for job, group in zip(submission.job_ids, submission.groups, strict=True):
        for cfg in group:
            pair = f"{cfg.teacher}→{cfg.student}" if cfg.teacher else cfg.student
            table.add_row(job, cfg.run_name, str(cfg.seed), pair)
    print_wide(table)
    done = len(submission.skipped)
    skipped = f"; {done} finished run{'s' if done != 1 else ''} not submitted" if done else ""
    tasks = len(submission.job_ids)
    text(
        f"submitted {runs} run{'s' if runs != 1 else ''} as Slurm job array {submission.array_id} ({tasks} "
        f"task{'s' if tasks != 1 else ''}){skipped}; their state: {status_command}"
    )


def sweep_states(states: Sequence[RunState], fmt: str) -> None:
    """``sweep --status``: each run's folder state and, for a submitted one, its job and the scheduler's state."""
    if fmt == "json":
        json_out(
            [
                {"run_dir": str(s.run_dir), "folder": s.folder, "job_id": s.job_id, "scheduler": s.scheduler}
                for s in states
            ]
        )
        return
    table = Table(title=f"sweep status: {len(states)} runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "seed", "folder", "job", "scheduler"):
        table.add_column(column)
    for s in states:
        table.add_row(
            s.run_dir.parent.name,
            s.run_dir.name.removeprefix("seed"),
            s.folder,
            s.job_id or "—",
            s.scheduler or ("—" if s.job_id is None else "not queued"),
        )
    print_wide(table, detail=("folder",))
