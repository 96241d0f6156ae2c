"""The only module that prints: results to stdout, notes, progress and errors to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One line on stderr, no traceback."""
    err.print(f"error: {message}", markup=False)


def note(message: str) -> None:
    err.print(f"note: {message}", markup=False)


def json_out(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def text(message: str) -> None:
    out.print(message, markup=False)


def progress_enabled(setting: bool) -> bool:
    return setting and os.environ.get("DSKD_PROGRESS", "1") != "0" and sys.stderr.isatty()


@contextmanager
def training_progress(enabled: bool) -> Iterator[Any]:
    """An observer for the engine's events: a progress bar when interactive, epoch lines otherwise."""
    if not enabled:

        def plain(event: dict[str, Any]) -> None:
            if event["event"] == "epoch":
                err.print(_epoch_line(event), markup=False)
            elif event["event"] in ("start", "resume"):
                err.print(_start_line(event), markup=False)

        yield plain
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task("train", total=None, info="")

        def observe(event: dict[str, Any]) -> None:
            kind = event["event"]
            if kind in ("start", "resume"):
                bar.console.print(_start_line(event), markup=False)
            elif kind == "step":
                bar.update(
                    task,
                    description=f"epoch {event['epoch']}",
                    total=event["steps"],
                    completed=event["step"],
                    info=f"loss {event['loss']:.3f}",
                )
            elif kind == "epoch":
                bar.console.print(_epoch_line(event), markup=False)

        yield observe


def _start_line(event: dict[str, Any]) -> str:
    verb = "resuming after epoch" if event["event"] == "resume" else "starting"
    line = f"{verb} {event['epoch'] if event['event'] == 'resume' else ''}".rstrip()
    line += (
        f" → {event['run_dir']} on {event['device']} ({event['train_samples']} train / {event['test_samples']} test)"
    )
    if "teacher_acc" in event:
        line += f"; teacher top-1 {event['teacher_acc']:.2f}"
    return line


def _epoch_line(event: dict[str, Any]) -> str:
    return (
        f"epoch {event['epoch']:>3}  lr {event['lr']:.4g}  train loss {event['train_loss']:.4f}  "
        f"train {event['train_acc']:.2f}  test {event['test_acc']:.2f} (top-5 {event['test_acc_top5']:.2f})  "
        f"best {event['best_acc']:.2f}  {event['epoch_time_s']:.1f}s"
    )


def run_summary(summary: dict[str, Any], run_dir: str) -> None:
    pair = f"{summary['teacher']}→{summary['student']}" if summary["teacher"] else summary["student"]
    out.print(
        f"{summary['variant']} {pair} on {summary['dataset']}: best top-1 {summary['best_acc']:.2f} "
        f"(epoch {summary['best_epoch']}), last {summary['last_acc']:.2f} after {summary['epochs_done']} epochs, "
        f"{summary['wall_time_s']:.0f}s → {run_dir}",
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


def models_table(rows: Sequence[tuple[str, int | None]]) -> None:
    table = Table("model", "parameters")
    for name, params in rows:
        table.add_row(name, f"{params / 1e6:.2f} M" if params is not None else "")
    out.print(table)


def quickstart_table(rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title="dskd quickstart — digits (offline)")
    for column in ("run", "model", "variant", "best top-1", "last top-1", "train time"):
        table.add_column(column, justify="right" if "top-1" in column or "time" in column else "left")
    for row in rows:
        table.add_row(
            row["label"],
            row["model"],
            row["variant"],
            f"{row['best_acc']:.2f}",
            f"{row['last_acc']:.2f}",
            f"{row['wall_time_s']:.0f}s",
        )
    out.print(table)
    for row in rows:
        out.print(f"{row['label']}: {row['run_dir']}", markup=False)


def presets(rows: Sequence[Any], fmt: str) -> None:
    if fmt == "json":
        json_out(
            [
                {
                    "method": p.method,
                    "teacher": p.teacher,
                    "student": p.student,
                    "structure": p.structure,
                    "sdd_scales": p.sdd_scales,
                    "base_temp": p.base_temp,
                    "stand_kd_weight": p.stand_kd_weight,
                    **p.values,
                }
                for p in rows
            ]
        )
        return
    table = Table(
        title=f"{len(rows)} presets (CIFAR-100)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="scales: for --scales auto; τ and w: --base-temp and --kd-weight under --stand",
    )
    for column in ("method", "teacher", "student", "scales", "τ", "w", "lr", "batch", "β"):
        table.add_column(column, no_wrap=True)
    for p in rows:
        beta = p.values.get("beta")
        table.add_row(
            p.method,
            p.teacher,
            p.student,
            ",".join(map(str, p.sdd_scales)),
            f"{p.base_temp:g}",
            f"{p.stand_kd_weight:g}",
            f"{p.values.get('lr', '')}",
            f"{p.values.get('batch_size', '')}",
            "" if beta is None else f"{beta:g}",
        )
    out.print(table)
