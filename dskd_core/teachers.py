"""Published teachers: manifest, download, verification, safe extraction, conversion, check.

``dskd fetch-teachers`` turns the teachers the field publishes into dskd checkpoints,
``<teachers-dir>/<dataset>/<model>.safetensors``, that ``dskd train`` and ``dskd eval`` read:

* CIFAR-100: mdistiller's ``cifar_teachers.tar`` (legacy RepDistiller ``.pth`` files). The
  archive is streamed with resume, bounded retries and a size check; its SHA-256 is computed
  while streaming, recorded next to it, and verified on every later use.
* ImageNet: torchvision's published weights through torchvision's weights API (its hash check on).

Safe by construction: an archive is refused when any member has an absolute path, a ``..``
component, or is a link, device or fifo; only the expected members are read (into memory,
never extracted); each is unpickled with ``torch.load(weights_only=True)`` and the smallest
allow-list of the non-tensor objects these files carry, never a full unpickler; the weights
must load strictly into dskd's model before anything is written, and every write is atomic.
Nothing here prints: progress, retries and warnings go to an optional observer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import requests
import torch
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from torch import Tensor, nn

from dskd_core._compat import tomllib
from dskd_core.checkpoint import STUDENT_FORMAT, _legacy_safe_globals, atomic_write_text, load_tensors, save_student
from dskd_core.config import Settings
from dskd_core.errors import CheckpointError, DskdError, UnknownNameError, UsageError

#: Events for a progress display: ``{"event": "download" | "retry" | "warning", ...}``.
Observer = Callable[[dict[str, Any]], None]

CHECKS_FILE = "checks.json"
DOWNLOADS_DIR = ".downloads"
#: A teacher measured more than this many points below its published top-1 is "weak".
WEAK_GAP = 1.0
#: No legitimate teacher checkpoint comes near this; a bigger member is refused unread.
MAX_MEMBER_BYTES = 2 << 30


class DownloadError(DskdError):
    """A download failed (network, HTTP status, size): re-run to resume, or use a mirror or local copy."""

    exit_code = 6


class ArchiveRefused(CheckpointError):
    """Downloaded content is unsafe or not what was published: refused, and a downloaded copy deleted."""


# ---------------------------------------------------------------------------------------------
# Manifest


class TeacherEntry(BaseModel):
    """One published teacher: where its weights are and the top-1 published for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top1: float
    top1_source: str = ""
    member: str | None = None  # archive sources: the member path after the prefix
    weights: str | None = None  # torchvision sources: a ``torchvision.models.get_weight`` name
    builder: str | None = None  # torchvision sources: the ``torchvision.models`` builder
    advisory_sha256: str | None = None  # published by someone else, unconfirmed: warn on mismatch


class TeacherSet(BaseModel):
    """The published teachers of one dataset and where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["archive", "torchvision"]
    num_classes: int
    url: str | None = None
    filename: str | None = None
    prefixes: list[str] = [""]
    teachers: dict[str, TeacherEntry]

    @model_validator(mode="after")
    def _complete(self) -> TeacherSet:
        if self.source == "archive":
            if not self.url or not self.filename or "/" in self.filename:
                raise ValueError("an archive source needs url and a plain filename")
            if any(entry.member is None for entry in self.teachers.values()):
                raise ValueError("every teacher of an archive source needs a member")
        elif any(entry.weights is None or entry.builder is None for entry in self.teachers.values()):
            raise ValueError("every teacher of a torchvision source needs weights and builder")
        return self


class Manifest(BaseModel):
    """Published teachers per dataset (``teachers_manifest.toml``); tests pass their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: dict[str, TeacherSet]

    def teacher_set(self, dataset: str) -> TeacherSet:
        if dataset not in self.datasets:
            raise UnknownNameError("teacher dataset", dataset, self.datasets)
        return self.datasets[dataset]


