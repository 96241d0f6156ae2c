"""Finding the teacher checkpoint of a run: ``--teacher-ckpt``, else the fetched teacher; a weak one is refused.

The gate reads ``<teachers-dir>/<dataset>/checks.json``, which ``dskd fetch-teachers --check``
(:mod:`dskd_core.teachers.checks`) writes: a teacher measured more than :data:`WEAK_GAP` points
below its published top-1 is refused for as long as the record names its digest (a re-converted
file is judged afresh).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dskd_core.checkpoint import checkpoint_in
from dskd_core.config import RunConfig
from dskd_core.download import sha256_file
from dskd_core.errors import CheckpointError
from dskd_core.runs.layout import CONFIG_FILE
from dskd_core.runs.store import UnreadableRun, read_json
from dskd_core.teachers.manifest import load_manifest

CHECKS_FILE = "checks.json"
#: A teacher measured more than this many points below its published top-1 is "weak".
WEAK_GAP = 1.0


def read_checks(path: Path) -> dict[str, Any]:
    """The records of ``checks.json`` by teacher name; empty when the file is absent or unreadable."""
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def ensure_strong_teacher(path: Path, *, allow_weak: bool = False) -> Path:
    """Refuse a teacher file whose recorded check measured it more than 1 point below its published top-1.

    The record is ``checks.json`` next to the file (written by ``dskd fetch-teachers --check``)
    and counts only while it names this file's digest. Returns ``path``.
    """
    entry = read_checks(Path(path).parent / CHECKS_FILE).get(Path(path).stem)
    if allow_weak or not isinstance(entry, dict):
        return path
    try:
        published, measured = float(entry["published_top1"]), float(entry["measured_top1"])
    except (KeyError, TypeError, ValueError):
        return path
    if published - measured <= WEAK_GAP or entry.get("file_sha256") != sha256_file(path):
        return path
    raise CheckpointError(
        f"teacher {path} measured {measured:.2f} top-1, {published - measured:.2f} points below the published "
        f"{published:.2f} (dskd fetch-teachers --check): re-fetch it with `dskd fetch-teachers --force --check`, or "
        "pass --allow-weak-teacher"
    )


def fetchable(dataset: str, model: str) -> bool:
    """Whether ``dskd fetch-teachers`` publishes ``model`` for ``dataset`` (for error messages)."""
    teacher_set = load_manifest().datasets.get(dataset)
    return teacher_set is not None and model in teacher_set.teachers


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
        if given.is_dir() and (given / CONFIG_FILE).is_file():
            try:
                run = read_json(given / CONFIG_FILE, strict=True)
            except UnreadableRun as err:
                raise CheckpointError(f"{given}: {err}: pass another --teacher-ckpt (a run folder or a file)") from None
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
