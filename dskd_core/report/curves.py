"""Each group's mean curves (``dskd report --curves``): test top-1 per epoch and the training loss within epochs.

A one-epoch run (the digits recipe) has a single test top-1; its log line's ``train_loss_curve`` — the mean
training loss per tenth of the epoch — is what shows it learning, on a fractional-epoch axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dskd_core.report.build import Report
from dskd_core.report.records import RunRecord
from dskd_core.runs.layout import LOG_FILE
from dskd_core.runs.store import read_events


@dataclass(frozen=True)
class Curve:
    """A group's curves, each the mean over its complete runs (truncated to the shortest run).

    ``epochs``/``mean``: test top-1 after each epoch (1, 2, …). ``loss_epochs``/``loss``: the mean training
    loss of each slice of each epoch (``train_loss_curve``; an epoch logged without it counts as one slice),
    placed at the slice's middle: point ``k`` of ``p`` in epoch ``e`` at ``e - 1 + (k + 0.5) / p``, averaged
    over the runs that logged it; empty when none did (legacy logs).
    """

    label: str
    epochs: list[int]
    mean: list[float]
    n: int
    loss_epochs: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


def epoch_losses(events: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    """The training-loss points of each epoch of a log, epoch 1 first (the last line of an epoch wins).

    ``train_loss_curve`` where the line has it, else ``[train_loss]``; a line with odd values is skipped.
    """
    by_epoch: dict[int, list[float]] = {}
    for event in events:
        if event.get("event") != "epoch":
            continue
        try:
            points = event.get("train_loss_curve") or [event["train_loss"]]
            if isinstance(points, list):
                by_epoch[int(event["epoch"])] = [float(v) for v in points]
        except (KeyError, TypeError, ValueError):
            continue
    out: list[list[float]] = []
    while len(out) + 1 in by_epoch:  # from epoch 1, up to the first gap
        out.append(by_epoch[len(out) + 1])
    return out


def _run_losses(record: RunRecord) -> list[list[float]]:
    if record.source != "dskd":
        return []  # worklogs keep one train_loss an epoch, and the legacy readers do not keep it
    try:
        return epoch_losses(read_events(Path(record.path) / LOG_FILE))
    except OSError:
        return []


def mean_loss_curve(runs: Sequence[Sequence[Sequence[float]]]) -> tuple[list[float], list[float]]:
    """(fractional epochs, mean loss) over the runs' per-epoch points (see :class:`Curve`), [] for no runs."""
    if not runs or not all(runs):
        return [], []
    xs: list[float] = []
    ys: list[float] = []
    for epoch in range(min(map(len, runs))):
        points = min(len(run[epoch]) for run in runs)
        for k in range(points):
            xs.append(epoch + (k + 0.5) / points)
            ys.append(math.fsum(run[epoch][k] for run in runs) / len(runs))
    return xs, ys


def group_curves(report: Report) -> list[Curve]:
    """One curve per group with complete runs that logged their epochs."""
    out = []
    for group in report.groups:
        runs = [r for r in group.used if r.curve]
        if not runs:
            continue
        length = min(len(r.curve) for r in runs)
        mean = [math.fsum(r.curve[i] for r in runs) / len(runs) for i in range(length)]
        losses = [loss for loss in map(_run_losses, runs) if loss]
        loss_epochs, loss = mean_loss_curve([run[:length] for run in losses])
        pair = f"{group.teacher}→{group.student}" if group.teacher else group.student
        label = f"{group.variant} {pair} ({group.dataset}, n={len(runs)})"
        out.append(Curve(label, list(range(1, length + 1)), mean, len(runs), loss_epochs, loss))
    return out
