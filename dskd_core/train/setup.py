"""What every way of training or evaluating a run sets up the same way: its data, its teacher
and its distiller. ``fit``, lockstep training, the multi-process launcher's preflight
and checkpoint evaluation call these, so each is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dskd_core.checkpoint import check_metadata, check_readable, load_model, read_metadata
from dskd_core.config import RunConfig, Settings
from dskd_core.data import DatasetSpec, Split, fitted_spec, get_dataset_spec, load_dataset
from dskd_core.methods import Distiller, get_method
from dskd_core.models import ZooModel, create_model
from dskd_core.resolve import check_run_config
from dskd_core.teachers.locate import teacher_checkpoint


@dataclass(frozen=True)
class RunData:
    """A run's dataset: its spec fitted to the data found (class count) and both splits."""

    spec: DatasetSpec
    train: Split
    test: Split


def open_dataset(dataset: str, settings: Settings, num_classes: int | None = None) -> RunData:
    """``dataset`` from ``settings.data_dir`` (downloaded where allowed), its spec fitted to the data found
    (``num_classes``: the count the run expects, None = the data's)."""
    train, test = load_dataset(dataset, settings.data_dir, settings.download)
    return RunData(fitted_spec(get_dataset_spec(dataset), train, num_classes), train, test)


def load_teacher(
    cfg: RunConfig, settings: Settings, num_classes: int, device: torch.device, *, allow_weak: bool = False
) -> ZooModel | None:
    """The run's teacher from its checkpoint (strict keys), None for a run without one."""
    if not cfg.teacher:
        return None
    path = teacher_checkpoint(cfg, settings.teachers_dir, allow_weak=allow_weak)
    return load_model(
        cfg.teacher,
        path,
        num_classes,
        device,
        zoo=get_dataset_spec(cfg.dataset).zoo,
        arch_fix=TEACHER_FIX,
        fix=f"pass a {cfg.teacher} checkpoint with --teacher-ckpt",
    )


#: What a teacher checkpoint of another architecture should do instead (``train`` has no ``-m``).
TEACHER_FIX = "name {saved} as the teacher, or pass a {arch} checkpoint with --teacher-ckpt"


def check_teacher(cfg: RunConfig, settings: Settings, *, allow_weak: bool = False) -> Path | None:
    """What :func:`load_teacher` would refuse, from the checkpoint's header alone (``train --dry-run``): the
    file (missing, weak), and the architecture and class count it records. The file, None without a teacher."""
    if not cfg.teacher:
        return None
    path = teacher_checkpoint(cfg, settings.teachers_dir, allow_weak=allow_weak)
    spec = get_dataset_spec(cfg.dataset)
    classes = cfg.num_classes if cfg.num_classes is not None or spec.resizable else spec.num_classes
    check_readable(path)
    # an ImageFolder's count is its folders'
    check_metadata(path, read_metadata(path), cfg.teacher, classes, arch_fix=TEACHER_FIX)
    return path


def build_distiller(
    cfg: RunConfig,
    settings: Settings,
    num_classes: int,
    device: torch.device,
    *,
    allow_weak_teacher: bool = False,
    teacher: ZooModel | None = None,
) -> Distiller:
    """The student seeded by ``cfg.seed``, the teacher from its checkpoint (or the one given), the method.

    ``cfg`` is checked against the registries first (a config built by hand, not resolved, is refused here).
    """
    check_run_config(cfg)
    torch.manual_seed(cfg.seed)
    zoo = get_dataset_spec(cfg.dataset).zoo
    student = create_model(cfg.student, num_classes=num_classes, zoo=zoo).to(device)
    if cfg.teacher and teacher is None:
        teacher = load_teacher(cfg, settings, num_classes, device, allow_weak=allow_weak_teacher)
    return get_method(cfg.method)(student, teacher if cfg.teacher else None, cfg).to(device)
