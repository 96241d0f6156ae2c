"""Training throughput: a reference-style loop against dskd's engine step, in one process.

For KD, DSKD (KD + SDD[1,2,4] + logit standardization), MLKD and MLKD + LS (two views, four
network passes a step) on resnet32x4 → resnet8x4 at batch 64 with synthetic CIFAR-shaped data, times

- ``reference``: the loop of the published trainers — a torch DataLoader (2 workers) with
  torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize on the
  CPU, fp32, eager, a host read of the loss every step (MLKD: a second, strong view per image,
  with torchvision's RandAugment(2, 10) standing in for the CPU cost of DSKD's PIL ops);
- ``engine``: dskd's :class:`~dskd_core.train.fast.FastStep` on device-resident data with the
  batched crop/flip (MLKD: and the batched strong augmentation of the second view), in fp32 and
  bf16, eager and compiled; on CUDA compiled twice: with torch.compile's CUDA graphs around the
  forward and the backward (``per-call graphs``, the path of per-step LR schedules) and with the
  whole step as one CUDA graph (``whole-step graph``, the default of ``dskd train``),

and prints images/s, the projected minutes per 240-epoch CIFAR-100 run (50,000 images per
epoch) and the ratio to the reference loop of the same method.

With ``--students 2,4,6``, instead: the DSKD README's 6-variant grid of the pair (KD × scales
[1], [1,2], [1,2,4] × plain/--stand, the runs one ``dskd sweep`` fuses) timed three ways on the
fast path, side by side: one fast run alone, K fast runs one after another, and K runs as one
fused step (:class:`~dskd_core.train.fused.FusedStep`: K students stacked, one teacher forward).
It prints student-images/s (K × images/s for a group), the ratio of fused to sequential, the
peak GPU memory per K, the minutes the 6-variant grid would take (6 × 240 epochs × 50,000
images) and the largest K that still gains. Compilation happens in the
warm-up steps, which are not timed. On CUDA it also prints the host's time to issue one step
(``host ms``, measured while the GPU is held busy, so nothing waits for it): when that is below
the step's time (``ms/step``) the GPU sets the pace; when close to it, Python does.

    python bench/throughput.py                      # the GPU (or DSKD_DEVICE)
    python bench/throughput.py --small              # CPU-sized: resnet20 → resnet8, a few steps
    python bench/throughput.py --only dskd --precision bf16 --json out.json
    python bench/throughput.py --students 2,4,6,8     # fused lockstep vs separate fast runs
    python bench/throughput.py --small --students 2,3 # the same, CPU-sized
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dskd_core.config import RunConfig
from dskd_core.data import BatchLoader, LoaderOptions, TensorDataset, get_dataset_spec
from dskd_core.device import resolve_device
from dskd_core.methods import Distiller, get_method
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from dskd_core.sweep import grid_configs
from dskd_core.train.fast import Execution, FastStep, optimizer_for, tf32_mode, use_channels_last
from dskd_core.train.fused import FusedStep

CIFAR_TRAIN_IMAGES = 50_000
EPOCHS = 240
#: bench name -> (method, flags)
METHODS: dict[str, tuple[str, dict[str, object]]] = {
    "kd": ("kd", {}),
    "dskd": ("kd", {"scales": [1, 2, 4], "stand": True}),
    "mlkd": ("mlkd", {}),
    "mlkd+ls": ("mlkd", {"stand": True}),
}


@dataclass
class Row:
    method: str
    loop: str
    img_per_s: float
    minutes_240: float
    ratio: float | None = None
    host_ms_per_step: float | None = None


def make_config(method: str, teacher: str, student: str) -> RunConfig:
    name, flags = METHODS[method]
    return resolve_run_config(method=name, teacher=teacher, student=student, dataset="cifar100", flags=flags)


def make_distiller(cfg: RunConfig, device: torch.device) -> Distiller:
    torch.manual_seed(0)
    teacher, student = create_model(cfg.teacher or ""), create_model(cfg.student)
    return get_method(cfg.method)(student, teacher, cfg).to(device)


def synthetic(n: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return TensorDataset(images, torch.randint(0, 100, (n,), generator=gen))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Cifar(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """A CIFAR-style dataset: HWC uint8 arrays turned into PIL images, then torchvision transforms."""

    def __init__(self, data: TensorDataset, strong_view: bool = False) -> None:
        from torchvision import transforms

        spec = get_dataset_spec("cifar100")
        self.images = data.images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = data.labels.tolist()
        crop = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
        tail = [transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std)]
        self.transform = transforms.Compose([*crop, *tail])
        self.strong = transforms.Compose([*crop, transforms.RandAugment(2, 10), *tail]) if strong_view else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        from PIL import Image

        image = Image.fromarray(self.images[i])
        views = [self.transform(image)] + ([self.strong(image)] if self.strong is not None else [])
        return (*views, torch.tensor(self.labels[i]))


def full_batches(loader: BatchLoader, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches epoch after epoch, full ones only: a short last batch takes the engine's eager
    step (its choice), and the bench times the step of full batches."""
    epoch = 0
    while True:
        epoch += 1
        loader.set_epoch(epoch)
        yield from (b for b in loader if len(b["target"]) == batch_size)


