"""Lockstep training: several runs of one sweep on one data stream and one teacher forward per batch.

Runs that share the teacher, the dataset, the seed and the batch stream (batch size,
augmentation) see exactly the same batches; the frozen teacher's output for a batch is the
same for all of them, so it is computed once and handed to every student. Each run keeps its
own student, optimizer, loss, log and run folder (a :class:`~dskd_core.train.engine.Trainer`
each), and ends with the same weights as a separate run with the same seed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from dskd_core.config import RunConfig, Settings
from dskd_core.data import Loader, per_class, run_loaders
from dskd_core.device import apply_threads, resolve_device
from dskd_core.errors import DskdError, UsageError
from dskd_core.methods import get_method
from dskd_core.models import Features, ZooModel
from dskd_core.runlock import RunLock
from dskd_core.trackers import check_available, parse_log
from dskd_core.train.engine import Observer, RunResult, Trainer
from dskd_core.train.evaluate import evaluate
from dskd_core.train.execution import deterministic_kernels, resolve_execution, tf32_mode
from dskd_core.train.setup import build_distiller, load_teacher, open_dataset

#: RunConfig fields that decide the data stream and the teacher: equal within a lockstep group.
STREAM_KEYS = (
    "dataset",
    "teacher",
    "teacher_ckpt",
    "seed",
    "batch_size",
    "test_batch_size",
    "aug",
    "epoch_passes",
    "epochs",
    "deterministic",
    "precision",
    "image_size",
    "num_classes",
    "train_per_class",
)


def stream_key(cfg: RunConfig) -> tuple[Any, ...]:
    """What a lockstep group shares: the run-config values of :data:`STREAM_KEYS` and the views the method trains on."""
    return (*(getattr(cfg, k) for k in STREAM_KEYS), get_method(cfg.method).strong_view)


def can_share(cfg: RunConfig, settings: Settings) -> bool:
    """Whether a run may train in a lockstep group: on the reference path (the fast path's
    compiled step cannot share a teacher output; on CUDA a fast run alone beats a group), and
    without per-batch draws of its own (CRD's contrast indices would change the shared stream).
    """
    if get_method(cfg.method).batch_keys:
        return False
    return not resolve_execution(cfg, resolve_device(settings.device), cfg.world_size).fast


class SharedTeacher(ZooModel):
    """The frozen teacher, run once per batch view: a later call with the same input tensor reuses the output.

    It keeps the outputs of the last :data:`VIEWS_KEPT` inputs, so the two views of a two-view
    batch (MLKD's weak and strong images) are each computed once for the whole group.
    """

    VIEWS_KEPT = 2

    def __init__(self, teacher: ZooModel) -> None:
        super().__init__()
        self.inner = teacher
        self._kept: list[tuple[Tensor, tuple[Tensor, Features]]] = []
        self.seconds = 0.0  # time spent in real forwards (for the speedup estimate)

    def forward(self, x: Tensor) -> tuple[Tensor, Features]:
        for seen, output in self._kept:
            if seen is x:
                return output
        tick = time.perf_counter()
        output = self.inner(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        self.seconds += time.perf_counter() - tick
        self._kept = [*self._kept[-(self.VIEWS_KEPT - 1) :], (x, output)]
        return output

    def get_classifier(self) -> nn.Linear:
        return self.inner.get_classifier()

    def get_stage_channels(self) -> list[int]:
        return self.inner.get_stage_channels()

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return self.inner.get_bn_before_relu()


@dataclass(frozen=True)
class LockstepResult:
    results: list[RunResult | DskdError]  # per config, in order: its result or why it failed
    speedup: float | None  # estimated separate-runs time / lockstep time


def fit_lockstep(
    cfgs: Sequence[RunConfig], settings: Settings, *, observer: Observer | None = None, overwrite: bool = False
) -> LockstepResult:
    """Train new runs that share a data stream and a teacher together; each in its own run folder.

    ``overwrite`` replaces what the folders hold, as ``fit(overwrite=True)`` (a sweep's ``--overwrite``).
    """
    if not cfgs or len({stream_key(c) for c in cfgs}) != 1:
        raise UsageError("lockstep runs must share dataset, teacher, seed, batch stream and epochs")
    notify = observer or (lambda event: None)
    trackers = parse_log(settings.log)
    check_available(trackers)
    apply_threads(settings.threads)
    device = resolve_device(settings.device)
    if not all(can_share(c, settings) for c in cfgs):
        raise UsageError("lockstep runs share one reference-path step: train fast-path and CRD runs singly")
    execution = resolve_execution(cfgs[0], device, cfgs[0].world_size)  # the reference path (can_share)
    cfgs = [c.model_copy(update=execution.as_config()) for c in cfgs]  # recorded as it runs
    first = cfgs[0]
    data = open_dataset(first.dataset, settings, first.num_classes)
    spec, train_data, test_data = data.spec, per_class(data.train, first.train_per_class), data.test
    train_loader, test_loader = run_loaders(
        first, settings, spec, (train_data, test_data), device, strong_view=get_method(first.method).strong_view
    )
    with deterministic_kernels(first.deterministic), tf32_mode(execution.tf32), contextlib.ExitStack() as stack:
        teacher = load_teacher(first, settings, spec.num_classes, device)
        shared = SharedTeacher(teacher) if teacher is not None else None
        trainers: list[Trainer] = []
        for cfg in cfgs:
            distiller = build_distiller(cfg, settings, spec.num_classes, device, teacher=shared)
            run_dir = cfg.run_dir(settings.runs_dir)
            stack.enter_context(RunLock(run_dir))
            trainers.append(
                Trainer(
                    cfg,
                    distiller,
                    spec,
                    device,
                    run_dir,
                    resume=False,
                    overwrite=overwrite,
                    notify=notify,
                    execution=execution,
                    trackers=trackers,
                )
            )
        teacher_acc = evaluate(shared.inner, test_loader).top1 if shared is not None else None
        try:
            for trainer in trainers:
                trainer.start(len(train_data), len(test_data), len(train_loader), teacher_acc)
        except BaseException as err:  # a tracker that cannot start: every run of the group says why
            for trainer in trainers:
                trainer.fail(err)
            raise
        return _loop(trainers, train_loader, test_loader, shared, first.epochs)


def _loop(
    trainers: list[Trainer],
    train_loader: Loader,
    test_loader: Loader,
    shared: SharedTeacher | None,
    epochs: int,
) -> LockstepResult:
    outcome: dict[int, RunResult | DskdError] = {}
    active = list(range(len(trainers)))
    wall = data_time = 0.0
    try:
        for epoch in range(1, epochs + 1):
            train_loader.set_epoch(epoch)
            for i in active:
                trainers[i].begin_epoch(epoch)
            tick = time.perf_counter()
            batches = iter(train_loader)
            step = 0
            while active:
                fetch = time.perf_counter()
                batch = next(batches, None)
                data_time += time.perf_counter() - fetch
                if batch is None:
                    break
                step += 1
                for i in list(active):
                    try:
                        trainers[i].step(batch, step, len(train_loader))
                    except DskdError as err:  # one run's NaN stops that run, not the sweep
                        trainers[i].fail(err)
                        outcome[i] = err
                        active.remove(i)
            wall += time.perf_counter() - tick
            for i in list(active):
                trainers[i].end_epoch(test_loader)
    except BaseException as err:
        for i in active:
            trainers[i].fail(err)
        raise
    for i in active:
        outcome[i] = trainers[i].finish()
    n = len(trainers)
    speedup = None
    if shared is not None and wall > 0 and n > 1:
        # Separate runs would repeat the teacher forward and the data pipeline once per run.
        speedup = (wall + (n - 1) * (shared.seconds + data_time)) / wall
    return LockstepResult([outcome[i] for i in range(n)], speedup)
