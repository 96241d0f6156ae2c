"""Fused lockstep: K students of one architecture stacked into one fast step.

Tolerances, as measured on this CPU. In float64 a fused student equals its separate run to
1e-12 after 8 steps, for every variant: the same arithmetic, to rounding. In float32 the first
step agrees to ~2e-7 (the stacked forward's grouped convolutions and batch norms sum in another
order than K plain ones); training then amplifies that rounding, fastest where standardization
divides near-constant initial logits by their small spread under DKD's large weights (DKD+LS:
3.4e-4 after 4 steps on random data; most variants stay below 1e-5). The float32 bounds checked:
1e-6 after one step, 1e-3 after four, on every parameter and buffer of every student.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import load_tensors
from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.methods import Distiller, get_method
from dskd_core.models import ZooModel, create_model, list_models
from dskd_core.resolve import resolve_run_config
from dskd_core.sdd import multiscale_logits
from dskd_core.sweep import run_sweep
from dskd_core.train import fit
from dskd_core.train.execution import Execution, deterministic_kernels, optimizer_for, tf32_mode
from dskd_core.train.fast import FastStep
from dskd_core.train.fused import FusedStep, StackedStudents, alone_note, fit_fused, fuse_refusal, plan_fused
from tests.helpers import make_settings, stderr_of

CPU = torch.device("cpu")
FAST = Execution(fast=True, precision="fp32", compile=False)
#: The fp32 bound after 4 steps (see the module docstring).
FP32_TOLERANCE = 1e-3

#: Plain, SDD, LS and both.
FOUR: list[dict[str, object]] = [{}, {"scales": [1, 2, 4]}, {"stand": True}, {"scales": [1, 2], "stand": True}]
#: KD, DKD and RLD × plain, SDD, LS and both.
VARIANTS: list[tuple[str, dict[str, object]]] = [(method, extra) for method in ("kd", "dkd", "rld") for extra in FOUR]


def variant_configs(**flags: object) -> list[RunConfig]:
    return [
        resolve_run_config(
            method=method, teacher="resnet8", student="resnet8", dataset="synthetic", flags={**extra, **flags}
        )
        for method, extra in VARIANTS
    ]


def build(cfg: RunConfig, teacher: ZooModel, device: torch.device = CPU) -> Distiller:
    torch.manual_seed(cfg.seed)
    student = create_model(cfg.student, num_classes=100)
    distiller = get_method(cfg.method)(student, teacher, cfg).to(device)
    distiller.train()
    return distiller


def random_batches(n: int, dtype: torch.dtype, device: torch.device = CPU) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randn(32, 3, 32, 32, generator=gen, dtype=dtype).to(device),
            "target": torch.randint(0, 100, (32,), generator=gen).to(device),
        }
        for _ in range(n)
    ]


#: Per step: the LR every run steps with (None: as configured), and multipliers of its KD term.
Schedule = Sequence[tuple[float | None, dict[str, float]]]


def steps_apart(
    cfgs: Sequence[RunConfig],
    batches: list[dict[str, torch.Tensor]],
    *,
    execution: Execution = FAST,
    device: torch.device = CPU,
    schedule: Schedule = (),
) -> list[Distiller]:
    """Each config's distiller after its own fast steps on ``batches``."""
    torch.manual_seed(100)
    teacher = create_model("resnet8", num_classes=100).to(device).eval()
    out = []
    for cfg in cfgs:
        distiller = build(cfg, teacher, device)
        params = list(distiller.trainable_parameters())
        optimizer = optimizer_for(params, cfg, execution, device)
        step = FastStep(distiller, optimizer, params, execution, device, cfg.clip_grad)
        step.begin_epoch(1, distiller.term_weights(1))
        for i, batch in enumerate(batches):
            if schedule:
                lr, factors = schedule[i]
                for group in optimizer.param_groups:
                    group["lr"] = lr if lr is not None else cfg.lr
                step.set_factors(factors)
            step.step(batch)
        out.append(distiller)
    return out