def load_manifest(path: Path | None = None) -> Manifest:
    """The shipped manifest, or the TOML file at ``path`` (same layout: one table per dataset)."""
    try:
        if path is None:
            raw = resources.files("dskd_core").joinpath("teachers_manifest.toml").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        return Manifest(datasets=tomllib.loads(raw))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        detail = " ".join(str(err).split())[:200]
        raise UsageError(f"teacher manifest {path or 'teachers_manifest.toml'} is invalid ({detail}): fix it") from None


def fetchable(dataset: str, model: str) -> bool:
    """Whether ``dskd fetch-teachers`` publishes ``model`` for ``dataset`` (for error messages)."""
    teacher_set = load_manifest().datasets.get(dataset)
    return teacher_set is not None and model in teacher_set.teachers


def parse_models(text: str | None) -> list[str] | None:
    """``"resnet56,wrn_40_2"`` (commas or spaces) → names; ``None`` means every teacher."""
    if text is None:
        return None
    names = [n for n in re.split(r"[,\s]+", text.strip()) if n]
    if not names:
        raise UsageError("--models is empty: name teachers, e.g. --models resnet56,wrn_40_2")
    return list(dict.fromkeys(names))


def _select(teacher_set: TeacherSet, models: Sequence[str] | None) -> list[str]:
    for name in models or ():
        if name not in teacher_set.teachers:
            raise UnknownNameError("published teacher", name, teacher_set.teachers)
    return list(models) if models else list(teacher_set.teachers)


# ---------------------------------------------------------------------------------------------
# Results


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


def _quiet(event: dict[str, Any]) -> None:
    """The default observer: nothing to show."""


def _warn(notify: Observer, warnings: list[str], message: str) -> None:
    warnings.append(message)
    notify({"event": "warning", "message": message})


# ---------------------------------------------------------------------------------------------
# Digests


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_sidecar(path: Path) -> str | None:
    """The digest recorded in ``<file>.sha256`` (``sha256sum`` format), or None."""
    try:
        text = _sidecar(path).read_text().split()
    except OSError:
        return None
    return text[0] if text and re.fullmatch(r"[0-9a-f]{64}", text[0]) else None


# ---------------------------------------------------------------------------------------------
# Download


@dataclass(frozen=True)
class DownloadPolicy:
    """Timeouts (seconds), retries after the first attempt, and the back-off base (doubled per retry)."""

    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 4
    backoff: float = 1.0
    chunk_size: int = 1 << 20


DEFAULT_POLICY = DownloadPolicy()


class _Retry(Exception):
    """A transient failure: the attempt may be repeated (resuming from the partial file)."""


def download(url: str, dest: Path, *, policy: DownloadPolicy | None = None, notify: Observer = _quiet) -> str:
    """Stream ``url`` to ``dest`` and return its SHA-256, computed while streaming.

    The bytes go to ``<dest>.part``; an interrupted transfer is resumed with an HTTP Range
    request (a server that ignores it is read again from zero), retried with exponential
    back-off, and checked against the announced size before ``.part`` is renamed to ``dest``.
    """
    policy = policy or DEFAULT_POLICY
    if not re.match(r"https?://", url):
        raise UsageError(f"invalid URL '{url}': use an http:// or https:// address (or --archive for a local file)")
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with requests.Session() as session:
        for attempt in range(policy.retries + 1):
            try:
                digest = _download_once(session, url, part, policy, notify)
                break
            except _Retry as err:
                if attempt == policy.retries:
                    raise DownloadError(
                        f"downloading {url} failed after {attempt + 1} attempts ({err}): check the connection and "
                        f"re-run (the partial {part.name} is resumed), or pass --url for a mirror or --archive for a "
                        "local copy"
                    ) from None
                wait = policy.backoff * 2**attempt
                notify({"event": "retry", "message": f"{err}; retry {attempt + 1}/{policy.retries} in {wait:.3g}s"})
                time.sleep(wait)
    os.replace(part, dest)
    return digest


