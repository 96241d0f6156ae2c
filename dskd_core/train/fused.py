"""Fused lockstep: the runs of a lockstep group on the fast path trained as one step.

A sweep's runs that share the teacher, the data stream and the student architecture (the
DSKD README's scales × plain/--stand grid of one pair and seed) differ only in their losses.
Here their students are stacked: every parameter and buffer of the K students becomes one
``(K, …)`` tensor, the students' forwards run as one batched computation (``torch.func.vmap``
over ``functional_call``, which lowers the convolutions to grouped ones), the teacher runs once
per batch, each run's own loss is computed on its slice, one backward fills every student's
gradient (the students share no parameter, so each gradient is its own loss's), and each run's
own SGD steps its own parameters. On CUDA, compiled, the whole step — teacher, K forwards, K
losses, the backward, K optimizer steps — is one CUDA graph, as a single fast run's is.

Each run keeps its own :class:`~dskd_core.train.engine.Trainer`: run folder, log, optimizer
(its momentum, its LR), checkpoints, train state, resume. The students' own tensors are views of
their slices of the stacks, so evaluation, checkpoints and train states read the live weights
with nothing copied back. A non-finite loss stops its run at the epoch's check (the fast path
checks once per epoch) and the others go on; the stopped student's slice is no longer stepped.

What cannot be stacked (feature methods, CRD's indices, MLKD's second view, students of
different architectures, the reference path) is refused by :func:`fuse_refusal` with the
reason, and the sweep trains those runs one at a time.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from dskd_core.config import RunConfig, Settings
from dskd_core.data import Loader, per_class, run_loaders
from dskd_core.device import apply_threads, resolve_device
from dskd_core.errors import DskdError, UsageError
from dskd_core.methods import Distiller, get_method
from dskd_core.models import ZooModel
from dskd_core.runlock import RunLock
from dskd_core.runs.records import NoteEvent
from dskd_core.runs.store import check_run_dir
from dskd_core.sdd import multiscale_logits
from dskd_core.trackers import check_available, parse_log
from dskd_core.train.engine import Observer, RunResult, Trainer
from dskd_core.train.evaluate import evaluate
from dskd_core.train.execution import (
    FAST_EVAL_BATCH,
    Execution,
    deterministic_kernels,
    execution_autocast,
    optimizer_for,
    resolve_execution,
    tf32_mode,
    use_channels_last,
    whole_step_rule,
)
from dskd_core.train.fast import FastStep, Forward, StepOutput
from dskd_core.train.lockstep import stream_key
from dskd_core.train.setup import build_distiller, load_teacher, open_dataset
from dskd_core.train.step import EpochStats, non_finite_loss

#: Timed steps of one run alone, after its warm-up, for the ratio the sweep prints.
CALIBRATION_STEPS = 10


def fuse_refusal(cfgs: Sequence[RunConfig], device: torch.device) -> str | None:
    """Why these runs cannot train as one fused step on ``device`` (one line), or None when they can.

    They must be two or more, of one lockstep stream (teacher, data, seed, batch), of one student
    architecture, on the fast path in one process with the same execution (precision, compilation),
    and of methods whose loss follows from the student's logits and the teacher's output
    (:attr:`~dskd_core.methods.Distiller.fusable`).
    """
    if len(cfgs) < 2:
        return "a single run has nothing to stack with"
    if len({stream_key(c) for c in cfgs}) != 1:
        return "the runs differ in teacher, dataset, seed, batch stream or epochs"
    students = sorted({c.student for c in cfgs})
    if len(students) > 1:
        return f"the students differ ({', '.join(students)}): only students of one architecture stack"
    for cfg in cfgs:
        why = run_refusal(cfg, device)
        if why is not None:
            return why
    if len({resolve_execution(c, device, c.world_size) for c in cfgs}) > 1:
        return "the runs ask for different precision or compilation"
    return None


def run_refusal(cfg: RunConfig, device: torch.device) -> str | None:
    """Why ``cfg`` cannot join any fused step on ``device``, whatever the other runs (None: it can)."""
    method = get_method(cfg.method)
    if not method.fusable or method.batch_keys or method.strong_view:
        return (
            f"{cfg.method} needs more than the student's logits and the teacher's output for its loss "
            "(modules, features, indices or a second view of its own)"
        )
    if cfg.world_size > 1:
        return "a run trains in several processes"
    if not resolve_execution(cfg, device, cfg.world_size).fast:
        return "the runs train on the reference path (fusing stacks fast-path steps: --set fast=true)"
    return None


class _Outputs(nn.Module):
    """What the fused step needs of one student: its logits and its region logits for each scale set."""

    def __init__(self, student: ZooModel, scale_sets: Sequence[tuple[int, ...]]) -> None:
        super().__init__()
        self.student = student
        self.scale_sets = list(scale_sets)

    def forward(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        logits, feats = self.student(image)
        classifier = self.student.get_classifier()
        return logits, [multiscale_logits(feats["final_map"], classifier, s) for s in self.scale_sets]


class StackedStudents:
    """K students of one architecture as stacked ``(K, …)`` parameters and buffers, run as one computation.

    Each student's own parameters and buffers become views of their slice (``.data`` pointed at it),
    and each parameter's ``.grad`` a view of its slice of the stack's gradient, so the students'
    own optimizers step the stacks and what reads a student (evaluation, checkpoints) sees the live
    values. ``scale_sets``: the SDD scale sets whose region logits :meth:`forward` returns.
    """

    def __init__(self, students: Sequence[ZooModel], scale_sets: Sequence[tuple[int, ...]]) -> None:
        self.scale_sets = list(scale_sets)
        template = copy.deepcopy(students[0]).to("meta")  # the code to run; the tensors come from the stacks
        template.train()
        self.view = _Outputs(template, self.scale_sets)
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        for name, _ in students[0].named_parameters():
            own = [dict(s.named_parameters())[name] for s in students]
            stacked = torch.stack([p.detach() for p in own]).requires_grad_(own[0].requires_grad)
            stacked.grad = torch.zeros_like(stacked)
            for k, param in enumerate(own):
                param.data = stacked.detach()[k]
                param.grad = stacked.grad[k]
            self.params[f"student.{name}"] = stacked
        for name, _ in students[0].named_buffers():
            own_buffers = [dict(s.named_buffers())[name] for s in students]
            stacked = torch.stack([b.detach() for b in own_buffers])
            for k, buffer in enumerate(own_buffers):
                buffer.data = stacked[k]
            self.buffers[f"student.{name}"] = stacked
        self.grads = [p.grad for p in self.params.values() if p.grad is not None]

    def mark_static(self) -> None:
        """Tell torch.compile the stacks never move (as a module's parameters and buffers are): its CUDA graphs
        then read them in place instead of copying every student's weights in at each call."""
        for tensor in [*self.params.values(), *self.grads, *self.buffers.values()]:
            torch._dynamo.mark_static_address(tensor)

    def forward(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``((K, B, classes) logits, [(K, B, regions, classes) per scale set])`` for one batch of images."""

        def one(params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor) -> tuple[Tensor, list[Tensor]]:
            out: tuple[Tensor, list[Tensor]] = functional_call(self.view, (params, buffers), (x,))
            return out

        batched = vmap(one, in_dims=(0, 0, None), randomness="error")
        logits, regions = batched(self.params, self.buffers, image)
        return logits, list(regions)


class FusedStep(FastStep):
    """The fast step of K runs at once: one teacher forward, the stacked students, K losses, K optimizer steps.

    What :class:`~dskd_core.train.fast.FastStep` does for one run — compilation, the whole-step CUDA
    graph (recorded again when any run's LR or the set of stepping runs changes), statistics kept on
    the device and read once per epoch — it does for the group; each run's statistics are its own
    slice (:meth:`collect_member`). Member ``k`` is ``trainers[k]`` of the group.
    """

    def __init__(
        self,
        distillers: Sequence[Distiller],
        optimizers: Sequence[torch.optim.Optimizer],
        params: Sequence[list[nn.Parameter]],
        clip_grads: Sequence[float | None],
        teacher: ZooModel | None,
        execution: Execution,
        device: torch.device,
        slots: int,
        *,
        whole_step: bool | None,
    ) -> None:
        self.distillers, self.optimizers = list(distillers), list(optimizers)
        self.member_params, self.clip_grads = [list(p) for p in params], list(clip_grads)
        self.teacher = teacher
        scales = {d.student_scales() for d in self.distillers}
        self.stack = StackedStudents([d.student for d in self.distillers], sorted(s for s in scales if s))
        self.active: tuple[int, ...] = tuple(range(len(self.distillers)))
        self._layout: list[tuple[int, list[str]]] = []  # the statistics' layout: (member, its term names) in order
        if execution.compile:
            self.stack.mark_static()
        holder = nn.ModuleList(self.distillers)
        stacked = cast(list[nn.Parameter], list(self.stack.params.values()))
        super().__init__(holder, self.optimizers[0], stacked, execution, device, None, slots, whole_step=whole_step)

    def drop(self, k: int) -> None:
        """Member ``k`` stopped (its run failed): from the next step on, no longer in the loss nor stepped.

        This epoch's statistics stay readable for the others (the next epoch starts them afresh).
        """
        self.active = tuple(i for i in self.active if i != k)
        # The forward loops over the members: compiled, it compiles again, which must not happen inside a
        # CUDA graph's capture; the warm-up steps before the next capture do it.
        self._warm = 0

    def set_member_factors(self, k: int, factors: Mapping[str, float]) -> None:
        self.set_factors({f"{k}/{name}": value for name, value in factors.items()})

    def begin_epoch(self, epoch: int, factors: Mapping[str, float]) -> None:
        """Statistics start from zero (the members' factors come through :meth:`set_member_factors`)."""
        self.reset()

    def _graph_constants(self) -> tuple[object, ...]:
        lrs = tuple(tuple(g["lr"] for g in self.optimizers[k].param_groups) for k in self.active)
        return (lrs, tuple(self._factors), self.active)

    def _forward(self, batch: dict[str, Tensor], factors: dict[str, Tensor]) -> StepOutput:
        image, target = batch["image"], batch["target"]
        with execution_autocast(self.execution, self.device):
            teacher = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher = self.teacher(image)
            logits, regions = self.stack.forward(image)
            member_terms = []
            for k in self.active:
                distiller = self.distillers[k]
                scales = distiller.student_scales()
                own = regions[self.stack.scale_sets.index(scales)][k] if scales else None
                member_terms.append((k, logits[k], distiller.terms_from(batch, (logits[k], own), teacher)))
        n = target.shape[0]
        losses, stats, weighted_all = [], [], {}
        for k, own_logits, terms in member_terms:
            # as FastStep: the losses in fp32 whatever the autocast dtype; a missing factor weighs 1
            weighted = {
                name: value.float() * factors[f"{k}/{name}"] if f"{k}/{name}" in factors else value.float()
                for name, value in terms.items()
            }
            stacked = torch.stack(list(weighted.values()))
            loss = stacked.sum()
            correct = (own_logits.argmax(-1) == target).sum()
            stats.append(torch.cat([stacked.detach() * n, loss.detach()[None] * n, correct[None].float()]))
            losses.append(loss)
            weighted_all.update({f"{k}/{name}": value.detach() for name, value in weighted.items()})
        return torch.stack(losses).sum(), weighted_all, torch.cat(stats)

    def _train_step(self, batch: dict[str, Tensor], forward: Forward) -> StepOutput:
        torch._foreach_zero_(self.stack.grads)  # the members' .grad are views of these: zeroed, never replaced
        loss, weighted, stats = forward(batch, self._factors)
        loss.backward()
        for k in self.active:
            clip = self.clip_grads[k]
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.member_params[k], clip, foreach=True)
            self.optimizers[k].step()
        return loss.detach(), weighted, stats

    def step(self, batch: dict[str, Tensor], slot: int = 0) -> Tensor:
        try:
            loss = super().step(batch, slot)
        except torch._dynamo.exc.TorchDynamoException as err:  # compiling the first step: nothing ran yet
            if self._stepped or not self.execution.compile or self.fallback is not None:
                raise
            self._not_compiled(str(err))
            loss = super().step(batch, slot)
        self._stepped = True
        if not self._layout:
            self._layout = [
                (k, [n.split("/", 1)[1] for n in self.names if n.split("/", 1)[0] == str(k)]) for k in self.active
            ]
        return loss

    _stepped = False  # whether a step has run (a compilation failure after that is not a fallback's to hide)

    def _not_compiled(self, reason: str) -> None:
        """torch.compile refused the fused forward (the stacked students' vmap, on some torch or device):
        the group steps uncompiled from now on, its CUDA graphs kept where the device has them."""
        first = reason.strip().splitlines()[0][:200] if reason.strip() else "no reason given"
        self._compiled, self._call_graphs, self._warm = self._forward, False, 0
        self.fallback = f"the fused step could not be compiled ({first}); it runs uncompiled instead"

    def reset(self) -> None:
        super().reset()
        self._layout = []
        self._rows: Tensor | None = None

    def collect_member(self, k: int, epoch: int) -> EpochStats:
        """Member ``k``'s statistics of the epoch; refuses its non-finite loss (one host read for the group)."""
        if self._acc is None:
            return EpochStats({}, 0, 0, [0.0] * self.slots)
        if self._rows is None:
            self._rows = self._acc.cpu()
        offset = 0
        for member, names in self._layout:
            width = len(names) + 2
            if member == k:
                rows = self._rows[:, offset : offset + width]
                totals = rows.sum(0).tolist()
                for name, value in zip(names, totals, strict=False):
                    if not math.isfinite(value):
                        when = f"in epoch {epoch} (the fast path checks once per epoch)"
                        raise non_finite_loss(name, value, epoch, when)
                sums = dict(zip(names, totals, strict=False))
                return EpochStats(sums, int(totals[-1]), self.seen, rows[:, -2].tolist())
            offset += width
        return EpochStats({}, 0, 0, [0.0] * self.slots)

    def begin_collect(self) -> None:
        """The epoch's steps are done: the next :meth:`collect_member` reads the statistics (once for all).

        Checks first that every student still reads its slices: a student moved off them (``.to()``, a
        memory-format change) would evaluate and save weights the group no longer trains.
        """
        for k, distiller in enumerate(self.distillers):
            for name, param in distiller.student.named_parameters():
                stacked = self.stack.params[f"student.{name}"]
                grad = stacked.grad
                moved = param.data_ptr() != stacked[k].data_ptr()
                if moved or param.grad is None or grad is None or param.grad.data_ptr() != grad[k].data_ptr():
                    raise RuntimeError(f"fused student {k}'s {name} (or its gradient) is no longer a view of its stack")
        self._rows = None

    def synchronize(self) -> None:
        _synchronize(self.device)


class FusedMember:
    """One run's view of its group's :class:`FusedStep`, the :class:`~dskd_core.train.step.Step` its trainer holds.

    Its trainer sets its LR and factors and reads its statistics through it; the steps themselves are
    taken by the group's loop (:func:`fit_fused`) for every member at once.
    """

    last_loss: float | None = None

    def __init__(self, group: FusedStep, k: int) -> None:
        self.group, self.k = group, k

    @property
    def fallback(self) -> str | None:
        return self.group.fallback

    @property
    def graphs(self) -> str | None:
        return self.group.graphs

    def begin_epoch(self, epoch: int, factors: Mapping[str, float]) -> None:
        self.group.set_member_factors(self.k, factors)

    def step(self, batch: dict[str, Tensor], slot: int = 0) -> Tensor:
        raise UsageError("a fused run is stepped by its group (dskd_core.train.fused.fit_fused), not alone")

    def collect(self, epoch: int) -> EpochStats:
        return self.group.collect_member(self.k, epoch)


@dataclass(frozen=True)
class FusedThroughput:
    """Measured speed of a fused group: student images per second, and one run alone on the same device."""

    students: int
    student: str
    student_img_per_s: float
    single_img_per_s: float | None  # one run's fast step alone, timed before the group trained (None: not timed)
    single_error: str | None = None  # why it could not be timed

    @property
    def ratio(self) -> float | None:
        """The group's throughput over separate runs' (one after another: each at ``single_img_per_s``)."""
        return self.student_img_per_s / self.single_img_per_s if self.single_img_per_s else None


@dataclass(frozen=True)
class FusedResult:
    results: list[RunResult | DskdError]  # per config, in order: its result or why it failed
    throughput: FusedThroughput | None  # None when no epoch was trained


def fit_fused(
    cfgs: Sequence[RunConfig],
    settings: Settings,
    *,
    statuses: Mapping[Path, str] | None = None,
    observer: Observer | None = None,
    measure: bool = True,
) -> FusedResult:
    """Train runs of one lockstep stream and one student architecture as one fused step; each in its own run folder.

    ``statuses`` (by run folder, as the sweep planned them): ``resume`` continues a run from its train
    state, ``conflict`` trains afresh over another run's folder (``--overwrite``), anything else starts
    a new run. Runs at different committed epochs train as separate fused groups, one after another.
    ``measure``: time one run's fast step alone first (throwaway copies, the RNG untouched), for the ratio.
    """
    device = resolve_device(settings.device)
    refusal = fuse_refusal(cfgs, device)
    if refusal is not None:
        raise UsageError(f"these runs cannot train as one fused step: {refusal}")
    statuses = statuses or {}
    notify = observer or (lambda event: None)
    trackers = parse_log(settings.log)
    check_available(trackers)
    apply_threads(settings.threads)
    execution = resolve_execution(cfgs[0], device, cfgs[0].world_size)
    cfgs = [c.model_copy(update=execution.as_config()) for c in cfgs]
    whole_step = None if all(whole_step_rule(c, 1) is None for c in cfgs) else False
    first = cfgs[0]
    data = open_dataset(first.dataset, settings, first.num_classes)
    spec, train_data, test_data = data.spec, per_class(data.train, first.train_per_class), data.test
    train_loader, test_loader = run_loaders(
        first,
        settings,
        spec,
        (train_data, test_data),
        device,
        channels_last=True,
        test_batch_size=max(first.test_batch_size, FAST_EVAL_BATCH),
    )
    with (
        deterministic_kernels(first.deterministic, autotune=True),
        tf32_mode(execution.tf32),
        contextlib.ExitStack() as stack,
    ):
        teacher = load_teacher(first, settings, spec.num_classes, device)
        if teacher is not None:
            use_channels_last(teacher)
        # Each run's folder checked, locked and opened on its own: one that cannot train (locked by another
        # process, holding another run, an unusable train state) is that run's failure, not the group's.
        outcome: dict[int, RunResult | DskdError] = {}
        trainers: dict[int, Trainer] = {}
        for i, cfg in enumerate(cfgs):
            run_dir = cfg.run_dir(settings.runs_dir)
            status = statuses.get(run_dir, "new")
            resume, overwrite = status == "resume", status == "conflict"
            try:
                distiller = build_distiller(cfg, settings, spec.num_classes, device, teacher=teacher)
                distiller.bind_data(train_data)
                if not RunLock.held(run_dir):
                    check_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite)
                with contextlib.ExitStack() as own:
                    own.enter_context(RunLock(run_dir))
                    trainers[i] = Trainer(
                        cfg,
                        distiller,
                        spec,
                        device,
                        run_dir,
                        resume=resume,
                        overwrite=overwrite,
                        notify=notify,
                        execution=execution,
                        trackers=trackers,
                    )
                    stack.enter_context(own.pop_all())  # the lock held until the group is done
            except DskdError as err:
                outcome[i] = err
        if not trainers:
            return FusedResult([outcome[i] for i in range(len(cfgs))], None)
        single, single_error = None, None
        first_trainer = next(iter(trainers.values()))
        if measure and any(t.progress.epoch < first.epochs for t in trainers.values()):
            try:
                single = _time_single(first_trainer, train_loader, execution, device, whole_step)
            except Exception as err:  # the ratio is a report, not the runs: they train without it
                single_error = " ".join(str(err).split())[:200] or type(err).__name__
        if execution.compile:  # the runs before this group are done: their compiled steps are not kept
            torch._dynamo.reset()
        # Runs at one committed epoch step together (a resumed group normally is; an interruption between
        # two runs' commits leaves them an epoch apart): one fused group per epoch, the earliest first.
        by_epoch: dict[int, list[int]] = {}
        for i, trainer in trainers.items():
            by_epoch.setdefault(trainer.progress.epoch, []).append(i)
        groups = [
            (members, _group_step(trainers, members, teacher, execution, device, whole_step))
            for _, members in sorted(by_epoch.items())
        ]
        size = {i: len(members) for members, _ in groups for i in members}
        teacher_acc = None
        if teacher is not None and not all(t.resumed for t in trainers.values()):
            teacher_acc = evaluate(teacher, test_loader).top1
        try:
            for i, trainer in trainers.items():
                trainer.start(len(train_data), len(test_data), len(train_loader), teacher_acc)
                others = size[i] - 1
                note = NoteEvent(
                    f"trains fused with {others} other run{'s' if others != 1 else ''} of {trainer.cfg.student} "
                    "(stacked students, one teacher forward per batch)",
                    trainer.progress.epoch,
                ).to_json()
                trainer.log.write(note)
            timed: list[tuple[int, int, float]] = []  # per group: its size, images and seconds timed
            for members, group in groups:
                images, seconds = _loop(trainers, members, group, train_loader, test_loader, first.epochs, outcome)
                timed.append((len(members), images, seconds))
        except BaseException as err:  # Ctrl-C, a scheduler's signal, a tracker: every run not done says why
            for i, trainer in trainers.items():
                if i not in outcome:
                    trainer.fail(err)
            raise
    throughput = None
    students, images, seconds = max(timed, key=lambda t: t[0])  # the largest group's (the first of equals)
    if seconds > 0:
        throughput = FusedThroughput(students, first.student, images / seconds, single, single_error)
    return FusedResult([outcome[i] for i in range(len(cfgs))], throughput)


def _group_step(
    trainers: Mapping[int, Trainer],
    members: Sequence[int],
    teacher: ZooModel | None,
    execution: Execution,
    device: torch.device,
    whole_step: bool | None,
) -> FusedStep:
    """The fused step of ``members``; each of their trainers then holds a :class:`FusedMember` of it."""
    from dskd_core.train.engine import CURVE_POINTS

    chosen = [trainers[i] for i in members]
    group = FusedStep(
        [t.distiller for t in chosen],
        [t.optimizer for t in chosen],
        [t.params for t in chosen],
        [t.cfg.clip_grad for t in chosen],
        teacher,
        execution,
        device,
        CURVE_POINTS,
        whole_step=whole_step,
    )
    for k, trainer in enumerate(chosen):
        trainer.stepper = FusedMember(group, k)
    return group


def _loop(
    trainers: Mapping[int, Trainer],
    members: Sequence[int],
    group: FusedStep,
    train_loader: Loader,
    test_loader: Loader,
    epochs: int,
    outcome: dict[int, RunResult | DskdError],
) -> tuple[int, float]:
    """Train ``members`` (keys of ``trainers``; member ``k`` of ``group`` is ``members[k]``) to the end, each
    one's result or failure put in ``outcome``. Returns the student images and seconds of the steps timed for
    the throughput (past the first steps' compilation and graph recording)."""
    active = list(range(len(members)))
    start = trainers[members[0]].progress.epoch
    skip = group.warmup_steps + 2 if group.execution.compile else 1  # compilation, recording: not timed
    images, seconds, taken = 0, 0.0, 0
    for epoch in range(start + 1, epochs + 1):
        train_loader.set_epoch(epoch)
        for k in active:
            trainers[members[k]].begin_epoch(epoch)
        group.begin_epoch(epoch, {})
        steps = len(train_loader)
        tick, counted = time.perf_counter(), 0
        for step, batch in enumerate(train_loader, start=1):
            slot = 0
            for k in active:
                slot = trainers[members[k]].before_step(step, steps)
            group.step(batch, slot)
            taken += 1
            for k in active:
                trainers[members[k]].after_step(batch, step, steps, slot)
            if taken == skip:
                group.synchronize()
                tick, counted = time.perf_counter(), 0
            elif taken > skip:
                counted += len(batch["target"])
        group.synchronize()
        if taken > skip:
            images, seconds = images + counted * len(active), seconds + time.perf_counter() - tick
        group.begin_collect()
        for k in list(active):
            try:
                trainers[members[k]].end_epoch(test_loader)
            except DskdError as err:  # one run's NaN (or full disk) stops that run, not the group
                trainers[members[k]].fail(err)
                outcome[members[k]] = err
                active.remove(k)
                group.drop(k)
        if not active:
            break
    for k in active:
        outcome[members[k]] = trainers[members[k]].finish()
    return images, seconds


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a timer's edge); nothing to wait for off CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: One run's measured images/s, per what sets a step's cost (a sweep's groups of other seeds reuse it).
_SINGLE_RATES: dict[tuple[object, ...], float] = {}


def _time_single(
    trainer: Trainer, train_loader: Loader, execution: Execution, device: torch.device, whole_step: bool | None
) -> float:
    """Images per second of one run's own fast step on this device, on throwaway copies (weights, optimizer, RNG).

    One batch of the stream, stepped on again and again: a step's cost depends on the shapes, not the pixels.
    Timed once per process for each teacher, student, dataset, batch, variant and execution.
    """
    cfg = trainer.cfg
    shape = (cfg.dataset, cfg.teacher, cfg.student, cfg.batch_size, cfg.image_size, cfg.method, cfg.variant)
    key = (*shape, execution, whole_step, str(device))
    if key not in _SINGLE_RATES:
        _SINGLE_RATES[key] = _measure_single(trainer, train_loader, execution, device, whole_step)
    return _SINGLE_RATES[key]


def _measure_single(
    trainer: Trainer, train_loader: Loader, execution: Execution, device: torch.device, whole_step: bool | None
) -> float:
    cfg = trainer.cfg
    memo = {id(trainer.distiller.teacher): trainer.distiller.teacher} if trainer.distiller.teacher is not None else {}
    distiller = copy.deepcopy(trainer.distiller, memo)
    use_channels_last(distiller.student)
    params = list(distiller.trainable_parameters())
    optimizer = optimizer_for(params, cfg, execution, device)
    step = FastStep(distiller, optimizer, params, execution, device, cfg.clip_grad, whole_step=whole_step)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the runs' random state as it was
        train_loader.set_epoch(1)
        batch = next(iter(train_loader))
        distiller.train()
        step.begin_epoch(1, distiller.term_weights(1))
        warm = step.warmup_steps + 2 if execution.compile else 1
        for _ in range(warm):
            step.step(batch)
        _synchronize(device)
        tick = time.perf_counter()
        for _ in range(CALIBRATION_STEPS):
            step.step(batch)
        _synchronize(device)
        seconds = time.perf_counter() - tick
    step._graph = None  # the copy's CUDA graph and memory go back before the group records its own
    del step, optimizer, params, distiller
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return CALIBRATION_STEPS * cfg.batch_size / seconds


def plan_fused(
    cfgs: Sequence[RunConfig], device: torch.device
) -> tuple[list[list[RunConfig]], list[tuple[RunConfig, str]]]:
    """Which of a sweep's runs train as fused groups on ``device``, and each run of a shared stream that cannot
    join one, with why (:func:`alone_note` words it). Runs not in a group train one at a time."""
    streams: dict[tuple[object, ...], list[RunConfig]] = {}
    for cfg in cfgs:
        if resolve_execution(cfg, device, cfg.world_size).fast:
            streams.setdefault(stream_key(cfg), []).append(cfg)
    groups: list[list[RunConfig]] = []
    alone: list[tuple[RunConfig, str]] = []
    for stream in streams.values():
        if len(stream) < 2:
            continue
        by_student: dict[str, list[RunConfig]] = {}
        for cfg in stream:
            by_student.setdefault(cfg.student, []).append(cfg)
        for student, same in by_student.items():
            stackable = []
            for cfg in same:
                why = run_refusal(cfg, device)
                if why is None:
                    stackable.append(cfg)
                else:
                    alone.append((cfg, why))
            by_execution: dict[Execution, list[RunConfig]] = {}
            for cfg in stackable:  # one group per execution (precision, compilation: not in the stream key)
                by_execution.setdefault(resolve_execution(cfg, device, cfg.world_size), []).append(cfg)
            for together in by_execution.values():
                if len(together) >= 2:
                    groups.append(together)
                    continue
                others = sorted({c.student for c in stream} - {student})
                if len(by_execution) > 1:
                    why = "its stream's other runs of its student ask for another precision or compilation"
                elif others:
                    why = (
                        f"the other runs of its stream have other students ({', '.join(others)}): only students "
                        "of one architecture stack"
                    )
                else:
                    why = "no other run of its stream stacks with it"
                alone.append((together[0], why))
    return groups, alone


def alone_note(cfg: RunConfig, why: str) -> str:
    """The note of a run that trains alone although its stream is shared."""
    return f"{cfg.teacher or '-'} -> {cfg.student} {cfg.variant} seed {cfg.seed} trains alone, not fused: {why}"