def steps_fused(
    cfgs: Sequence[RunConfig],
    batches: list[dict[str, torch.Tensor]],
    *,
    execution: Execution = FAST,
    device: torch.device = CPU,
    schedule: Schedule = (),
    whole_step: bool | None = None,
    before: Callable[[FusedStep], None] = lambda group: None,
) -> tuple[list[Distiller], FusedStep]:
    """The same, the distillers stepped as one fused group (``before`` sees it before its first step)."""
    torch.manual_seed(100)
    teacher = create_model("resnet8", num_classes=100).to(device).eval()
    distillers = [build(cfg, teacher, device) for cfg in cfgs]
    params = [list(d.trainable_parameters()) for d in distillers]
    optimizers = [optimizer_for(p, cfg, execution, device) for p, cfg in zip(params, cfgs, strict=True)]
    clips = [c.clip_grad for c in cfgs]
    group = FusedStep(distillers, optimizers, params, clips, teacher, execution, device, 1, whole_step=whole_step)
    group.warmup_steps = 2
    for k, distiller in enumerate(distillers):
        group.set_member_factors(k, distiller.term_weights(1))
    group.begin_epoch(1, {})
    before(group)
    for i, batch in enumerate(batches):
        if schedule:
            lr, factors = schedule[i]
            for k, (cfg, optimizer) in enumerate(zip(cfgs, optimizers, strict=True)):
                for param_group in optimizer.param_groups:
                    param_group["lr"] = lr if lr is not None else cfg.lr
                group.set_member_factors(k, factors)
        group.step(batch)
    return distillers, group


def max_difference(a: Distiller, b: Distiller) -> float:
    sa, sb = a.student.state_dict(), b.student.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)


def test_fused_step_is_the_separate_steps_arithmetic_in_float64(float64: None) -> None:
    cfgs = variant_configs(warmup=1)
    batches = random_batches(8, torch.float64)
    fused, group = steps_fused(cfgs, batches)
    apart = steps_apart(cfgs, batches)
    for cfg, a, b in zip(cfgs, fused, apart, strict=True):
        assert max_difference(a, b) < 1e-12, cfg.variant
    # each run's statistics are its own: the losses a separate run sums
    for k, cfg in enumerate(cfgs):
        stats = group.collect_member(k, 1)
        assert set(stats.sums) == {"loss_ce", "loss_kd"} and stats.seen == 8 * 32, cfg.variant


def test_fused_step_matches_separate_steps_in_float32() -> None:
    cfgs = variant_configs(warmup=1)
    with deterministic_kernels(True):
        one = random_batches(1, torch.float32)
        for a, b in zip(steps_fused(cfgs, one)[0], steps_apart(cfgs, one), strict=True):
            assert max_difference(a, b) < 1e-6
        four = random_batches(4, torch.float32)
        for cfg, a, b in zip(cfgs, steps_fused(cfgs, four)[0], steps_apart(cfgs, four), strict=True):
            assert max_difference(a, b) < FP32_TOLERANCE, cfg.variant


#: Factor changes at every step, the LR lowered for the last two: one capture more (graph constants).
SCHEDULE: Schedule = [(None, {"loss_kd": f}) for f in (0.25, 0.5, 0.75, 1.0)] + [(0.005, {"loss_kd": 1.0})] * 2


