"""The fast path against the reference path: same losses, gradients and augmentation distribution.

The device-dependent checks run on the CPU and, where a CUDA device is visible, again on it
(there the compiled step replays CUDA graphs): their ``cuda`` cases carry the ``gpu`` marker,
so ``pytest -m gpu tests/test_fast.py`` runs those alone, which is what ``bench/gpu_check.sh`` does.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision import transforms

from dskd_core.config import RunConfig
from dskd_core.data import BatchLoader, LoaderOptions, TensorDataset, get_dataset_spec
from dskd_core.data.loader import PAD, augment_batch, crop_flip
from dskd_core.errors import NonFiniteLoss, UsageError
from dskd_core.methods import Distiller, get_method
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from dskd_core.train import fast as fast_module
from dskd_core.train import fit
from dskd_core.train.fast import Execution, FastStep, optimizer_for, resolve_execution, tf32_mode, use_channels_last
from tests.helpers import make_settings

#: The device of the check in progress: set by the ``on_device`` fixture, read by the helpers below.
DEVICE = torch.device("cpu")
RTOL = 1e-4


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def on_device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> torch.device:
    """Run the check on the CPU, then on CUDA (skipped, by the ``gpu`` marker, where there is none)."""
    device = torch.device(request.param)
    monkeypatch.setattr(sys.modules[__name__], "DEVICE", device)
    return device


#: The checks whose result depends on the device: each runs once per device of ``on_device``.
per_device = pytest.mark.usefixtures("on_device")


@pytest.fixture(autouse=True)
def _exact_fp32() -> Iterator[None]:
    with tf32_mode(False):
        yield


def _position_image(h: int = 32, w: int = 32) -> torch.Tensor:
    """``(1, H, W)`` float image whose pixel (r, c) holds ``1 + r·W + c`` (0 only in the padding)."""
    return (1 + torch.arange(h * w, dtype=torch.float32)).reshape(1, h, w)


def _offsets(crops: torch.Tensor, w: int = 32) -> torch.Tensor:
    """Recover ``(dy, dx, flip)`` of each crop ``(N, 1, H, W)`` of the position image (pad 4)."""
    center = crops[:, 0, 16, 16].long() - 1
    right = crops[:, 0, 16, 17].long() - 1
    flip = right < center
    row, col = center // w, center % w
    dy = row - 16 + PAD
    dx = torch.where(flip, col - (w - 1 - 16) + PAD, col - 16 + PAD)
    return torch.stack([dy, dx, flip.long()], dim=1)


@per_device
def test_crop_flip_equals_torchvision_for_every_offset_and_flip() -> None:
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    cases = [(dy, dx, f) for dy in range(2 * PAD + 1) for dx in range(2 * PAD + 1) for f in (False, True)]
    dy, dx, flip = (torch.tensor(v) for v in zip(*cases, strict=True))
    batch = image.expand(len(cases), -1, -1, -1).to(DEVICE)
    ours = crop_flip(batch, dy.to(DEVICE), dx.to(DEVICE), flip.to(DEVICE)).cpu()
    padded = TF.pad(image, [PAD])
    for i, (y, x, f) in enumerate(cases):
        expected = TF.crop(padded, y, x, 32, 32)
        assert torch.equal(ours[i], TF.hflip(expected) if f else expected), (y, x, f)


def _chi2_threshold(dof: int, z: float = 3.72) -> float:
    """Upper ~1e-4 quantile of chi-square(dof) (Wilson–Hilferty)."""
    a = 2 / (9 * dof)
    return dof * (1 - a + z * math.sqrt(a)) ** 3


@per_device
def test_batched_augmentation_has_torchvisions_distribution() -> None:
    n = 20_000
    image = _position_image()
    gen = torch.Generator().manual_seed(0)
    ours = _offsets(augment_batch(image.expand(n, -1, -1, -1).to(DEVICE), gen).cpu())
    torch.manual_seed(0)
    reference = transforms.Compose([transforms.RandomCrop(32, padding=PAD), transforms.RandomHorizontalFlip()])
    theirs = _offsets(torch.stack([reference(image) for _ in range(n)]))
    cells = (2 * PAD + 1) ** 2 * 2

    def counts(o: torch.Tensor) -> torch.Tensor:
        return torch.bincount((o[:, 0] * (2 * PAD + 1) + o[:, 1]) * 2 + o[:, 2], minlength=cells).double()

    a, b = counts(ours), counts(theirs)
    assert a.sum() == b.sum() == n and a.numel() == cells  # every crop decoded into one of the 162 cells
    # Two-sample chi-square homogeneity test over (dy, dx, flip).
    pooled = (a + b) / 2
    stat = float((((a - pooled) ** 2 + (b - pooled) ** 2) / pooled).sum())
    assert stat < _chi2_threshold(cells - 1), stat
    # And each marginal is the uniform / fair-coin one.
    assert abs(float(ours[:, 2].double().mean()) - 0.5) < 4 * math.sqrt(0.25 / n)
    for axis in (0, 1):
        freq = torch.bincount(ours[:, axis], minlength=2 * PAD + 1).double() / n
        assert torch.allclose(freq, torch.full_like(freq, 1 / (2 * PAD + 1)), atol=4 * math.sqrt(1 / 9 / n))


# ------------------------------------------------------------------------------------------------
# the step


def _cfg(**flags: object) -> RunConfig:
    base = {"scales": [1, 2], "stand": True, "batch_size": 16}
    return resolve_run_config(
        method="kd", teacher="resnet8", student="resnet8", dataset="synthetic", flags={**base, **flags}
    )


def _distiller(cfg: RunConfig) -> Distiller:
    torch.manual_seed(0)
    teacher = create_model("resnet8", num_classes=100)
    torch.manual_seed(1)
    student = create_model("resnet8", num_classes=100)
    return get_method(cfg.method)(student, teacher, cfg).to(DEVICE)


def _batches(cfg: RunConfig, channels_last: bool, count: int = 3) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(5)
    data = TensorDataset(
        torch.randint(0, 256, (cfg.batch_size * count, 3, 32, 32), dtype=torch.uint8, generator=gen),
        torch.randint(0, 100, (cfg.batch_size * count,), generator=gen),
    )
    loader = BatchLoader(
        data,
        get_dataset_spec("synthetic"),
        cfg.batch_size,
        LoaderOptions(train=True, device=DEVICE, channels_last=channels_last),
    )
    return list(loader)


def _reference_steps(
    cfg: RunConfig, factors: list[dict[str, float]], lrs: list[float] | None = None
) -> list[tuple[float, list[torch.Tensor]]]:
    """The reference path's step (engine ``Trainer.step``) on the same batches: (loss, grads) per step."""
    distiller = _distiller(cfg)
    distiller.train()
    params = list(distiller.trainable_parameters())
    optimizer = optimizer_for(params, cfg, Execution(), DEVICE)
    out = []
    batches = _batches(cfg, channels_last=False, count=len(factors))
    for batch, factor, lr in zip(batches, factors, lrs or [cfg.lr] * len(factors), strict=True):
        for group in optimizer.param_groups:
            group["lr"] = lr
        _, terms = distiller(batch, 1)
        loss = torch.stack([v * factor.get(k, 1.0) for k, v in terms.items()]).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        out.append((float(loss.detach()), [p.grad.detach().clone() for p in params if p.grad is not None]))
    return out