def _download_once(session: requests.Session, url: str, part: Path, policy: DownloadPolicy, notify: Observer) -> str:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity"}  # sizes and digests are of the bytes as published
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with session.get(url, headers=headers, stream=True, timeout=(policy.connect_timeout, policy.read_timeout)) as r:
            start, total = _response_span(r, url, have, part)
            if start == total:  # the partial file already holds everything
                return sha256_file(part)
            digest = hashlib.sha256()
            if start:
                digest = _hash_prefix(part, start)
            done = start
            with part.open("ab" if start else "wb") as handle:
                for chunk in r.iter_content(policy.chunk_size):
                    handle.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    notify({"event": "download", "file": part.name[: -len(".part")], "done": done, "total": total})
                handle.flush()
                os.fsync(handle.fileno())
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
        raise _Retry(_short(err)) from None
    except requests.RequestException as err:
        raise DownloadError(f"cannot download {url} ({_short(err)}): check --url") from None
    if total is not None and done != total:
        if done > total:
            part.unlink()
        raise _Retry(f"received {done} of {total} bytes")
    return digest.hexdigest()


def _response_span(r: requests.Response, url: str, have: int, part: Path) -> tuple[int, int | None]:
    """``(first byte the body starts at, total size or None)``; restarts or raises on what does not fit."""
    if r.status_code == 206 and have:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", r.headers.get("Content-Range", "").strip())
        if match and int(match.group(1)) == have:
            return have, int(match.group(2))
        part.unlink()
        raise _Retry("the server answered another byte range; restarting from zero")
    if r.status_code == 416 and have:
        match = re.fullmatch(r"bytes \*/(\d+)", r.headers.get("Content-Range", "").strip())
        if match and int(match.group(1)) == have:
            return have, have
        part.unlink()
        raise _Retry("the server refused to resume; restarting from zero")
    if r.status_code == 200:  # a fresh start, also when the server ignored our Range header
        length = r.headers.get("Content-Length")
        return 0, int(length) if length and length.isdigit() else None
    if r.status_code in (408, 429) or r.status_code >= 500:
        raise _Retry(f"HTTP {r.status_code}")
    raise DownloadError(
        f"{url} answered HTTP {r.status_code}: check the address, or pass --url for a mirror or --archive for a "
        "local copy"
    )