def relative_change(fused: Distiller, apart: Distiller, init: Mapping[str, torch.Tensor]) -> float:
    """The largest difference of a fused student's parameter or BatchNorm running statistic from its separate
    run's, relative to how far training moved it from its initial value."""
    a, b = fused.student.state_dict(), apart.student.state_dict()
    keys = [k for k in a if a[k].is_floating_point()]
    return max(float((a[k] - b[k]).norm() / (b[k].cpu() - init[k]).norm()) for k in keys)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_compiled_whole_step_graph_of_a_fused_group(device: str) -> None:
    """Compiled, the whole fused step recorded once and replayed (a CUDA graph on CUDA; on the CPU the recording
    is the bookkeeping only, the step runs again at each replay), recorded again when the LR changes, factors
    read at every replay. Against eager separate runs the weights and running statistics agree to 1e-2 of
    what the six steps changed (1.4e-3 measured: compiled and eager fp32 round differently); training with a
    factor stuck at its first value gives 0.77 here, with the LR not lowered 0.52."""
    where = torch.device(device)
    cfgs = [variant_configs(warmup=1)[i] for i in (0, 1, 9)]  # KD, KD+SDD, RLD+SDD: no LS (its chaos, above)
    compiled = Execution(fast=True, precision="fp32", compile=True)
    torch._dynamo.reset()
    batches = random_batches(6, torch.float32, where)
    with tf32_mode(False):
        fused, group = steps_fused(cfgs, batches, execution=compiled, device=where, schedule=SCHEDULE, whole_step=True)
        apart = steps_apart(cfgs, batches, device=where, schedule=SCHEDULE)
    assert group.whole_step and group.captures == 2 and group.fallback is None
    torch.manual_seed(cfgs[0].seed)
    init = create_model("resnet8", num_classes=100).state_dict()
    for cfg, a, b in zip(cfgs, fused, apart, strict=True):
        assert relative_change(a, b, init) < 1e-2, cfg.variant
        tracked = a.student.state_dict()["bn1.num_batches_tracked"]
        assert int(tracked) == len(batches) == int(b.student.state_dict()["bn1.num_batches_tracked"])


def test_a_fused_forward_torch_compile_refuses_runs_uncompiled() -> None:
    cfgs = variant_configs()[:2]
    compiled = Execution(fast=True, precision="fp32", compile=True)

    def refuse(group: FusedStep) -> None:
        def compile_error(*args: object) -> None:
            raise torch._dynamo.exc.TorchDynamoException("vmap is not supported here\nmore detail")

        group._compiled = compile_error  # type: ignore[assignment]

    batches = random_batches(2, torch.float32)
    fused, group = steps_fused(cfgs, batches, execution=compiled, before=refuse)
    assert group.fallback == (
        "the fused step could not be compiled (vmap is not supported here); it runs uncompiled instead"
    )
    eager, _ = steps_fused(cfgs, batches)
    for a, b in zip(fused, eager, strict=True):
        assert max_difference(a, b) == 0.0


@pytest.mark.parametrize("name", list_models("cifar"))
def test_every_cifar_student_stacks(name: str, float64: None) -> None:
    """The stacked forward and backward of two students of each zoo architecture equal theirs one by one."""
    students = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        students.append(create_model(name, num_classes=10).train())
    alone = [copy.deepcopy(s) for s in students]
    stack = StackedStudents(students, [(1, 2, 4)])
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    logits, regions = stack.forward(image)
    (logits.square().sum() + regions[0].square().sum()).backward()
    for k, model in enumerate(alone):
        own, feats = model(image)
        own_regions = multiscale_logits(feats["final_map"], model.get_classifier(), (1, 2, 4))
        (own.square().sum() + own_regions.square().sum()).backward()
        assert torch.allclose(own, logits[k], rtol=1e-9, atol=1e-9)
        for (_, p), (_, q) in zip(model.named_parameters(), students[k].named_parameters(), strict=True):
            assert p.grad is not None and q.grad is not None and torch.allclose(p.grad, q.grad, rtol=1e-8, atol=1e-9)
        for (_, x), (_, y) in zip(model.named_buffers(), students[k].named_buffers(), strict=True):
            assert torch.allclose(x.double(), y.double(), rtol=1e-9, atol=1e-9)


def test_fused_students_own_their_slices_and_their_optimizer_state() -> None:
    cfgs = variant_configs()[:2]
    distillers, group = steps_fused(cfgs, random_batches(2, torch.float32))
    stacked = group.stack.params["student.conv1.weight"]
    for k, distiller in enumerate(distillers):
        weight = distiller.student.get_parameter("conv1.weight")
        assert weight.data_ptr() == stacked[k].data_ptr()  # the student reads the live weights
        assert weight.grad is not None and weight.grad.data_ptr() == stacked.grad[k].data_ptr()  # type: ignore[index]
        assert "momentum_buffer" in group.optimizers[k].state[weight]  # its own SGD stepped it