def _fast_steps(
    cfg: RunConfig,
    execution: Execution,
    factors: list[dict[str, float]],
    lrs: list[float] | None = None,
    check: Callable[[FastStep], None] | None = None,
    **options: Any,
) -> list[tuple[float, list[torch.Tensor]]]:
    distiller = _distiller(cfg)
    use_channels_last(distiller)
    distiller.train()
    params = list(distiller.trainable_parameters())
    runner = FastStep(distiller, optimizer_for(params, cfg, execution, DEVICE), params, execution, DEVICE, **options)
    out = []
    batches = _batches(cfg, channels_last=True, count=len(factors))
    for batch, factor, lr in zip(batches, factors, lrs or [cfg.lr] * len(factors), strict=True):
        runner.set_factors(factor)
        for group in runner.optimizer.param_groups:
            group["lr"] = lr
        loss = runner.step(batch)
        out.append((float(loss.detach()), [p.grad.detach().clone() for p in params if p.grad is not None]))
    stats = runner.collect(1)
    assert stats.seen == len(factors) * cfg.batch_size and set(stats.sums) == {"loss_ce", "loss_kd"}
    assert 0 <= stats.correct <= stats.seen
    # The device-side sums are the step losses times the batch size, and their terms add up to them.
    expected = sum(loss for loss, _ in out) * cfg.batch_size
    assert math.isclose(sum(stats.loss_per_slot), expected, rel_tol=RTOL)
    assert math.isclose(sum(stats.sums.values()), expected, rel_tol=RTOL)
    if check is not None:
        check(runner)
    return out


