"""The training loop: one function a reader can hold in their head.

Per epoch: set the step LR, train (the distiller returns named loss terms; the run's
:class:`~dskd_core.train.step.Step`, the reference or the fast one, weights and sums them and
steps the optimizer), evaluate on the test split, commit the train state, then write the student
files, the log line and ``summary.json``. The engine never branches on a method's name, nor on
which step it holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dskd_core.config import RunConfig, Settings
from dskd_core.data import DatasetSpec, Loader, per_class, run_loaders
from dskd_core.device import apply_threads
from dskd_core.errors import DskdError
from dskd_core.methods import Distiller
from dskd_core.runlock import RunLock
from dskd_core.runs.records import (
    EndEvent,
    EpochEvent,
    FailureEvent,
    FallbackEvent,
    NoteEvent,
    StartEvent,
    StepEvent,
)
from dskd_core.runs.store import RunFiles, RunLog, check_run_dir, finished_result, prepare_run_dir, saved_execution
from dskd_core.trackers import Trackers, check_available, parse_log
from dskd_core.train.distributed import DistContext, main_lock, prepare_distiller, setup
from dskd_core.train.evaluate import evaluate
from dskd_core.train.execution import (
    FAST_EVAL_BATCH,
    Execution,
    deterministic_kernels,
    optimizer_for,
    resolve_execution,
    tf32_mode,
    use_channels_last,
    whole_step_rule,
)
from dskd_core.train.fast import FastStep
from dskd_core.train.setup import build_distiller, open_dataset
from dskd_core.train.state import Progress, load_train_state, save_train_state
from dskd_core.train.step import EagerStep, Step

#: Names that lived here in dskd 0.1, kept importable from this module.
__all__ = [
    "CURVE_POINTS",
    "Observer",
    "RunResult",
    "Trainer",
    "build_distiller",
    "deterministic_kernels",
    "fit",
    "lr_at",
]

Observer = Callable[[dict[str, Any]], None]

#: Points of an epoch's training-loss curve in its log line (``train_loss_curve``).
CURVE_POINTS = 10


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def lr_at(cfg: RunConfig, epoch: int, progress: float = 0.0) -> float:
    """The LR at ``epoch`` (from 1), ``progress`` ∈ [0, 1) of the way through it.

    ``step`` schedule (the papers'): constant within an epoch, decayed once per stage with
    ``epoch > stage``. ``cosine``: ``lr · ½(1 + cos(π·t))`` with ``t`` the fraction of the whole
    run done, updated every step (the short digits recipe, whose runs are one or two epochs).
    """
    base = cfg.lr * cfg.lr_factor
    if cfg.lr_schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * (epoch - 1 + progress) / cfg.epochs))
    return base * cfg.lr_decay_rate ** sum(epoch > stage for stage in cfg.lr_decay_epochs)


def fit(
    cfg: RunConfig,
    settings: Settings,
    *,
    resume: bool = False,
    overwrite: bool = False,
    run_dir: Path | None = None,
    observer: Observer | None = None,
    allow_weak_teacher: bool = False,
) -> RunResult:
    """Train ``cfg`` into its run folder (``cfg.run_dir(settings.runs_dir)`` unless given).

    The folder is locked for this process. ``resume`` continues from the last committed epoch
    (falling back to the previous state when the newest fails verification); ``overwrite``
    starts afresh over an existing run. A teacher measured weak by ``fetch-teachers --check``
    is refused unless ``allow_weak_teacher``.
    """
    run_dir = run_dir or cfg.run_dir(settings.runs_dir)
    trackers = parse_log(settings.log)
    check_available(trackers)  # a missing extra is refused before anything is written
    apply_threads(settings.threads)
    dist = setup(settings.device, cfg.world_size)  # one process, or this rank of a torchrun launch
    device = dist.device
    if resume:  # what the request leaves to the device, the run keeps as it started (e.g. a lockstep run)
        saved = saved_execution(run_dir)
        if cfg.fast is None or saved.get("fast") in (None, cfg.fast):  # another path asked for: refused by name below
            cfg = cfg.model_copy(update={k: v for k, v in saved.items() if getattr(cfg, k) in (None, "auto")})
    execution = resolve_execution(cfg, device, cfg.world_size)
    cfg = cfg.model_copy(update=execution.as_config())  # the effective values are what config.json records
    if resume and not overwrite and (done := finished_result(cfg, run_dir)) is not None:
        return RunResult(run_dir, done)  # a finished run of this very config: its result, nothing written
    data = open_dataset(cfg.dataset, settings, cfg.num_classes)
    spec, train_data, test_data = data.spec, per_class(data.train, cfg.train_per_class), data.test
    notify = observer or (lambda event: None)
    with deterministic_kernels(cfg.deterministic, autotune=execution.fast), tf32_mode(execution.tf32):
        # Reads only, nothing written yet: a bad teacher or dataset fails before the run folder is touched.
        distiller = build_distiller(cfg, settings, spec.num_classes, device, allow_weak_teacher=allow_weak_teacher)
        distiller.bind_data(train_data)  # data-sized state (CRD's memory banks), or a refusal, before any write
        if execution.fast:
            use_channels_last(distiller)
        prepare_distiller(distiller, dist, cfg.sync_bn)
        # A folder this request may not train into is refused before its lock file is written; one a live
        # process holds is left to the lock (exit 5), which re-checks the folder once it owns it.
        dist.on_main(
            lambda: None if RunLock.held(run_dir) else check_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite)
        )
        with main_lock(dist, run_dir):
            trainer = Trainer(
                cfg,
                distiller,
                spec,
                device,
                run_dir,
                resume=resume,
                overwrite=overwrite,
                notify=notify,
                dist=dist,
                execution=execution,
                trackers=trackers,
            )
            train_loader, test_loader = run_loaders(
                cfg,
                settings,
                spec,
                (train_data, test_data),
                device,
                shard=dist.shard,
                extras=distiller.batch_extras(),
                channels_last=execution.fast,
                strong_view=distiller.strong_view,
                # evaluation does not depend on the batch size: the fast path evaluates in large batches
                test_batch_size=max(cfg.test_batch_size, FAST_EVAL_BATCH) if execution.fast else None,
            )
            teacher_acc = None
            if distiller.teacher is not None and not trainer.resumed:
                teacher_acc = evaluate(distiller.teacher, test_loader, dist).top1
            try:  # a tracker that cannot start fails the run as anything after it would
                trainer.start(len(train_data), len(test_data), len(train_loader), teacher_acc)
                for epoch in range(trainer.progress.epoch + 1, cfg.epochs + 1):
                    train_loader.set_epoch(epoch)
                    trainer.begin_epoch(epoch)
                    for step, batch in enumerate(train_loader, start=1):
                        trainer.step(batch, step, len(train_loader))
                    trainer.end_epoch(test_loader)
            except BaseException as err:
                trainer.fail(err)
                raise
            return trainer.finish()


def make_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    execution: Execution,
    device: torch.device,
    cfg: RunConfig,
    slots: int,
) -> Step:
    """The step ``execution`` asks for: the fast one (device-side) or the reference one."""
    if execution.fast:
        return FastStep(model, optimizer, params, execution, device, cfg.clip_grad, slots)
    return EagerStep(model, optimizer, params, device, cfg.clip_grad, slots)


class Trainer:
    """One run through the epoch loop: its distiller, optimizer, run folder and progress.

    ``fit`` drives one trainer with its own data stream; ``lockstep.fit_lockstep`` drives
    several on one stream and one teacher, ``fused.fit_fused`` several whose students step as one.
    Every epoch ends by committing the train state, then writing the student files, the log line
    and the summary.
    """

    def __init__(
        self,
        cfg: RunConfig,
        distiller: Distiller,
        spec: DatasetSpec,
        device: torch.device,
        run_dir: Path,
        *,
        resume: bool,
        overwrite: bool,
        notify: Observer,
        dist: DistContext | None = None,
        execution: Execution | None = None,
        trackers: Sequence[str] = (),
    ) -> None:
        self.cfg, self.distiller, self.device, self.run_dir, self.notify = cfg, distiller, device, run_dir, notify
        # Under torchrun only rank 0 writes the run folder and reports; every rank trains and evaluates.
        self.dist = dist or DistContext(device=device)
        if not self.dist.is_main:
            self.notify = lambda event: None
        self.params = list(distiller.trainable_parameters())
        self.execution = execution or Execution()
        if whole_step_rule(cfg, self.dist.world_size) is False:  # also for an Execution built by hand
            self.execution = dataclasses.replace(self.execution, whole_step=False)
        self.optimizer = optimizer_for(self.params, cfg, self.execution, device)
        self.resumed = self.dist.on_main(lambda: prepare_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite))
        self.files = RunFiles(cfg, run_dir, device, spec.num_classes, write=self.dist.is_main)
        self.progress, problems = (
            load_train_state(self.files.ckpt_dir, distiller, self.optimizer) if self.resumed else (Progress(), [])
        )
        self.log = RunLog(run_dir / "log.jsonl", self.progress.epoch if self.resumed else None, write=self.dist.is_main)
        for problem in problems:
            self.log.write(FallbackEvent(problem).to_json())
        if self.resumed:
            self.files.repair(distiller, self.progress, self.log)
        self.epoch = self.progress.epoch
        # The experiment trackers (``--log``): rank 0's, like the run folder.
        self.trackers = Trackers(
            trackers if self.dist.is_main else (),
            run_dir,
            cfg,
            resumed_epoch=self.progress.epoch if self.resumed else None,
        )
        self.model = self.dist.wrap(distiller)  # DDP over processes (gradients averaged), else the distiller
        self.stepper = make_step(self.model, self.optimizer, self.params, self.execution, device, cfg, CURVE_POINTS)
        self._noted = False  # the step's fallback note is logged once
        self._reset_epoch_stats()

    def _reset_epoch_stats(self) -> None:
        self._tick = time.perf_counter()
        self._curve_n = [0] * CURVE_POINTS  # images per slice of the epoch (the loss curve's weights)

    def start(self, train_samples: int, test_samples: int, steps: int, teacher_acc: float | None) -> None:
        event = StartEvent(
            resumed=self.resumed,
            epoch=self.progress.epoch,
            run_dir=str(self.run_dir),
            device=str(self.device),
            train_samples=train_samples,
            test_samples=test_samples,
            steps_per_epoch=steps,
            epochs=self.cfg.epochs,
            **self.dist.describe(self.cfg.batch_size),
            cuda_graphs=self.stepper.graphs,
            teacher_acc=teacher_acc,
            notes=tuple(self.distiller.describe()),
        )
        self.log.write(event.to_json())
        self.trackers.start(event)
        self.notify(event.to_json())
        self.files.summary(self.progress, "running")

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.lr = lr_at(self.cfg, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        self.factors = self.distiller.term_weights(epoch)
        self.distiller.train()
        self._reset_epoch_stats()
        self.stepper.begin_epoch(epoch, self.factors)

    def step(self, batch: dict[str, torch.Tensor], step: int, steps: int) -> None:
        slot = self.before_step(step, steps)
        self.stepper.step(batch, slot)
        self.after_step(batch, step, steps, slot)

    def before_step(self, step: int, steps: int) -> int:
        """Step ``step`` of ``steps`` is next: its LR set (per-step schedules); the loss curve's slot it counts in."""
        if self.cfg.lr_schedule != "step":
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(self.cfg, self.epoch, (step - 1) / steps)
        return min((step - 1) * CURVE_POINTS // max(steps, 1), CURVE_POINTS - 1)  # which tenth of the epoch

    def after_step(self, batch: dict[str, torch.Tensor], step: int, steps: int, slot: int) -> None:
        """Step ``step`` was taken (by this trainer's step, or by a fused step of its group): counted, reported."""
        self._curve_n[slot] += len(batch["target"])
        loss = self.stepper.last_loss  # None where the step does not read it back (the fast path)
        self.notify(StepEvent(self.epoch, step, steps, loss).to_json())

    def _loss_curve(self, totals: list[float]) -> list[float]:
        """Mean training loss per slice of the epoch (this process's batches), empty slices left out."""
        return [totals[i] / n for i, n in enumerate(self._curve_n) if n]

    def end_epoch(self, test_loader: Loader) -> None:
        progress, distiller = self.progress, self.distiller
        epoch_stats = self.stepper.collect(self.epoch)
        curve = epoch_stats.loss_per_slot
        if self.stepper.fallback is not None and not self._noted:
            note = NoteEvent(self.stepper.fallback, self.epoch).to_json()
            self.log.write(note)
            self.notify(note)
            self._noted = True
        totals = self.dist.all_sum_dict(
            {**epoch_stats.sums, "correct": epoch_stats.correct, "seen": epoch_stats.seen}
        )  # over all ranks
        seen = totals.pop("seen")
        terms = {name: totals[name] / seen for name in epoch_stats.sums}
        trained = time.perf_counter()  # the statistics' read waited for the epoch's last step
        result = evaluate(distiller.student, test_loader, self.dist)  # strict fp32, whatever the training precision
        evaluated = time.perf_counter()
        progress.epoch = self.epoch
        progress.wall_time_s += time.perf_counter() - self._tick
        if result.top1 >= progress.best_acc:  # on a tie the later epoch, as DSKD saves on >=
            progress.best_acc, progress.best_epoch = result.top1, self.epoch
            progress.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in distiller.student.state_dict().items()
            }
        epoch_event = EpochEvent(
            epoch=self.epoch,
            lr=self.lr,
            terms=terms,
            train_loss=sum(terms.values()),
            train_acc=100.0 * totals["correct"] / seen,
            test_acc=result.top1,
            test_acc_top5=result.top5,
            test_loss=result.loss,
            best_acc=progress.best_acc,
            epoch_time_s=time.perf_counter() - self._tick,
            train_loss_curve=tuple(self._loss_curve(curve)),
            train_time_s=trained - self._tick,
            eval_time_s=evaluated - trained,
        )
        progress.last_event = epoch_event.to_json()
        if self.files.enabled:  # the commit (rank 0 only)
            save_train_state(self.files.ckpt_dir, distiller, self.optimizer, progress, self.cfg.to_json())
        self.files.students(distiller, progress)
        self.log.write(progress.last_event)
        self.trackers.epoch(epoch_event)
        self.files.summary(progress, "running")
        self.notify(progress.last_event)

    def fail(self, err: BaseException) -> None:
        # Ctrl-C, and a SystemExit from a signal handler (a scheduler's preemption or time limit: submitit's)
        stopped = isinstance(err, KeyboardInterrupt | SystemExit)
        status = "interrupted" if stopped else "failed"
        message = f"stopped (exit {err.code})" if isinstance(err, SystemExit) else str(err) or type(err).__name__
        with contextlib.suppress(DskdError, OSError):  # keep the original error if the disk is the problem
            self.files.summary(self.progress, status, error=message)
            self.log.write(FailureEvent(status == "interrupted", self.progress.epoch, message).to_json())
        with contextlib.suppress(Exception):  # a tracker that cannot close must not hide why the run stopped
            self.trackers.close(status, self.progress.best_acc)

    def finish(self) -> RunResult:
        summary = self.files.summary(self.progress, "finished")
        end = EndEvent.from_summary(summary).to_json()
        self.log.write(end)
        self.trackers.close("finished", self.progress.best_acc)
        self.notify(end)
        return RunResult(self.run_dir, summary.to_json())
