"""Building the pieces of a run: models from checkpoints, the teacher's location."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dskd_core.checkpoint import load_weights_into, read_model_weights
from dskd_core.config import RunConfig
from dskd_core.errors import CheckpointError
from dskd_core.models import ZooModel, create_model
from dskd_core.runs.layout import STUDENT_LAST
from dskd_core.teachers import ensure_strong_teacher, fetchable


def checkpoint_in(path: Path, name: str = STUDENT_LAST) -> Path:
    """A checkpoint file as given, or ``checkpoints/<name>`` inside a run directory."""
    if path.is_dir():
        candidate = path / "checkpoints" / name
        if not candidate.is_file():
            raise CheckpointError(
                f"{path} is a folder without checkpoints/{name}: pass a dskd run directory or a checkpoint file"
            )
        return candidate
    return path


def load_model(arch: str, path: Path, num_classes: int, device: torch.device, *, zoo: str = "cifar") -> ZooModel:
    """Build ``arch`` of ``zoo`` and load a dskd safetensors or legacy ``.pth`` checkpoint into it, strictly."""
    model = create_model(arch, num_classes=num_classes, zoo=zoo)
    state, meta = read_model_weights(path)
    saved_arch = meta.get("arch")
    if saved_arch and saved_arch != arch:
        raise CheckpointError(f"{path} holds a {saved_arch}, not a {arch}: pass -m {saved_arch}")
    saved_classes = meta.get("num_classes")
    if saved_classes and int(saved_classes) != num_classes:
        raise CheckpointError(
            f"{path} has {saved_classes} classes but the dataset has {num_classes}: use a checkpoint "
            "trained on this dataset"
        )
    load_weights_into(model, state, arch=arch, source=path)
    return model.to(device)


def teacher_checkpoint(cfg: RunConfig, teachers_dir: Path, *, allow_weak: bool = False) -> Path:
    """``--teacher-ckpt`` (a file or a run directory), else ``<teachers-dir>/<dataset>/<teacher>.safetensors``.

    A teacher that ``dskd fetch-teachers --check`` measured more than 1 point below its published
    top-1 is refused unless ``allow_weak``.
    """
    assert cfg.teacher is not None
    if cfg.teacher_ckpt:
        given = Path(cfg.teacher_ckpt)
        if not given.exists():
            raise CheckpointError(f"teacher checkpoint {given} not found: check --teacher-ckpt")
        if given.is_dir() and (given / "config.json").is_file():
            run = json.loads((given / "config.json").read_text())
            if run.get("student") != cfg.teacher or run.get("dataset") != cfg.dataset:
                raise CheckpointError(
                    f"{given} trained {run.get('student')} on {run.get('dataset')}, not {cfg.teacher} on "
                    f"{cfg.dataset}: pass that run's model as TEACHER or another --teacher-ckpt"
                )
        return ensure_strong_teacher(checkpoint_in(given), allow_weak=allow_weak)
    path = teachers_dir / cfg.dataset / f"{cfg.teacher}.safetensors"
    if not path.is_file():
        own = f"`dskd train vanilla {cfg.teacher} --dataset {cfg.dataset}` and pass its run folder as --teacher-ckpt"
        if fetchable(cfg.dataset, cfg.teacher):
            fetch = f"`dskd fetch-teachers --dataset {cfg.dataset} --models {cfg.teacher}`"
            fix = f"run {fetch}, or train your own with {own}"
        else:
            fix = f"train one with {own}, or put the file there"
        raise CheckpointError(f"teacher checkpoint {path} not found: {fix}")
    return ensure_strong_teacher(path, allow_weak=allow_weak)