def timed_steps(
    runner: FastStep, stream: Iterator[dict[str, torch.Tensor]], device: torch.device, warmup: int, steps: int
) -> float:
    """Seconds of ``steps`` steps after ``warmup`` untimed ones (compilation, graph recording), the device synced."""
    for _ in range(warmup):
        runner.step(next(stream))
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step(next(stream))
    sync(device)
    return time.perf_counter() - start


def reference_loop(cfg: RunConfig, data: TensorDataset, device: torch.device, warmup: int, steps: int) -> float:
    distiller = make_distiller(cfg, device)
    params = list(distiller.trainable_parameters())
    optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    loader = torch.utils.data.DataLoader(
        _Cifar(data, distiller.strong_view),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=2,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=True,
    )

    def batches() -> Iterator[list[torch.Tensor]]:
        while True:
            yield from loader

    distiller.train()
    start = 0.0
    keys = ("image", "image_strong") if distiller.strong_view else ("image",)
    for i, (*views, target) in enumerate(batches()):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        if i == warmup + steps:
            break
        batch = {key: view.to(device, non_blocking=True) for key, view in zip(keys, views, strict=True)}
        batch["target"] = target.to(device, non_blocking=True)
        _, terms = distiller(batch, 1)
        loss = torch.stack(list(terms.values())).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())  # the per-step loss read of the published trainers' meters
    sync(device)
    return steps * cfg.batch_size / (time.perf_counter() - start)


def engine_loop(
    cfg: RunConfig,
    data: TensorDataset,
    device: torch.device,
    execution: Execution,
    warmup: int,
    steps: int,
    whole_step: bool,
) -> tuple[float, float | None]:
    """Images/s of the engine step, and on CUDA the host's milliseconds to issue one step."""
    distiller = make_distiller(cfg, device)
    use_channels_last(distiller)
    params = list(distiller.trainable_parameters())
    optimizer = optimizer_for(params, cfg, execution, device)
    runner = FastStep(distiller, optimizer, params, execution, device, whole_step=whole_step)
    runner.set_factors(distiller.term_weights(1))
    options = LoaderOptions(train=True, device=device, channels_last=True, strong_view=distiller.strong_view)
    loader = BatchLoader(data, get_dataset_spec("cifar100"), cfg.batch_size, options)

    distiller.train()
    stream = full_batches(loader, cfg.batch_size)
    elapsed = timed_steps(runner, stream, device, warmup, steps)
    host = None
    if device.type == "cuda" and execution.compile:
        # Issue steps behind a long GPU sleep: the host never waits, so this is its own cost per step.
        # (Eager steps launch too many kernels for the launch queue; they are host-bound anyway.)
        # The batches are drawn first: an epoch's start moves its order to the device, which waits.
        issued = [next(stream) for _ in range(40)]
        sync(device)
        torch.cuda._sleep(2_000_000_000)
        tick = time.perf_counter()
        for batch in issued:
            runner.step(batch)
        host = (time.perf_counter() - tick) / len(issued) * 1000
        sync(device)
    runner.collect(1)  # the once-per-epoch read (and its non-finite check), outside the timing
    if runner.fallback:
        print(f"  note: {runner.fallback}", flush=True)
    return steps * cfg.batch_size / elapsed, host