def _assert_same_steps(
    ref: list[tuple[float, list[torch.Tensor]]], fast: list[tuple[float, list[torch.Tensor]]]
) -> None:
    for step, ((ref_loss, ref_grads), (fast_loss, fast_grads)) in enumerate(zip(ref, fast, strict=True), start=1):
        assert math.isclose(fast_loss, ref_loss, rel_tol=RTOL), (step, fast_loss, ref_loss)
        assert len(ref_grads) == len(fast_grads)
        for g_ref, g_fast in zip(ref_grads, fast_grads, strict=True):
            scale = float(g_ref.norm()) + 1e-12
            assert float((g_fast.float() - g_ref.float()).norm()) / scale < RTOL, step


# The warm-up factor changes between steps: a compiled step must read it, not bake it in.
FACTORS = [{"loss_kd": 0.25}, {"loss_kd": 0.5}, {"loss_kd": 1.0}]


@per_device
def test_fast_step_eager_fp32_matches_reference_losses_and_gradients() -> None:
    cfg = _cfg()
    _assert_same_steps(_reference_steps(cfg, FACTORS), _fast_steps(cfg, Execution(True, "fp32", False), FACTORS))


@per_device
def test_compiled_fast_step_fp32_matches_reference_losses_and_gradients() -> None:
    """torch.compile (inductor; on CUDA with its CUDA graphs around the forward and the backward) of
    forward + loss, fused SGD: the path of per-step LR schedules."""
    cfg = _cfg()
    torch._dynamo.reset()
    fast = _fast_steps(cfg, Execution(True, "fp32", True), FACTORS, whole_step=False)
    _assert_same_steps(_reference_steps(cfg, FACTORS), fast)


# Six steps: two warm-up steps, a capture, replays with changing factors, a new LR (a second capture).
GRAPH_FACTORS = [{"loss_kd": f} for f in (0.25, 0.5, 0.75, 1.0, 1.0, 0.5)]
GRAPH_LRS = [0.01] * 4 + [0.002] * 2


def _assert_close_steps(
    ref: list[tuple[float, list[torch.Tensor]]], fast: list[tuple[float, list[torch.Tensor]]], grad_rtol: float
) -> None:
    """Losses within 1e-4 at every step; all gradients together within ``grad_rtol``."""
    for step, ((ref_loss, ref_grads), (fast_loss, fast_grads)) in enumerate(zip(ref, fast, strict=True), start=1):
        assert math.isclose(fast_loss, ref_loss, rel_tol=RTOL), (step, fast_loss, ref_loss)
        a = torch.cat([g.float().flatten() for g in ref_grads])
        b = torch.cat([g.float().flatten() for g in fast_grads])
        assert float((b - a).norm()) / float(a.norm()) < grad_rtol, step


@per_device
def test_whole_step_graph_replays_the_step_across_factor_and_lr_changes() -> None:
    """The whole step recorded once (a CUDA graph on CUDA) and replayed: the reference step's
    losses at every step, factors read at every replay, one more capture when the LR changes.

    Gradients are compared as a whole at 1e-2: after two optimizer steps, any two fp32 paths
    (eager or compiled, CPU or CUDA) differ by up to ~2e-2 in single small tensors (BatchNorm
    parameters of a batch-16 resnet8) and ~3e-3 overall, while the losses agree to ~1e-6. A
    stale input, a factor or LR baked into the graph, or accumulated gradients are far outside.
    """
    cfg = _cfg()
    torch._dynamo.reset()

    def captured_twice(runner: FastStep) -> None:
        assert runner.whole_step and runner.captures == 2 and runner.fallback is None

    whole = _fast_steps(
        cfg,
        Execution(True, "fp32", True),
        GRAPH_FACTORS,
        GRAPH_LRS,
        check=captured_twice,
        whole_step=True,
        warmup_steps=2,
    )
    _assert_close_steps(_reference_steps(cfg, GRAPH_FACTORS, GRAPH_LRS), whole, grad_rtol=1e-2)


def _refuse_capture(*args: object, **kwargs: object) -> None:
    raise RuntimeError("operation not permitted when stream is capturing")