def run_configs(teacher: Path, variants: Sequence[dict[str, object]], **flags: object) -> list[RunConfig]:
    common = {"teacher_ckpt": str(teacher), "fast": True, "deterministic": True, **flags}
    return [
        resolve_run_config(
            method="kd", teacher="resnet8", student="resnet8", dataset="synthetic", flags={**common, **extra}
        )
        for extra in variants
    ]


def student_file(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "checkpoints" / "student_last.safetensors")[0]


def test_fit_fused_run_folders_equal_separate_runs(teacher_run: Path, tmp_path: Path) -> None:
    cfgs = run_configs(teacher_run, FOUR, epochs=1)  # 4 steps
    fused = fit_fused(cfgs, make_settings(tmp_path / "fused"))
    assert fused.throughput is not None and fused.throughput.students == 4
    assert fused.throughput.student_img_per_s > 0 and fused.throughput.ratio is not None
    for cfg, result in zip(cfgs, fused.results, strict=True):
        assert not isinstance(result, Exception)
        separate = fit(cfg, make_settings(tmp_path / "separate"))
        a, b = student_file(result.run_dir), student_file(separate.run_dir)
        assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) < FP32_TOLERANCE, cfg.variant
        assert (result.run_dir / "config.json").read_text() == (separate.run_dir / "config.json").read_text()
        log = [json.loads(line) for line in (result.run_dir / "log.jsonl").read_text().splitlines()]
        assert [e["event"] for e in log] == ["start", "note", "epoch", "end"]
        assert "trains fused with 3 other runs of resnet8" in log[1]["message"]
        assert result.summary["status"] == "finished"


class Interrupt:
    """An observer that presses Ctrl-C at the ``after``-th epoch event."""

    def __init__(self, after: int) -> None:
        self.after, self.seen = after, 0

    def __call__(self, event: dict[str, object]) -> None:
        if event.get("event") == "epoch":
            self.seen += 1
            if self.seen == self.after:
                raise KeyboardInterrupt


def statuses(run_dirs: Sequence[Path]) -> list[str]:
    return [json.loads((d / "summary.json").read_text())["status"] for d in run_dirs]


def test_fused_group_resumed_in_the_middle_equals_one_uninterrupted(teacher_run: Path, tmp_path: Path) -> None:
    cfgs = run_configs(teacher_run, FOUR[:3], epochs=2)
    whole = run_sweep(cfgs, make_settings(tmp_path / "whole"))
    assert [r.status for r in whole.rows] == ["finished"] * 3 and len(whole.fused) == 1
    settings = make_settings(tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):  # after every run committed epoch 1
        run_sweep(cfgs, settings, observer=Interrupt(after=3))
    dirs = [c.run_dir(settings.runs_dir) for c in cfgs]
    assert statuses(dirs) == ["interrupted"] * 3
    resumed = run_sweep(cfgs, settings)
    assert [r.status for r in resumed.rows] == ["finished"] * 3 and len(resumed.fused) == 1
    for a_row, b_row in zip(whole.rows, resumed.rows, strict=True):
        a, b = student_file(a_row.run_dir), student_file(b_row.run_dir)
        assert all(torch.equal(a[k], b[k]) for k in a), a_row.config.variant
        events = [json.loads(x)["event"] for x in (b_row.run_dir / "log.jsonl").read_text().splitlines()]
        assert events.count("epoch") == 2 and "interrupted" in events