def _hash_prefix(path: Path, size: int) -> Any:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        remaining = size
        while remaining:
            chunk = handle.read(min(1 << 20, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def cached_download(
    url: str, dest: Path, *, force: bool = False, policy: DownloadPolicy | None = None, notify: Observer = _quiet
) -> str:
    """``dest`` downloaded once, its SHA-256 recorded in ``<dest>.sha256`` and verified on every later use.

    A copy without a record is not trusted (it is fetched again); a copy that no longer matches
    its record is refused (and deleted, so a re-run downloads it again). ``force`` drops the
    copy, its record and any partial file.
    """
    record = _sidecar(dest)
    if force:
        for stale in (dest, record, dest.with_name(dest.name + ".part")):
            stale.unlink(missing_ok=True)
    if dest.exists():
        recorded = _read_sidecar(dest)
        if recorded is not None:
            actual = sha256_file(dest)
            if actual != recorded:
                _discard(dest)
                raise ArchiveRefused(
                    f"{dest} no longer matches the SHA-256 recorded when it was downloaded ({recorded[:16]}…, now "
                    f"{actual[:16]}…): deleted; re-run to download it again"
                )
            return recorded
        dest.unlink()
    digest = download(url, dest, policy=policy, notify=notify)
    atomic_write_text(record, f"{digest}  {dest.name}\n")
    return digest


def _discard(path: Path) -> None:
    """Delete a downloaded copy and its record (after its content was refused)."""
    for stale in (path, _sidecar(path)):
        stale.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Safe archive reading


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be in a teachers archive, or None."""
    name = member.name
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "an absolute path"
    if ".." in PurePosixPath(name).parts or ".." in PureWindowsPath(name).parts:
        return "a '..' path component"
    if member.issym() or member.islnk():
        return "a link"
    if member.ischr() or member.isblk() or member.isfifo():
        return "a device or fifo"
    if not (member.isfile() or member.isdir()):
        return "an unsupported member type"
    return None


class SafeArchive:
    """A tar archive whose every member was checked; expected members are read into memory, never extracted."""

    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self.path = path
        self._tar = tar
        self._files: dict[str, tarfile.TarInfo] = {}
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise _unreadable(path, err) from None
        for member in members:
            reason = _unsafe(member)
            if reason is not None:
                raise ArchiveRefused(
                    f"{path.name} is refused: member '{member.name}' is {reason}; teachers archives hold only "
                    "plain files (use the published archive)"
                )
            if member.isfile():
                self._files[member.name.removeprefix("./")] = member

    def find(self, member: str, prefixes: Sequence[str]) -> str | None:
        """The first name ``prefix + member`` the archive holds."""
        return next((p + member for p in prefixes if p + member in self._files), None)

    def read(self, name: str) -> bytes:
        """A member's bytes, into memory (nothing is extracted to disk)."""
        member = self._files[name]
        if member.size > MAX_MEMBER_BYTES:
            raise ArchiveRefused(f"{self.path.name}: member '{name}' is {member.size} bytes, too big for a teacher")
        try:
            handle = self._tar.extractfile(member)
            data = handle.read(MAX_MEMBER_BYTES + 1) if handle is not None else b""
        except (tarfile.TarError, EOFError, OSError) as err:
            raise _unreadable(self.path, err) from None
        if len(data) != member.size:
            raise ArchiveRefused(
                f"{self.path.name}: member '{name}' is truncated: download the archive again (--force)"
            )
        return data


def _unreadable(path: Path, err: BaseException) -> ArchiveRefused:
    return ArchiveRefused(
        f"{path.name} is not a readable tar archive ({_short(err)}): download it again (--force) or check "
        "--url/--archive"
    )


@contextmanager
def open_archive(path: Path) -> Iterator[SafeArchive]:
    """Open a (possibly compressed) tar archive; refuse it when it is unreadable or any member is unsafe."""
    try:
        tar = tarfile.open(path, mode="r:*")
    except FileNotFoundError:
        raise UsageError(f"archive {path} not found: check --archive") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise _unreadable(path, err) from None
    with tar:
        yield SafeArchive(tar, path)


# ---------------------------------------------------------------------------------------------
# Legacy checkpoint → dskd model


@dataclass(frozen=True)
class LegacyCheckpoint:
    """What a RepDistiller/mdistiller ``.pth`` carries that dskd keeps."""

    state: dict[str, Tensor]
    epoch: int | None
    accuracy: float | None


def read_legacy_bytes(data: bytes, where: str) -> LegacyCheckpoint:
    """Unpickle a legacy ``.pth`` held in memory with ``weights_only=True`` and the legacy allow-list.

    Never ``weights_only=False``; passing it explicitly also means torch's
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn the restriction off. A pickle that names
    anything else (a function such as ``os.system``) is refused before any of it runs.
    """
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError and friends: refuse
        raise ArchiveRefused(
            f"{where} cannot be read safely as a weights-only checkpoint ({_pickle_reason(err)}): it is not a "
            "published teacher; use the published archive (--url/--archive)"
        ) from None
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ArchiveRefused(
            f"{where} holds no state dict (expected {{'model': state_dict}}): use the published archive"
        )
    if all(k.startswith("module.") for k in state):  # a DataParallel save
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return LegacyCheckpoint(state, _as_int(obj.get("epoch")), _as_float(obj.get("accuracy", obj.get("best_acc"))))


def _pickle_reason(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    telling = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (telling or lines or [type(err).__name__])[0][:200]


def _as_float(value: Any) -> float | None:
    try:
        return float(value.item() if isinstance(value, Tensor) else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    return int(number) if number is not None else None


def load_strict(model: nn.Module, state: Mapping[str, Tensor], *, arch: str, where: str) -> None:
    """Load ``state`` into ``model`` with every key and shape matching, or refuse in one line."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{where} does not fit {arch} ({len(missing)} missing keys e.g. {missing[:2]}, {len(unexpected)} "
            f"unexpected e.g. {unexpected[:2]}, {len(wrong)} of another shape e.g. {wrong[:2]}): it is not the "
            f"published {arch}; use the published archive"
        )
    model.load_state_dict(dict(state), strict=True)


def _build(teacher_set: TeacherSet, name: str) -> nn.Module:
    """The model a teacher's weights must fit: dskd's zoo model, or the torchvision builder."""
    if teacher_set.source == "torchvision":
        import torchvision

        builder = teacher_set.teachers[name].builder
        return getattr(torchvision.models, str(builder))(num_classes=teacher_set.num_classes)
    from dskd_core.models import create_model

    return create_model(name, num_classes=teacher_set.num_classes)


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
        load_strict(_build(teacher_set, name), tensors, arch=name, where=str(path))
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
    notify: Observer = _quiet,
) -> list[TeacherResult]:
    """Download, verify and convert ``dataset``'s published teachers to ``<teachers_dir>/<dataset>/``.

    Teachers already converted and still sound are kept (``force`` redoes them, download
    included). ``models`` picks teachers (default: all; then members an archive lacks are
    reported as ``missing``, while a named one that is absent is an error). ``url`` is a
    mirror and ``archive`` a local copy of an archive source; ``progress`` lets torchvision
    draw its own download bar.
    """
    teacher_set = (manifest or load_manifest()).teacher_set(dataset)
    if teacher_set.source == "torchvision" and (url or archive):
        raise UsageError(
            f"--url/--archive apply to archive sources; {dataset} teachers come from torchvision (offline: put "
            f"torchvision's files in {teachers_dir / dataset / DOWNLOADS_DIR}/)"
        )
    if url and archive:
        raise UsageError("--url and --archive both name the archive: pass one of them")
    names = _select(teacher_set, models)
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
                _discard(path)
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
        legacy = read_legacy_bytes(data, f"{tar.path.name}:{member}")
        model = _build(self.teacher_set, name)
        load_strict(model, legacy.state, arch=name, where=f"{tar.path.name}:{member}")
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


def _torchvision_weights(name: str) -> Any:
    """torchvision's weights enum member, e.g. ``ResNet34_Weights.IMAGENET1K_V1`` (tests substitute one)."""
    from torchvision.models import get_weight

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
        load_strict(model, state, arch=f"torchvision {entry.builder}", where=cached.name)
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
            _discard(cached)
            raise ArchiveRefused(
                f"{file_name} cannot be read safely ({_pickle_reason(err)}): deleted; re-run"
            ) from None
        raise DownloadError(
            f"cannot get {file_name} from {weights.url} ({_short(err)}): connect to the internet and re-run, or put "
            f"that file in {folder}/"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:  # an unreadable or unsafe pickle
        _discard(cached)
        raise ArchiveRefused(f"{file_name} cannot be read safely ({_pickle_reason(err)}): deleted; re-run") from None
    return dict(state), cached


# ---------------------------------------------------------------------------------------------
# Checking, and the weak-teacher gate of ``dskd train``


def ensure_checkable(dataset: str, data_dir: Path | None = None) -> None:
    """``--check`` evaluates on the dataset's test split: refuse early when dskd cannot load it.

    With ``data_dir``, a dataset that is never downloaded (ImageNet's ImageFolder) must be there.
    """
    from dskd_core.data import get_dataset_spec, list_datasets, load_dataset
    from dskd_core.errors import DatasetNotFound

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
    from dskd_core.evaluation import evaluate_checkpoint

    ensure_checkable(dataset)
    teacher_set = (manifest or load_manifest()).teacher_set(dataset)
    out_dir = settings.teachers_dir / dataset
    results = []
    for name in _select(teacher_set, models):
        path = out_dir / f"{name}.safetensors"
        if path.is_file():
            measured = evaluate_checkpoint(name, path, dataset, settings)
            results.append(
                CheckResult(name, path, teacher_set.teachers[name].top1, measured["top1"], measured["samples"])
            )
    _record_checks(out_dir / CHECKS_FILE, results)
    return results


def _record_checks(path: Path, results: Sequence[CheckResult]) -> None:
    records = _read_checks(path)
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


def _read_checks(path: Path) -> dict[str, Any]:
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
    entry = _read_checks(Path(path).parent / CHECKS_FILE).get(Path(path).stem)
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
