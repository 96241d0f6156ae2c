"""Checkpoint I/O: atomic safetensors, legacy .pth read weights-only, strict architecture checks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dskd_core.checkpoint import atomic_write_text, load_model, load_tensors, read_model_weights, save_student
from dskd_core.errors import CheckpointError
from dskd_core.models import create_model

CPU = torch.device("cpu")


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "summary.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_student_checkpoint_roundtrip_is_strict_and_carries_metadata(tmp_path: Path) -> None:
    model = create_model("resnet8", num_classes=10)
    path = tmp_path / "s.safetensors"
    save_student(path, model, arch="resnet8", num_classes=10, extra={"epoch": 3})
    tensors, meta = load_tensors(path)
    assert set(tensors) == set(model.state_dict())
    assert meta["arch"] == "resnet8" and meta["epoch"] == "3"
    loaded = load_model("resnet8", path, 10, CPU)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_wrong_architecture_and_class_count_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    save_student(path, create_model("resnet8", 10), arch="resnet8", num_classes=10, extra={})
    with pytest.raises(CheckpointError, match="holds a resnet8"):
        load_model("resnet20", path, 10, CPU)
    with pytest.raises(CheckpointError, match="classes"):
        load_model("resnet8", path, 100, CPU)


def test_legacy_pth_with_the_published_extras_loads_weights_only(tmp_path: Path) -> None:
    model = create_model("resnet8", 100)
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save(
        {
            "model": model.state_dict(),
            "epoch": 240,
            "accuracy": np.float64(72.5),
            "opt": argparse.Namespace(lr=0.05),
        },
        path,
    )
    loaded = load_model("resnet8", path, 100, CPU)
    assert torch.equal(loaded.state_dict()["fc.weight"], model.state_dict()["fc.weight"])


def test_legacy_distiller_save_with_module_prefix_is_unwrapped(tmp_path: Path) -> None:
    model = create_model("resnet8", 100)
    state = {f"module.student.{k}": v for k, v in model.state_dict().items()}
    state.update({f"module.teacher.{k}": v for k, v in model.state_dict().items()})
    path = tmp_path / "latest"
    torch.save({"model": state, "epoch": 1}, path)
    weights, _ = read_model_weights(path)
    assert set(weights) == set(model.state_dict())


class _Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch pwned",))


def test_pickle_that_would_run_code_is_refused_and_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"model": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        read_model_weights(path)
    assert not (tmp_path / "pwned").exists()


def test_not_a_safetensors_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CheckpointError, match="not a readable safetensors") as err:
        load_tensors(path)
    assert "\n" not in str(err.value)
