"""Fetching published teachers: download, verify, convert to ``<teachers-dir>/<dataset>/<model>.safetensors``.

* An ``archive`` source (CIFAR-100: mdistiller's ``cifar_teachers.tar`` of RepDistiller
  ``.pth`` files) is downloaded once with :func:`dskd_core.download.cached_download` (or read
  from a local copy), opened as a :class:`~dskd_core.teachers.archive.SafeArchive`, and each
  expected member unpickled weights-only by :func:`dskd_core.checkpoint.read_legacy_checkpoint`.
* A ``torchvision`` source (ImageNet) comes through torchvision's weights API, its hash check on.

The weights must load strictly into the teacher's model before anything is written, and the
teacher is written atomically as a dskd student-format checkpoint, with the digest of its
tensors, so ``dskd train``/``dskd eval`` read it and a re-run can confirm it is still sound.
Nothing here prints: progress, retries and warnings go to an optional observer.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import torch
from torch import Tensor, nn

from dskd_core.checkpoint import (
    STUDENT_FORMAT,
    load_strict,
    load_tensors,
    read_legacy_checkpoint,
    save_student,
    unpickling_reason,
)
from dskd_core.download import (
    ArchiveRefused,
    DownloadError,
    DownloadPolicy,
    Observer,
    cached_download,
    discard,
    quiet,
    sha256_file,
    short_reason,
)
from dskd_core.errors import CheckpointError, UsageError
from dskd_core.models import create_model
from dskd_core.teachers.archive import SafeArchive, open_archive
from dskd_core.teachers.manifest import Manifest, TeacherSet, published_teachers

DOWNLOADS_DIR = ".downloads"
#: The fix for a legacy member dskd refuses to read.
_NOT_PUBLISHED = "it is not a published teacher; use the published archive (--url/--archive)"


@dataclass
class TeacherResult:
    """What ``fetch_teachers`` did for one teacher: ``converted``, ``present`` (verified) or ``missing``."""

    model: str
    path: Path
    status: Literal["converted", "present", "missing"]
    published_top1: float
    epoch: int | None = None
    reported_top1: float | None = None
    warnings: list[str] = field(default_factory=list)


def _warn(notify: Observer, warnings: list[str], message: str) -> None:
    warnings.append(message)
    notify({"event": "warning", "message": message})


# ---------------------------------------------------------------------------------------------
# Converted teacher files


def tensors_sha256(tensors: Mapping[str, Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of every tensor, in name order.

    Stored in a converted teacher's metadata, so a re-run can confirm the file still holds
    exactly the weights it was written with.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _build(teacher_set: TeacherSet, name: str) -> nn.Module:
    """The model a teacher's weights must fit: dskd's zoo model, or the torchvision builder."""
    if teacher_set.source == "torchvision":
        import torchvision  # only ImageNet teachers need it

        builder = teacher_set.teachers[name].builder
        model: nn.Module = getattr(torchvision.models, str(builder))(num_classes=teacher_set.num_classes)
        return model
    return create_model(name, num_classes=teacher_set.num_classes)


def _load_published(model: nn.Module, state: Mapping[str, Tensor], *, arch: str, where: str) -> None:
    """Strict load of published weights; what does not fit is not the published ``arch``."""
    load_strict(model, state, arch=arch, where=where, fix=f"it is not the published {arch}; use the published archive")


def verify_teacher_file(path: Path, name: str, teacher_set: TeacherSet) -> str | None:
    """Why a converted teacher file cannot be trusted as is, or None when it is sound.

    Sound: a readable dskd checkpoint of this arch and class count whose tensors still hash to
    the digest written with them and load strictly into the model.
    """
    try:
        tensors, meta = load_tensors(path)
    except CheckpointError as err:
        return str(err)
    if meta.get("format") != STUDENT_FORMAT or meta.get("arch") != name:
        return f"it is not a dskd {name} checkpoint"
    if meta.get("num_classes") != str(teacher_set.num_classes):
        return f"it has {meta.get('num_classes')} classes, not {teacher_set.num_classes}"
    recorded = json.loads(meta.get("tensors_sha256", "null"))
    if recorded != tensors_sha256(tensors):
        return "its tensors no longer match the digest written with them"
    try:
        _load_published(_build(teacher_set, name), tensors, arch=name, where=str(path))
    except CheckpointError as err:
        return str(err)
    return None


def _save_teacher(path: Path, model: nn.Module, name: str, num_classes: int, extra: dict[str, Any]) -> None:
    """Write the teacher as a dskd checkpoint (the student format, so ``train``/``eval`` read it), atomically."""
    extra = {**extra, "tensors_sha256": tensors_sha256(model.state_dict())}
    save_student(path, model, arch=name, num_classes=num_classes, extra=extra)


# ---------------------------------------------------------------------------------------------
# Fetching


def fetch_teachers(
    dataset: str,
    teachers_dir: Path,
    *,
    models: Sequence[str] | None = None,
    url: str | None = None,
    archive: Path | None = None,
    force: bool = False,
    manifest: Manifest | None = None,
    policy: DownloadPolicy | None = None,
    progress: bool = False,
    notify: Observer = quiet,
) -> list[TeacherResult]:
    """Download, verify and convert ``dataset``'s published teachers to ``<teachers_dir>/<dataset>/``.

    Teachers already converted and still sound are kept (``force`` redoes them, download
    included). ``models`` picks teachers (default: all; then members an archive lacks are
    reported as ``missing``, while a named one that is absent is an error). ``url`` is a
    mirror and ``archive`` a local copy of an archive source; ``progress`` lets torchvision
    draw its own download bar.
    """
    teacher_set = published_teachers(dataset, manifest)
    if teacher_set.source == "torchvision" and (url or archive):
        raise UsageError(
            f"--url/--archive apply to archive sources; {dataset} teachers come from torchvision (offline: put "
            f"torchvision's files in {teachers_dir / dataset / DOWNLOADS_DIR}/)"
        )
    if url and archive:
        raise UsageError("--url and --archive both name the archive: pass one of them")
    names = teacher_set.select(models)
    out_dir = teachers_dir / dataset
    results: dict[str, TeacherResult] = {}
    todo: list[str] = []
    for name in names:
        path = out_dir / f"{name}.safetensors"
        problem = None if force or not path.exists() else verify_teacher_file(path, name, teacher_set)
        if path.exists() and not force and problem is None:
            results[name] = TeacherResult(name, path, "present", teacher_set.teachers[name].top1)
            continue
        if problem is not None:
            notify({"event": "warning", "message": f"{path} fails verification ({problem}): converting it again"})
        todo.append(name)
    if todo and teacher_set.source == "archive":
        job = _ArchiveJob(dataset, teacher_set, out_dir, notify, explicit=models is not None)
        results.update(job.run(todo, url=url, archive=archive, force=force, policy=policy))
    elif todo:
        results.update(_fetch_torchvision(teacher_set, todo, out_dir, force=force, progress=progress, notify=notify))
    return [results[name] for name in names]


@dataclass
class _ArchiveJob:
    """Converting teachers out of one archive (a download cached under ``.downloads/``, or a local file)."""

    dataset: str
    teacher_set: TeacherSet
    out_dir: Path
    notify: Observer
    explicit: bool

    def run(
        self, names: list[str], *, url: str | None, archive: Path | None, force: bool, policy: DownloadPolicy | None
    ) -> dict[str, TeacherResult]:
        if archive is not None:
            if not archive.is_file():
                raise UsageError(f"archive {archive} not found: check --archive")
            path, source, digest = archive, str(archive), sha256_file(archive)
        else:
            source = url or str(self.teacher_set.url)
            path = self.out_dir / DOWNLOADS_DIR / str(self.teacher_set.filename)
            digest = cached_download(source, path, force=force, policy=policy, notify=self.notify)
        try:
            with open_archive(path) as tar:
                known = [str(entry.member) for entry in self.teacher_set.teachers.values()]
                if not any(tar.find(member, self.teacher_set.prefixes) for member in known):
                    raise ArchiveRefused(
                        f"{path.name} holds none of the {self.dataset} teachers: it is not the published archive; "
                        "check --url/--archive"
                    )
                results = {name: self._convert(tar, name, source, digest) for name in names}
        except ArchiveRefused:
            if archive is None:  # never keep content we refused; never delete the user's own file
                discard(path)
            raise
        return results

    def _convert(self, tar: SafeArchive, name: str, source: str, archive_sha256: str) -> TeacherResult:
        entry = self.teacher_set.teachers[name]
        out = self.out_dir / f"{name}.safetensors"
        member = tar.find(str(entry.member), self.teacher_set.prefixes)
        if member is None:
            where = f"{tar.path.name} has no member {self.teacher_set.prefixes[0]}{entry.member}"
            if self.explicit:
                raise CheckpointError(
                    f"{where}: use the published archive (--url/--archive) or drop {name} from --models"
                )
            result = TeacherResult(name, out, "missing", entry.top1)
            _warn(self.notify, result.warnings, f"{where}: {name} skipped")
            return result
        data = tar.read(member)
        member_sha256 = hashlib.sha256(data).hexdigest()
        result = TeacherResult(name, out, "converted", entry.top1)
        if entry.advisory_sha256 and entry.advisory_sha256 != member_sha256:
            _warn(
                self.notify,
                result.warnings,
                f"{member} has SHA-256 {member_sha256[:16]}…, not the {entry.advisory_sha256[:16]}… a third party "
                "published (advisory, unconfirmed by dskd: converted anyway; `dskd fetch-teachers --check` "
                "measures it)",
            )
        where = f"{tar.path.name}:{member}"
        try:
            legacy = read_legacy_checkpoint(data, where, fix=_NOT_PUBLISHED)
        except CheckpointError as err:  # refused content: the caller deletes the download
            raise ArchiveRefused(str(err)) from None
        model = _build(self.teacher_set, name)
        _load_published(model, legacy.state, arch=name, where=where)
        result.epoch, result.reported_top1 = legacy.epoch, legacy.accuracy
        extra = {
            "dataset": self.dataset,
            "source": source,
            "archive_sha256": archive_sha256,
            "member": member,
            "member_sha256": member_sha256,
            "epoch": legacy.epoch,
            "reported_top1": legacy.accuracy,
            "published_top1": entry.top1,
        }
        _save_teacher(out, model, name, self.teacher_set.num_classes, extra)
        return result


# ---------------------------------------------------------------------------------------------
# torchvision weights


def _torchvision_weights(name: str) -> Any:
    """torchvision's weights enum member, e.g. ``ResNet34_Weights.IMAGENET1K_V1`` (tests substitute one)."""
    from torchvision.models import get_weight  # only ImageNet teachers need torchvision

    return get_weight(name)