def fused_loop(
    cfgs: list[RunConfig],
    data: TensorDataset,
    device: torch.device,
    execution: Execution,
    warmup: int,
    steps: int,
    whole_step: bool,
) -> tuple[float, float | None]:
    """Student-images/s of ``cfgs`` as one fused step (K × images/s), and the peak GPU memory in GiB."""
    torch.manual_seed(0)
    teacher = create_model(cfgs[0].teacher or "").to(device).eval()
    use_channels_last(teacher)
    distillers = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        distillers.append(get_method(cfg.method)(create_model(cfg.student), teacher, cfg).to(device))
    params = [list(d.trainable_parameters()) for d in distillers]
    optimizers = [optimizer_for(p, c, execution, device) for p, c in zip(params, cfgs, strict=True)]
    clips = [c.clip_grad for c in cfgs]
    runner = FusedStep(distillers, optimizers, params, clips, teacher, execution, device, 1, whole_step=whole_step)
    for k, distiller in enumerate(distillers):
        distiller.train()
        runner.set_member_factors(k, distiller.term_weights(1))
    options = LoaderOptions(train=True, device=device, channels_last=True)
    loader = BatchLoader(data, get_dataset_spec("cifar100"), cfgs[0].batch_size, options)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elapsed = timed_steps(runner, full_batches(loader, cfgs[0].batch_size), device, warmup, steps)
    runner.begin_collect()
    runner.collect_member(0, 1)  # the once-per-epoch read, outside the timing
    if runner.fallback:
        print(f"  note: {runner.fallback}", flush=True)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return len(cfgs) * steps * cfgs[0].batch_size / elapsed, peak


@dataclass
class FusedRow:
    students: int
    loop: str  # "single", "sequential" or "fused"
    student_img_per_s: float
    x_sequential: float | None = None
    peak_gib: float | None = None