@per_device
def test_a_failed_capture_falls_back_to_compiled_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg()
    monkeypatch.setattr(fast_module, "CapturedStep", _refuse_capture)

    def fell_back(runner: FastStep) -> None:
        assert runner.captures == 0 and runner.fallback is not None
        assert runner.fallback.startswith("the training step could not be recorded as one CUDA graph (operation not")
        assert not runner.whole_step and runner.graphs == ("forward and backward" if DEVICE.type == "cuda" else "none")

    torch._dynamo.reset()
    fast = _fast_steps(cfg, Execution(True, "fp32", True), GRAPH_FACTORS, GRAPH_LRS, check=fell_back, whole_step=True)
    _assert_close_steps(_reference_steps(cfg, GRAPH_FACTORS, GRAPH_LRS), fast, grad_rtol=1e-2)


@per_device
def test_a_shorter_last_batch_runs_eagerly_beside_the_compiled_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first batch size is compiled (one compilation, one set of CUDA graphs per run); the
    epoch's shorter last batch takes the eager step, and both land in the epoch's statistics."""
    cfg = _cfg()
    torch._dynamo.reset()
    distiller = _distiller(cfg)
    use_channels_last(distiller)
    distiller.train()
    params = list(distiller.trainable_parameters())
    execution = Execution(True, "fp32", True)
    runner = FastStep(
        distiller, optimizer_for(params, cfg, execution, DEVICE), params, execution, DEVICE, slots=2, whole_step=False
    )
    runner.set_factors({"loss_kd": 1.0})
    calls: list[int] = []
    eager = runner._forward

    def counted(batch: dict[str, torch.Tensor], factors: dict[str, torch.Tensor]) -> object:
        calls.append(len(batch["target"]))
        return eager(batch, factors)

    monkeypatch.setattr(runner, "_forward", counted)  # what the step calls for shapes it does not compile
    full, last = _batches(cfg, channels_last=True, count=2)
    short = {key: value[:5] for key, value in last.items()}
    losses = [float(runner.step(full, 0)), float(runner.step(short, 1)), float(runner.step(full, 0))]
    assert calls == [5]
    stats = runner.collect(1)
    assert stats.seen == 2 * cfg.batch_size + 5
    per_slot = [(losses[0] + losses[2]) * cfg.batch_size, losses[1] * 5]
    for got, want in zip(stats.loss_per_slot, per_slot, strict=True):
        assert math.isclose(got, want, rel_tol=RTOL), (stats.loss_per_slot, per_slot)


@per_device
def test_fast_step_bf16_stays_close_to_the_fp32_reference() -> None:
    """bf16 autocast is not fp32 (8 bits of mantissa): the loss agrees to ~1 %, not 1e-4."""
    cfg = _cfg()
    ref = _reference_steps(cfg, FACTORS)
    fast = _fast_steps(cfg, Execution(True, "bf16", False), FACTORS)
    for (ref_loss, _), (fast_loss, _) in zip(ref, fast, strict=True):
        assert math.isclose(fast_loss, ref_loss, rel_tol=3e-2), (fast_loss, ref_loss)


@pytest.mark.parametrize(
    ("values", "device", "expected"),
    [
        ({}, "cpu", Execution(False, "fp32", False)),
        # The reference's precision by default on CUDA: fp32 with TF32 convolutions and matmuls, on both paths.
        ({}, "cuda", Execution(True, "tf32", True)),
        ({"fast": False}, "cuda", Execution(False, "tf32", False)),
        ({"fast": True}, "cpu", Execution(True, "fp32", False)),
        ({"precision": "tf32"}, "cpu", Execution(False, "fp32", False)),  # TF32 is a CUDA mode
        ({"fast": True, "precision": "bf16", "compile": True}, "cpu", Execution(True, "bf16", True)),
        ({"precision": "fp32"}, "cuda", Execution(True, "fp32", True)),
        ({"precision": "bf16"}, "cuda", Execution(True, "bf16", True)),
        ({"compile": False}, "cuda", Execution(True, "tf32", False)),
    ],
)
def test_execution_resolves_auto_values_by_device(values: dict[str, object], device: str, expected: Execution) -> None:
    cfg = _cfg().model_copy(update=values)
    assert resolve_execution(cfg, torch.device(device)) == expected
    assert expected.tf32 is (expected.precision != "fp32")


def test_execution_keeps_compile_off_with_several_processes_unless_asked() -> None:
    assert resolve_execution(_cfg(), torch.device("cuda"), world_size=2) == Execution(True, "tf32", False)


def test_tf32_mode_sets_and_restores_the_cuda_switches() -> None:
    def state() -> tuple[str, bool, bool]:  # both of torch's views of the setting must stay readable
        return (
            torch.get_float32_matmul_precision(),
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
        )

    before = state()
    with tf32_mode(True):
        assert state() == ("high", True, True)
        with tf32_mode(False):
            assert state() == ("highest", False, False)
        assert state() == ("high", True, True)
    assert state() == before


@pytest.mark.parametrize("values", [{"fast": False, "precision": "bf16"}, {"fast": False, "compile": True}])
def test_fast_path_options_without_the_fast_path_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(UsageError, match="add --fast"):
        resolve_execution(_cfg().model_copy(update=values), torch.device("cpu"))


# ------------------------------------------------------------------------------------------------
# whole runs


@per_device
def test_fast_run_reaches_the_reference_runs_accuracy_on_digits(tmp_path: Path) -> None:
    """The digits recipe's one epoch (8 passes), where accuracy has settled near its ceiling: a
    shorter run sits on the steep part of the curve, where bf16 and fp32 runs (CUDA) differed by
    5.8 points in one measurement and agreed in the next."""
    settings = make_settings(tmp_path).model_copy(update={"device": str(DEVICE)})
    accuracy = {}
    for fast in (False, True):
        cfg = resolve_run_config(
            method="vanilla",
            student="resnet8",
            dataset="digits",
            flags={"epochs": 1, "seed": 0, "name": f"fast-{fast}"},
            overrides={"fast": fast},
        )
        result = fit(cfg, settings)
        saved = json.loads((result.run_dir / "config.json").read_text())
        assert saved["fast"] is fast and saved["precision"] in ("fp32", "bf16") and saved["compile"] in (True, False)
        accuracy[fast] = result.summary["best_acc"]
        if fast:  # the digits recipe's per-step cosine LR keeps torch.compile's graphs, not a whole-step graph
            start = json.loads((result.run_dir / "log.jsonl").read_text().splitlines()[0])
            assert start["cuda_graphs"] == ("forward and backward" if DEVICE.type == "cuda" else "none")
    assert accuracy[False] > 85 and abs(accuracy[True] - accuracy[False]) < 4, accuracy


@per_device
def test_fast_path_refuses_a_non_finite_epoch_before_committing_it(tmp_path: Path, teacher_run: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"device": str(DEVICE)})
    cfg = _cfg(epochs=1, teacher_ckpt=str(teacher_run)).model_copy(update={"fast": True, "lr": 1e12})
    with pytest.raises(NonFiniteLoss, match=r"in epoch 1 \(the fast path checks once per epoch\)"):
        fit(cfg, settings, allow_weak_teacher=True)
    run_dir = cfg.run_dir(settings.runs_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert not list((run_dir / "checkpoints").glob("*.safetensors"))


@per_device
def test_a_resume_keeps_how_the_run_executed_unless_asked_otherwise(tmp_path: Path, teacher_run: Path) -> None:
    """A run started on the fast path (or by a lockstep sweep on the reference path) resumes as it
    ran when the request leaves the choice to the device; runs from before the fast path resume too."""
    settings = make_settings(tmp_path).model_copy(update={"device": str(DEVICE)})
    started = _cfg(epochs=1, teacher_ckpt=str(teacher_run)).model_copy(update={"fast": True})
    run_dir = fit(started, settings, allow_weak_teacher=True).run_dir
    auto = started.model_copy(update={"fast": None, "epochs": 2})
    fit(auto, settings, resume=True, allow_weak_teacher=True)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["fast"] is True and saved["epochs"] == 2
    for key in ("fast", "precision", "compile"):  # as an older dskd wrote it
        del saved[key]
    (run_dir / "config.json").write_text(json.dumps(saved))
    summary = fit(auto.model_copy(update={"epochs": 3}), settings, resume=True, allow_weak_teacher=True).summary
    assert summary["epochs_done"] == 3
    # That resume recorded what it resolved (the reference path on the CPU); an explicit request that
    # differs from the record is refused.
    assert json.loads((run_dir / "config.json").read_text())["fast"] is (DEVICE.type == "cuda")
    with pytest.raises(UsageError, match="fast changed"):
        fit(
            started.model_copy(update={"fast": DEVICE.type != "cuda", "epochs": 4}),
            settings,
            resume=True,
            allow_weak_teacher=True,
        )
    # So is --no-fast for a run that ran fast on CUDA (bf16, compiled): by name, not as bf16 without --fast.
    saved = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**saved, "fast": True, "precision": "bf16", "compile": True}))
    with pytest.raises(UsageError, match=r"different config \(compile, fast, precision changed\)"):
        fit(started.model_copy(update={"fast": False, "epochs": 4}), settings, resume=True, allow_weak_teacher=True)


@per_device
def test_a_resumed_optimizer_keeps_its_parameters_channels_last_layout(tmp_path: Path) -> None:
    """Momentum buffers load contiguous from the train state; on the fast path they take the
    channels_last layout of their parameters (CUDA's fused SGD refuses mismatched strides)."""
    from dskd_core.train.state import Progress, load_train_state, save_train_state

    cfg = _cfg()
    execution = Execution(True, "fp32", False)

    def setup() -> tuple[Distiller, torch.optim.Optimizer, FastStep]:
        distiller = _distiller(cfg)
        use_channels_last(distiller)
        distiller.train()
        params = list(distiller.trainable_parameters())
        optimizer = optimizer_for(params, cfg, execution, DEVICE)
        return distiller, optimizer, FastStep(distiller, optimizer, params, execution, DEVICE)

    distiller, optimizer, runner = setup()
    runner.set_factors({"loss_kd": 1.0})
    batch = _batches(cfg, channels_last=True, count=1)[0]
    runner.step(batch)
    save_train_state(tmp_path, distiller, optimizer, Progress(epoch=1), "{}")
    distiller, optimizer, runner = setup()
    load_train_state(tmp_path, distiller, optimizer)
    convs = [p for p in distiller.student.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    for param in convs:
        assert optimizer.state[param]["momentum_buffer"].stride() == param.stride()
    runner.set_factors({"loss_kd": 1.0})
    assert math.isfinite(float(runner.step(batch)))  # the fused step accepts the loaded buffers


@per_device
def test_a_run_through_the_whole_step_graph_equals_one_through_compiled_steps(
    tmp_path: Path, teacher_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine around the whole-step graph: three epochs with an LR decay after each (two
    more captures), an eager short last batch every epoch beside the replays, the statistics
    and loss curve read per epoch. On the CPU the graph is the step called again, so the run
    must log the same numbers as a run of plain compiled steps; on CUDA it is a real graph."""
    from dskd_core.train import engine

    runners: list[FastStep] = []

    def recording(whole_step: bool) -> Callable[..., FastStep]:
        def make(*args: Any, **kwargs: Any) -> FastStep:
            runners.append(FastStep(*args, **{**kwargs, "whole_step": whole_step, "warmup_steps": 1}))
            return runners[-1]

        return make

    settings = make_settings(tmp_path).model_copy(update={"device": str(DEVICE)})
    logs, notes = {}, {}
    for name, whole_step in (("plain", False), ("graphed", True), ("refused", True)):
        monkeypatch.setattr(engine, "FastStep", recording(whole_step))
        if name == "refused":  # a step that cannot be recorded: the run goes on, and its log says so once
            monkeypatch.setattr(fast_module, "CapturedStep", _refuse_capture)
        torch._dynamo.reset()
        cfg = _cfg(epochs=3, batch_size=24, teacher_ckpt=str(teacher_run), name=name)
        cfg = cfg.model_copy(update={"fast": True, "compile": True, "lr_decay_epochs": [1, 2]})
        run_dir = fit(cfg, settings, allow_weak_teacher=True).run_dir
        events = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        logs[name] = [e for e in events if e["event"] == "epoch"]
        test_samples = events[0]["test_samples"]
        notes[name] = [e["message"] for e in events if e["event"] == "note"]
    plain, graphed, refused = runners
    assert graphed.captures == 3 and graphed.fallback is None and plain.captures == refused.captures == 0
    assert notes["plain"] == notes["graphed"] == [] and notes["refused"] == [refused.fallback]
    assert [e["lr"] for e in logs["graphed"]] == pytest.approx([0.05, 0.005, 0.0005])
    # On the CPU the same computation exactly; on CUDA a real graph's kernels may sum in another
    # order, so losses get 1e-2 and the test accuracy two images either way.
    rel, images = (RTOL, 0) if DEVICE.type == "cpu" else (1e-2, 2)
    for name in ("graphed", "refused"):
        for a, b in zip(logs["plain"], logs[name], strict=True):
            assert a["lr"] == b["lr"]
            for key in ("train_loss", "test_loss"):
                assert b[key] == pytest.approx(a[key], rel=rel), (name, key)
            assert abs(b["test_acc"] - a["test_acc"]) <= 100 * images / test_samples + 1e-9, name
            assert b["train_loss_curve"] == pytest.approx(a["train_loss_curve"], rel=rel)