def test_fused_runs_an_epoch_apart_resume_as_separate_groups(teacher_run: Path, tmp_path: Path) -> None:
    cfgs = run_configs(teacher_run, FOUR[:3], epochs=2)
    settings = make_settings(tmp_path)
    with pytest.raises(KeyboardInterrupt):  # the first run committed epoch 1, the others did not
        run_sweep(cfgs, settings, observer=Interrupt(after=1))
    dirs = [c.run_dir(settings.runs_dir) for c in cfgs]
    with pytest.raises(KeyboardInterrupt):  # in the first group (the two at epoch 0): the later one stops too
        run_sweep(cfgs, settings, observer=Interrupt(after=1))
    assert statuses(dirs) == ["interrupted"] * 3
    resumed = run_sweep(cfgs, settings)
    assert [r.status for r in resumed.rows] == ["finished"] * 3
    for row in resumed.rows:
        events = [json.loads(x) for x in (row.run_dir / "log.jsonl").read_text().splitlines()]
        assert [e["epoch"] for e in events if e["event"] == "epoch"][-2:] == [1, 2]
        separate = fit(row.config, make_settings(tmp_path / "separate"))
        a, b = student_file(row.run_dir), student_file(separate.run_dir)
        assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) < 10 * FP32_TOLERANCE


def test_with_several_devices_each_fused_group_trains_on_one(teacher_run: Path, tmp_path: Path) -> None:
    """--devices: a group stays on one device (here two CPU processes), the groups spread over the devices."""
    cfgs = [
        c.model_copy(update={"seed": seed})
        for seed in (0, 1)
        for c in run_configs(teacher_run, FOUR[:2], epochs=1, deterministic=False)
    ]
    result = run_sweep(cfgs, make_settings(tmp_path), devices=["cpu", "cpu"])
    assert [r.status for r in result.rows] == ["finished"] * 4
    assert sorted(f.students for f in result.fused) == [2, 2] and result.notes == []
    for row in result.rows:
        log = (row.run_dir / "log.jsonl").read_text()
        assert "trains fused with 1 other run of resnet8" in log


def test_a_nan_stops_its_run_not_the_group(teacher_run: Path, tmp_path: Path) -> None:
    good = run_configs(teacher_run, FOUR[:2], epochs=2)
    bad = run_configs(teacher_run, [{"stand": True, "lr": 1e12}], epochs=2)
    together = fit_fused([good[0], bad[0], good[1]], make_settings(tmp_path / "three"))
    failed = together.results[1]
    assert isinstance(failed, Exception) and ("is nan" in str(failed) or "is inf" in str(failed))
    summary = json.loads((bad[0].run_dir(tmp_path / "three" / "runs") / "summary.json").read_text())
    assert summary["status"] == "failed" and "epoch 1" in summary["error"]
    without = fit_fused(good, make_settings(tmp_path / "two"))
    for with_bad, alone in zip([together.results[0], together.results[2]], without.results, strict=True):
        assert not isinstance(with_bad, Exception) and not isinstance(alone, Exception)
        assert with_bad.summary["status"] == "finished" and with_bad.summary["epochs_done"] == 2
        a, b = student_file(with_bad.run_dir), student_file(alone.run_dir)
        assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) < FP32_TOLERANCE


def test_a_run_whose_folder_cannot_train_fails_alone(teacher_run: Path, tmp_path: Path) -> None:
    cfgs = run_configs(teacher_run, FOUR[:3], epochs=1)
    settings = make_settings(tmp_path)
    other = cfgs[1].model_copy(update={"lr": 0.2})  # the same folder, another config
    fit(other, settings)
    result = fit_fused(cfgs, settings)
    refused = result.results[1]
    assert isinstance(refused, UsageError) and "another config" in str(refused)
    assert [isinstance(r, Exception) for r in result.results] == [False, True, False]
    assert result.throughput is not None and result.throughput.students == 2
    kept = json.loads((cfgs[1].run_dir(settings.runs_dir) / "config.json").read_text())
    assert kept["lr"] == 0.2  # the other run's folder is left as it was