def _fetch_torchvision(
    teacher_set: TeacherSet, names: list[str], out_dir: Path, *, force: bool, progress: bool, notify: Observer
) -> dict[str, TeacherResult]:
    results: dict[str, TeacherResult] = {}
    for name in names:
        entry = teacher_set.teachers[name]
        weights = _torchvision_weights(str(entry.weights))
        state, cached = _torchvision_state_dict(weights, out_dir / DOWNLOADS_DIR, force=force, progress=progress)
        model = _build(teacher_set, name)
        _load_published(model, state, arch=f"torchvision {entry.builder}", where=cached.name)
        extra = {
            "dataset": out_dir.name,
            "source": weights.url,
            "weights": entry.weights,
            "keys": f"torchvision.models.{entry.builder}",
            "file_sha256": sha256_file(cached),
            "published_top1": entry.top1,
        }
        out = out_dir / f"{name}.safetensors"
        _save_teacher(out, model, name, teacher_set.num_classes, extra)
        results[name] = TeacherResult(name, out, "converted", entry.top1)
    return results


def _torchvision_state_dict(
    weights: Any, folder: Path, *, force: bool, progress: bool
) -> tuple[dict[str, Tensor], Path]:
    """Weights through torchvision's API (hash check on), re-verified by dskd when already on disk.

    torch checks the SHA-256 prefix in the file name only when it downloads; a copy found in
    ``folder`` (a previous download, or one put there for an offline install) is checked here.
    """
    file_name = PurePosixPath(str(weights.url).split("?")[0]).name
    cached = folder / file_name
    if force:
        cached.unlink(missing_ok=True)
    prefix = re.search(r"-([a-f0-9]+)\.", file_name)
    if cached.exists() and prefix and not sha256_file(cached).startswith(prefix.group(1)):
        cached.unlink()
        raise ArchiveRefused(f"{cached} does not match the hash in its name: deleted; re-run to download it again")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        state = weights.get_state_dict(model_dir=str(folder), progress=progress, check_hash=True, weights_only=True)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a hash mismatch a RuntimeError
        if isinstance(err, RuntimeError) and "hash" not in str(err):
            discard(cached)
            raise ArchiveRefused(
                f"{file_name} cannot be read safely ({unpickling_reason(err)}): deleted; re-run"
            ) from None
        raise DownloadError(
            f"cannot get {file_name} from {weights.url} ({short_reason(err)}): connect to the internet and re-run, "
            f"or put that file in {folder}/"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:  # an unreadable or unsafe pickle
        discard(cached)
        raise ArchiveRefused(f"{file_name} cannot be read safely ({unpickling_reason(err)}): deleted; re-run") from None
    return dict(state), cached
