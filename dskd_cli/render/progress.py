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
from dskd_core.runs.records import EpochEvent, Event, NoteEvent, StartEvent, StepEvent, event_from_json

if TYPE_CHECKING:
    from dskd_core.train.engine import Observer


@contextmanager
def training_progress(enabled: bool) -> Iterator[Observer]:
    """An observer for the engine's events: a progress bar when interactive, epoch lines otherwise.

    The events arrive as their JSON form; each is read back into its typed record
    (:mod:`dskd_core.runs.records`) before anything of it is shown.
    """
    if not enabled:

        def plain(event: dict[str, Any]) -> None:
            line = _line(_record(event))
            if line is not None:
                err.print(line, markup=False)

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
            record = _record(event)
            if isinstance(record, StepEvent):
                bar.update(
                    task,
                    description=f"epoch {record.epoch}",
                    total=record.steps,
                    completed=record.step,
                    info=f"loss {record.loss:.3f}" if record.loss is not None else "",
                )
            elif (line := _line(record)) is not None:
                bar.console.print(line, markup=False)

        yield observe


def _record(event: dict[str, Any]) -> Event | None:
    """The typed record of an engine event; None for a kind this view does not show."""
    try:
        return event_from_json(event)
    except ValueError:
        return None


def _line(record: Event | None) -> str | None:
    """The line a start, resume, epoch or note event prints; None for the others."""
    if isinstance(record, StartEvent):
        return _start_line(record)
    if isinstance(record, EpochEvent):
        return _epoch_line(record)
    if isinstance(record, NoteEvent):
        return f"note: {record.message}"
    return None


def _start_line(event: StartEvent) -> str:
    line = f"resuming after epoch {event.epoch}" if event.resumed else "starting"
    line += f" → {event.run_dir} on {event.device} ({event.train_samples} train / {event.test_samples} test)"
    if event.world_size is not None:
        line += f"; {event.world_size} processes ({event.backend}), global batch {event.global_batch_size}"
    if event.teacher_acc is not None:
        line += f"; teacher top-1 {event.teacher_acc:.2f}"
    return line + "".join(f"\n  {note}" for note in event.notes)


def _epoch_line(event: EpochEvent) -> str:
    return (
        f"epoch {event.epoch:>3}  lr {event.lr:.4g}  train loss {event.train_loss:.4f}  "
        f"train {event.train_acc:.2f}  test {event.test_acc:.2f} (top-5 {event.test_acc_top5:.2f})  "
        f"best {event.best_acc:.2f}  {event.epoch_time_s:.1f}s"
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