def test_a_fused_step_that_cannot_run_leaves_its_runs_to_train_one_at_a_time(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device or torch that cannot run the stacked step (here: its forward raises, as an unsupported op or
    memory for K students would): the sweep says so and trains the runs separately, as --no-fuse would."""
    cfgs = run_configs(teacher_run, FOUR[:2], epochs=1)

    def cannot(self: FusedStep, batch: object, factors: object) -> None:
        raise RuntimeError("CUDA error: out of memory\nmore")

    monkeypatch.setattr(FusedStep, "_forward", cannot)
    result = run_sweep(cfgs, make_settings(tmp_path / "sweep"))
    assert [r.status for r in result.rows] == ["finished", "finished"] and result.fused == []
    assert result.notes == [
        "the fused group of 2 resnet8 runs (seed 0) stopped (RuntimeError: CUDA error: out of memory more); "
        "its runs train one at a time"
    ]
    for row in result.rows:
        separate = fit(row.config, make_settings(tmp_path / "separate"))
        a, b = student_file(row.run_dir), student_file(separate.run_dir)
        assert all(torch.equal(a[k], b[k]) for k in a)  # the same run as a separate one, bit for bit


def test_what_cannot_be_stacked_is_said_and_trains_alone(teacher_run: Path) -> None:
    common = {"teacher_ckpt": str(teacher_run), "fast": True}

    def cfg(method: str, student: str = "resnet8", **flags: object) -> RunConfig:
        return resolve_run_config(
            method=method, teacher="resnet8", student=student, dataset="synthetic", flags={**common, **flags}
        )

    kd, kd_ls, at, other = cfg("kd"), cfg("kd", stand=True), cfg("at"), cfg("kd", "resnet14")
    groups, alone = plan_fused([kd, kd_ls, at, other], CPU)
    assert groups == [[kd, kd_ls]] and [c for c, _ in alone] == [at, other]
    notes = [alone_note(c, why) for c, why in alone]
    assert any(n.startswith("resnet8 -> resnet8 at seed 0 trains alone") and "needs more than" in n for n in notes)
    assert any("resnet14" in n and "other students (resnet8)" in n for n in notes)
    reference = [c.model_copy(update={"fast": False}) for c in (kd, kd_ls)]
    assert plan_fused(reference, CPU) == ([], [])  # the reference path has its own lockstep
    assert "reference path" in (fuse_refusal(reference, CPU) or "")
    assert "students differ" in (fuse_refusal([kd, other], CPU) or "")
    with pytest.raises(UsageError, match="cannot train as one fused step"):
        fit_fused([kd, at], make_settings(Path("/nonexistent")))


def test_sweep_fuses_by_default_on_the_fast_path_and_no_fuse_turns_it_off(teacher_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = [
        "sweep", "kd", "resnet8", "resnet8", "-d", "synthetic", "--seeds", "0", "--scales-grid", "1;1,2",
        "--stand", "off", "--epochs", "1", "--set", "fast=true", "--teacher-ckpt", str(teacher_run),
        "--device", "cpu", "--format", "json",
    ]  # fmt: skip
    plan = runner.invoke(app, [*base, "--runs-dir", str(tmp_path / "fused"), "--dry-run"])
    assert plan.exit_code == 0, stderr_of(plan)
    assert [(r["fused"], r["fused_group"]) for r in json.loads(plan.stdout)] == [(2, 0), (2, 0)]
    plan_apart = runner.invoke(app, [*base, "--runs-dir", str(tmp_path / "fused"), "--dry-run", "--no-fuse"])
    assert all("fused" not in r for r in json.loads(plan_apart.stdout))
    fused = runner.invoke(app, [*base, "--runs-dir", str(tmp_path / "fused")])
    assert fused.exit_code == 0, stderr_of(fused)
    report = json.loads(fused.stdout)
    assert [r["status"] for r in report["runs"]] == ["finished", "finished"]
    assert len(report["fused"]) == 1 and report["fused"][0]["students"] == 2 and report["fused"][0]["ratio"] > 0
    apart = runner.invoke(app, [*base, "--runs-dir", str(tmp_path / "apart"), "--no-fuse"])
    assert apart.exit_code == 0, stderr_of(apart)
    assert json.loads(apart.stdout)["fused"] == []
    plan_table = runner.invoke(app, [*base[:-2], "--runs-dir", str(tmp_path / "table"), "--dry-run"])
    assert "fused: 2 runs in 1 group, one stacked step each" in plan_table.stdout
    table = runner.invoke(app, [*base[:-2], "--runs-dir", str(tmp_path / "table")])
    assert table.exit_code == 0 and "fused: 2 resnet8 students as one step" in table.stdout