def students_main(args: argparse.Namespace, device: torch.device, teacher: str, student: str) -> None:
    """``--students``: one fast run, K sequential fast runs and K fused runs of the pair's 6-variant grid."""
    import tempfile

    ks = sorted({int(k) for k in args.students.split(",")})
    if not ks or ks[0] < 1:
        raise SystemExit("--students takes counts of 1 or more: 2,4,6")
    steps = args.steps or (8 if args.small else 200)
    warmup = args.warmup if args.warmup is not None else (2 if args.small else 20)
    precision = (args.precision or ["tf32" if device.type == "cuda" else "fp32"])[0]
    compiled = not args.no_compile and not args.small
    execution = Execution(True, precision, compiled)
    whole_step = compiled and device.type == "cuda"
    grid = grid_configs("kd", teacher, student, runs_dir=Path(tempfile.gettempdir()), seeds=[0], dataset="cifar100")
    data = synthetic(min(CIFAR_TRAIN_IMAGES, 64 * (warmup + steps + 2)))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    graphs = "whole-step graph" if whole_step else ("compiled" if compiled else "eager")
    print(
        f"device {name}, torch {torch.__version__}, {teacher} -> {student}, batch 64, {precision}, {graphs}, "
        f"{steps} timed steps; grid: {', '.join(c.variant for c in grid)}",
        flush=True,
    )
    alone: dict[str, tuple[float, float | None]] = {}  # one fast run of each variant: img/s, peak GiB
    with tf32_mode(execution.tf32):
        needed = {c.variant: c for c in [*grid[: max(ks)], grid[-1]]}  # each K's members, and DSKD alone
        for cfg in needed.values():
            torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            ips, _ = engine_loop(cfg, data, device, execution, warmup, steps, whole_step)
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
            alone[cfg.variant] = (ips, peak)
            print(f"  alone   {cfg.variant:20s} {ips:9,.0f} img/s", flush=True)
        dskd = grid[-1].variant  # KD + SDD[1,2,4] + LS
        rows = [FusedRow(1, f"single fast run ({dskd})", alone[dskd][0], None, alone[dskd][1])]
        for k in ks:
            members = [grid[i % len(grid)] for i in range(k)]
            # K runs one after another: each image of each run at that run's own rate
            sequential = k / sum(1 / alone[c.variant][0] for c in members)
            torch._dynamo.reset()
            fused, peak = fused_loop(members, data, device, execution, warmup, steps, whole_step)
            rows.append(FusedRow(k, f"{k} sequential fast runs", sequential))
            rows.append(FusedRow(k, f"{k} fused", fused, fused / sequential, peak))
            print(f"  fused   K={k:<3d} {fused:9,.0f} student-img/s, {fused / sequential:.2f}x sequential", flush=True)
    print()
    print("| K | loop | student-img/s | x sequential | peak GiB | 6-variant grid, min |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        grid_min = len(grid) * CIFAR_TRAIN_IMAGES * EPOCHS / r.student_img_per_s / 60
        ratio = f"{r.x_sequential:.2f}" if r.x_sequential is not None else "-"
        peak = f"{r.peak_gib:.2f}" if r.peak_gib is not None else "-"
        print(f"| {r.students} | {r.loop} | {r.student_img_per_s:,.0f} | {ratio} | {peak} | {grid_min:.1f} |")
    fused_rows = [r for r in rows if r.x_sequential is not None]
    gains = [r.students for prev, r in itertools.pairwise(fused_rows) if r.student_img_per_s > prev.student_img_per_s]
    largest = max(gains, default=fused_rows[0].students if fused_rows else None)
    print(f"largest K that still gains (fused student-img/s above the next smaller K's): {largest}")
    if args.json:
        meta = {"device": name, "torch": torch.__version__, "teacher": teacher, "student": student, "steps": steps}
        args.json.write_text(
            json.dumps({**meta, "precision": precision, "rows": [asdict(r) for r in rows]}, indent=2) + "\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=os.environ.get("DSKD_DEVICE", "auto"))
    parser.add_argument("--small", action="store_true", help="CPU-sized: resnet20 → resnet8, few steps, no compile")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop (default 300; --small 8)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 30; --small 2)")
    parser.add_argument("--only", choices=sorted(METHODS), action="append", help="methods to time (repeatable)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled engine loops")
    parser.add_argument(
        "--precision",
        choices=["tf32", "fp32", "bf16"],
        action="append",
        help="engine precisions to time (repeatable; default on CUDA: tf32, the default, and bf16 side by side)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument(
        "--students", help="fused lockstep instead: counts K of students to stack, e.g. 2,4,6 (see above)"
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.backends.cudnn.benchmark = True
    teacher, student = ("resnet20", "resnet8") if args.small else ("resnet32x4", "resnet8x4")
    if args.students:
        students_main(args, device, teacher, student)
        return
    steps = args.steps or (8 if args.small else 300)
    warmup = args.warmup if args.warmup is not None else (2 if args.small else 30)
    compiled = not args.no_compile and not args.small
    data = synthetic(min(CIFAR_TRAIN_IMAGES, 64 * (warmup + steps + 2)))
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(
        f"device {name}, torch {torch.__version__}, {teacher} -> {student}, batch 64, {steps} timed steps", flush=True
    )

    # The reference loop runs as the reference did: fp32 with TF32 convolutions and matmuls on CUDA.
    loops: list[tuple[str, Execution | None, bool]] = [("reference (DataLoader, CPU aug, fp32/TF32)", None, False)]
    for precision in args.precision or (("tf32", "bf16") if cuda else ("fp32",)):
        loops.append((f"engine {precision} eager", Execution(True, precision, False), False))
        if compiled and cuda:
            loops.append((f"engine {precision} compiled, per-call graphs", Execution(True, precision, True), False))
            loops.append((f"engine {precision} compiled, whole-step graph", Execution(True, precision, True), True))
        elif compiled:
            loops.append((f"engine {precision} compiled", Execution(True, precision, True), False))

    rows: list[Row] = []
    for method in args.only or list(METHODS):
        cfg = make_config(method, teacher, student)
        base = None
        for label, execution, whole_step in loops:
            tick = time.perf_counter()
            host = None
            if execution is None:
                with tf32_mode(True):
                    ips = reference_loop(cfg, data, device, warmup, steps)
                base = ips
            else:
                torch._dynamo.reset()
                with tf32_mode(execution.tf32):
                    ips, host = engine_loop(cfg, data, device, execution, warmup, steps, whole_step)
            row = Row(method, label, ips, CIFAR_TRAIN_IMAGES * EPOCHS / ips / 60, ips / base if base else None, host)
            rows.append(row)
            print(
                f"  {method:7s} {label:48s} {ips:9,.0f} img/s  ({time.perf_counter() - tick:.0f} s incl. warm-up)",
                flush=True,
            )

    print()
    print(f"| method | loop | img/s | ms/step | host ms/step | min / {EPOCHS} epochs | x reference |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        issue = f"{r.host_ms_per_step:.2f}" if r.host_ms_per_step is not None else "-"
        ms = 64 / r.img_per_s * 1000
        print(f"| {r.method} | {r.loop} | {r.img_per_s:,.0f} | {ms:.2f} | {issue} | {r.minutes_240:.1f} | {ratio} |")
    if args.json:
        meta = {"device": name, "torch": torch.__version__, "teacher": teacher, "student": student, "steps": steps}
        args.json.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
