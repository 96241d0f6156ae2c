"""Checking converted teachers: ``dskd fetch-teachers --check``.

``check_teachers`` evaluates each converted teacher on the dataset's test split and records
published vs measured top-1 in ``<teachers-dir>/<dataset>/checks.json``, with the digest of the
file it measured. The weak-teacher gate of ``dskd train`` that reads the record is
:func:`dskd_core.teachers.locate.ensure_strong_teacher`: it sits below this module, since
``dskd train`` finds its teacher without importing the evaluation this module needs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dskd_core.checkpoint import atomic_write_text
from dskd_core.config import Settings
from dskd_core.data import get_dataset_spec, list_datasets, load_dataset
from dskd_core.download import sha256_file
from dskd_core.errors import DatasetNotFound, UsageError
from dskd_core.evaluation import evaluate_checkpoint
from dskd_core.teachers.locate import CHECKS_FILE, WEAK_GAP, read_checks
from dskd_core.teachers.manifest import Manifest, published_teachers


@dataclass(frozen=True)
class CheckResult:
    """Published vs measured top-1 of one teacher on the dataset's test split."""

    model: str
    path: Path
    published_top1: float
    measured_top1: float
    samples: int

    @property
    def gap(self) -> float:
        return self.published_top1 - self.measured_top1

    @property
    def weak(self) -> bool:
        return self.gap > WEAK_GAP


def ensure_checkable(dataset: str, data_dir: Path | None = None) -> None:
    """``--check`` evaluates on the dataset's test split: refuse early when dskd cannot load it.

    With ``data_dir``, a dataset that is never downloaded (ImageNet's ImageFolder) must be there.
    """
    if dataset not in list_datasets():
        raise UsageError(f"--check needs the {dataset} test split, which dskd cannot load yet: drop --check")
    if data_dir is not None and not get_dataset_spec(dataset).downloadable:
        try:
            load_dataset(dataset, data_dir, download=False)
        except DatasetNotFound as err:
            raise UsageError(f"--check needs the {dataset} test split ({err}); or drop --check") from None


def check_teachers(
    dataset: str, settings: Settings, *, models: Sequence[str] | None = None, manifest: Manifest | None = None
) -> list[CheckResult]:
    """Evaluate each converted teacher on the test split and record the result in ``checks.json``.

    ``settings`` says where teachers and data are and which device evaluates. The record lets
    ``dskd train`` refuse a teacher measured more than 1 point below its published top-1; it
    names the file's digest, so a re-converted file is judged afresh.
    """
    ensure_checkable(dataset)
    teacher_set = published_teachers(dataset, manifest)
    out_dir = settings.teachers_dir / dataset
    results = []
    for name in teacher_set.select(models):
        path = out_dir / f"{name}.safetensors"
        if path.is_file():
            measured = evaluate_checkpoint(name, path, dataset, settings)
            results.append(
                CheckResult(name, path, teacher_set.teachers[name].top1, measured["top1"], measured["samples"])
            )
    _record_checks(out_dir / CHECKS_FILE, results)
    return results


def _record_checks(path: Path, results: Sequence[CheckResult]) -> None:
    records = read_checks(path)
    for r in results:
        records[r.model] = {
            "published_top1": r.published_top1,
            "measured_top1": r.measured_top1,
            "gap": round(r.gap, 4),
            "weak": r.weak,
            "samples": r.samples,
            "file_sha256": sha256_file(r.path),
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    if results:
        atomic_write_text(path, json.dumps(records, indent=2, sort_keys=True) + "\n")
