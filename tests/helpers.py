"""Helpers shared by test modules (imported as ``tests.helpers``; fixtures stay in conftest.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dskd_core.checkpoint import save_student
from dskd_core.config import RunConfig, Settings
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config

ROOT = Path(__file__).resolve().parents[1]
#: ``python -m dskd_cli`` for tests that need a real process (kills, locks, interrupted sweeps).
DSKD = [sys.executable, "-m", "dskd_cli"]


def make_settings(root: Path) -> Settings:
    """Settings with every folder under ``root``, CPU, no downloads, no progress bar."""
    return Settings(
        runs_dir=root / "runs",
        data_dir=root / "data",
        teachers_dir=root / "teachers",
        device="cpu",
        download=False,
        progress=False,
    )


def subprocess_env() -> dict[str, str]:
    """The environment of a ``dskd`` subprocess: CPU, no progress bar, one OpenMP thread.

    Test processes share two cores; OpenMP threads of two processes spinning against each other
    slow both several-fold, one thread each does not.
    """
    return {**os.environ, "DSKD_PROGRESS": "0", "DSKD_DEVICE": "cpu", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def kd_config(teacher_run: Path, **flags: object) -> RunConfig:
    """KD of a resnet8 by the session's synthetic resnet8 teacher run, with ``flags`` as CLI flags."""
    return resolve_run_config(
        method="kd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"teacher_ckpt": str(teacher_run), **flags},
    )


def write_imagefolder(root: Path, train: dict[str, int], val: dict[str, int], *, size: int = 64, seed: int = 0) -> Path:
    """``root/imagenet/{train,val}/<class>/<i>.JPEG``: random RGB JPEGs, ``{class: count}`` per split."""
    rng = np.random.default_rng(seed)
    from PIL import Image

    for split, classes in (("train", train), ("val", val)):
        for name, count in classes.items():
            folder = root / "imagenet" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}_{i}.JPEG", quality=95)
    return root


def save_random_teacher(path: Path, arch: str, num_classes: int, seed: int = 0) -> Path:
    """A randomly initialised ImageNet-zoo model saved as a dskd checkpoint (a weak but valid teacher)."""
    torch.manual_seed(seed)
    save_student(path, create_model(arch, num_classes, zoo="imagenet"), arch=arch, num_classes=num_classes, extra={})
    return path


def stderr_of(result: Any) -> str:
    """A CliRunner result's stderr (Click < 8.2 mixes stderr into output)."""
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


def vanilla_config(epochs: int = 2, **flags: object) -> RunConfig:
    """A deterministic resnet8 from scratch on the synthetic set, with ``flags`` as CLI flags."""
    return resolve_run_config(
        method="vanilla",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": epochs, "deterministic": True, **flags},
    )


def teacher_header(path: Path, arch: str, num_classes: int) -> Path:
    """A checkpoint file holding only the header a teacher check reads (architecture, class count), no weights;
    ``path`` a folder: a run folder's two students so."""
    from dskd_core.checkpoint import STUDENT_FORMAT, save_tensors

    meta = {"format": STUDENT_FORMAT, "arch": arch, "num_classes": str(num_classes)}
    if path.suffix == ".safetensors":
        save_tensors(path, {}, meta)
        return path
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("student_best.safetensors", "student_last.safetensors"):
        save_tensors(path / "checkpoints" / name, {}, meta)
    return path
