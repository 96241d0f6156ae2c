"""Progress of long work on stderr: training epochs (a bar when interactive) and teacher downloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from dskd_cli.render.console import err, progress_enabled

if TYPE_CHECKING:
    from dskd_core.train.engine import Observer


@contextmanager
def training_progress(enabled: bool) -> Iterator[Observer]:
    """An observer for the engine's events: a progress bar when interactive, epoch lines otherwise."""
    if not enabled:

        def plain(event: dict[str, Any]) -> None:
            if event["event"] == "epoch":
                err.print(_epoch_line(event), markup=False)
            elif event["event"] in ("start", "resume"):
                err.print(_start_line(event), markup=False)
            elif event["event"] == "note":
                err.print(f"note: {event['message']}", markup=False)

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
                    info=f"loss {event['loss']:.3f}" if event.get("loss") is not None else "",
                )
            elif kind == "epoch":
                bar.console.print(_epoch_line(event), markup=False)
            elif kind == "note":
                bar.console.print(f"note: {event['message']}", markup=False)

        yield observe


def _start_line(event: dict[str, Any]) -> str:
    verb = "resuming after epoch" if event["event"] == "resume" else "starting"
    line = f"{verb} {event['epoch'] if event['event'] == 'resume' else ''}".rstrip()
    line += (
        f" → {event['run_dir']} on {event['device']} ({event['train_samples']} train / {event['test_samples']} test)"
    )
    if "world_size" in event:
        line += f"; {event['world_size']} processes ({event['backend']}), global batch {event['global_batch_size']}"
    if "teacher_acc" in event:
        line += f"; teacher top-1 {event['teacher_acc']:.2f}"
    return line + "".join(f"\n  {note}" for note in event.get("notes", ()))


def _epoch_line(event: dict[str, Any]) -> str:
    return (
        f"epoch {event['epoch']:>3}  lr {event['lr']:.4g}  train loss {event['train_loss']:.4f}  "
        f"train {event['train_acc']:.2f}  test {event['test_acc']:.2f} (top-5 {event['test_acc_top5']:.2f})  "
        f"best {event['best_acc']:.2f}  {event['epoch_time_s']:.1f}s"
    )


@contextmanager
def fetch_progress(enabled: bool) -> Iterator[Observer]:
    """An observer for teacher downloads: a byte progress bar when interactive; warnings and retries always."""
    bars: dict[str, Any] = {}
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )

    def observe(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind in ("warning", "retry"):
            (bar.console if bars else err).print(f"{kind}: {event['message']}", markup=False)
        elif kind == "download" and enabled:
            if not bars:
                bar.start()  # lazily, so nothing is drawn when nothing is downloaded
            if event["file"] not in bars:
                bars[event["file"]] = bar.add_task(event["file"], total=event["total"])
            bar.update(bars[event["file"]], completed=event["done"], total=event["total"])

    try:
        yield observe
    finally:
        if bars:
            bar.stop()


def progress_for(setting: bool) -> AbstractContextManager[Observer]:
    """:func:`training_progress`, interactive when ``setting`` (``Settings.progress``) and the terminal allow."""
    return training_progress(progress_enabled(setting))
