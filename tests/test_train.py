"""End-to-end training on synthetic data: logs, checkpoints, resume, refusals, the NaN guard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from dskd_core.checkpoint import load_tensors
from dskd_core.errors import CheckpointError, NonFiniteLoss, UsageError
from dskd_core.resolve import resolve_run_config
from dskd_core.train import fit, lr_at
from tests.helpers import kd_config
from tests.helpers import make_settings as _settings

_kd = kd_config


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_vanilla_run_writes_config_log_summary_and_checkpoints(teacher_run: Path) -> None:
    events = _events(teacher_run)
    assert [e["event"] for e in events] == ["start", "epoch", "end"]
    epoch = events[1]
    for key in ("lr", "train_loss", "train_acc", "test_acc", "test_acc_top5", "test_loss", "loss_ce"):
        assert key in epoch
    # 4 steps of 64 synthetic images: one curve point per step, their sample-weighted mean the epoch's loss
    curve = epoch["train_loss_curve"]
    assert len(curve) == 4 and all(v > 0 for v in curve)
    assert sum(curve) / 4 == pytest.approx(epoch["train_loss"])
    summary = json.loads((teacher_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 1
    assert summary["best_acc"] == epoch["test_acc"] == summary["last_acc"]
    assert json.loads((teacher_run / "config.json").read_text())["method"] == "vanilla"
    tensors, meta = load_tensors(teacher_run / "checkpoints" / "student_last.safetensors")
    assert meta["arch"] == "resnet8" and "fc.weight" in tensors


def test_kd_with_sdd_and_stand_trains_and_resumes_without_duplicate_epochs(teacher_run: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = fit(_kd(teacher_run, epochs=1, scales=[1, 2, 4], stand=True), settings)
    assert first.run_dir.name == "seed0" and first.run_dir.parent.name == "kd+sdd[1,2,4]+ls"
    resumed = fit(_kd(teacher_run, epochs=2, scales=[1, 2, 4], stand=True), settings, resume=True)
    events = _events(resumed.run_dir)
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]
    assert events[0]["event"] == "start" and "teacher_acc" in events[0]
    assert any(e["event"] == "resume" for e in events)
    assert resumed.summary["epochs_done"] == 2 and resumed.summary["status"] == "finished"
    # Resuming a finished run trains nothing and reports the same result.
    again = fit(_kd(teacher_run, epochs=2, scales=[1, 2, 4], stand=True), settings, resume=True)
    assert again.summary["last_acc"] == resumed.summary["last_acc"]
    assert [e["epoch"] for e in _events(resumed.run_dir) if e["event"] == "epoch"] == [1, 2]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(teacher_run: Path, tmp_path: Path) -> None:
    straight = fit(_kd(teacher_run, epochs=2), _settings(tmp_path / "a"))
    split = _settings(tmp_path / "b")
    fit(_kd(teacher_run, epochs=1, lr_decay_epochs=[1]), split)
    resumed = fit(_kd(teacher_run, epochs=2, lr_decay_epochs=[1]), split, resume=True)
    a, _ = load_tensors(straight.run_dir / "checkpoints" / "student_last.safetensors")
    b, _ = load_tensors(resumed.run_dir / "checkpoints" / "student_last.safetensors")
    assert straight.summary["last_acc"] == resumed.summary["last_acc"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_existing_run_is_not_overwritten_without_resume(teacher_run: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    fit(_kd(teacher_run, epochs=1), settings)
    with pytest.raises(UsageError, match="--resume"):
        fit(_kd(teacher_run, epochs=1), settings)
    with pytest.raises(UsageError, match="temperature"):
        fit(_kd(teacher_run, epochs=2, temperature=8.0), settings, resume=True)


def test_missing_teacher_names_the_fix(tmp_path: Path) -> None:
    cfg = resolve_run_config(method="kd", teacher="resnet20", student="resnet8", dataset="synthetic")
    with pytest.raises(CheckpointError, match="dskd train vanilla resnet20"):
        fit(cfg, _settings(tmp_path))


def test_teacher_run_of_another_model_is_refused(teacher_run: Path, tmp_path: Path) -> None:
    cfg = resolve_run_config(
        method="kd",
        teacher="resnet20",
        student="resnet8",
        dataset="synthetic",
        flags={"teacher_ckpt": str(teacher_run)},
    )
    with pytest.raises(CheckpointError, match="not resnet20"):
        fit(cfg, _settings(tmp_path))


def test_non_finite_loss_stops_the_run_naming_the_term(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dskd_core.methods.kd as kd_module

    monkeypatch.setattr(kd_module, "kd", lambda s, t, temperature: torch.full(s.shape[:1], float("nan")))
    with pytest.raises(NonFiniteLoss, match="loss_kd is nan at epoch 1 step 1"):
        fit(_kd(teacher_run, epochs=1), _settings(tmp_path))
    summary = json.loads(next((tmp_path / "runs").rglob("summary.json")).read_text())
    assert summary["status"] == "failed" and "loss_kd" in summary["error"]


def test_step_schedule_decays_after_each_stage() -> None:
    cfg = resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4")
    assert lr_at(cfg, 150) == pytest.approx(0.05)
    assert lr_at(cfg, 151) == pytest.approx(0.005)
    assert lr_at(cfg, 181) == pytest.approx(0.0005)
    assert lr_at(cfg, 240) == pytest.approx(0.00005)


def test_cosine_schedule_goes_from_lr_to_zero_over_the_run_step_by_step() -> None:
    cfg = resolve_run_config(method="vanilla", student="resnet8", dataset="digits", flags={"epochs": 2})
    assert cfg.lr_schedule == "cosine" and cfg.epoch_passes == 8  # the digits recipe
    assert lr_at(cfg, 1) == pytest.approx(0.05)
    assert lr_at(cfg, 1, 0.5) == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(cfg, 2) == pytest.approx(0.025)
    assert lr_at(cfg, 2, 0.999) == pytest.approx(0.0, abs=1e-6)


def test_clip_grad_bounds_the_global_norm_before_each_step(teacher_run: Path, tmp_path: Path) -> None:
    from dskd_core.data import BatchLoader, LoaderOptions, get_dataset_spec, load_dataset
    from dskd_core.methods import get_method
    from dskd_core.models import create_model
    from dskd_core.train.engine import Trainer

    cfg = _kd(teacher_run, clip_grad=0.01)
    spec = get_dataset_spec("synthetic")
    distiller = get_method("kd")(create_model("resnet8"), create_model("resnet8"), cfg)
    trainer = Trainer(
        cfg,
        distiller,
        spec,
        torch.device("cpu"),
        tmp_path / "run",
        resume=False,
        overwrite=False,
        notify=lambda event: None,
    )
    norms: list[float] = []
    original_step = trainer.optimizer.step

    def spy_step(*args, **kwargs):  # type: ignore[no-untyped-def]
        grads = [p.grad.norm() for p in trainer.params if p.grad is not None]
        norms.append(float(torch.norm(torch.stack(grads))))
        return original_step(*args, **kwargs)

    trainer.optimizer.step = spy_step  # type: ignore[method-assign]
    train, _ = load_dataset("synthetic", Path("unused"))
    loader = BatchLoader(train, spec, 64, LoaderOptions(train=True, device=torch.device("cpu")))
    trainer.begin_epoch(1)
    for step, batch in enumerate(loader, start=1):
        trainer.step(batch, step, len(loader))
    assert len(norms) == 4 and max(norms) <= 0.01 * (1 + 1e-4)


def test_the_strong_augmentation_is_seeded_by_the_loader_and_leaves_the_global_rng_alone() -> None:
    from dskd_core.data import strong_augment

    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    before = torch.get_rng_state()
    a = strong_augment(images, torch.Generator().manual_seed(3))
    b = strong_augment(images, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, b) and a.shape == images.shape and a.dtype == torch.uint8
    assert not torch.equal(a, images)


def test_aug_run_trains(teacher_run: Path, tmp_path: Path) -> None:
    result = fit(_kd(teacher_run, epochs=1, aug=True), _settings(tmp_path))
    assert result.summary["status"] == "finished"
