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

The modules: ``manifest`` (what is published), ``archive`` (reading a tar safely), ``fetch``
(download, convert, verify), ``locate`` (the teacher checkpoint of a run, and the weak-teacher
gate), ``checks`` (``--check``: evaluate and record). The HTTP downloader is
:mod:`dskd_core.download`; the legacy ``.pth`` reader and the strict loader are in
:mod:`dskd_core.checkpoint`.

``checks`` is not re-exported here: it imports :mod:`dskd_core.evaluation`, which imports the
training package, which finds its teacher through ``locate``; importing it from this package
would close that loop at run time. Import it as ``dskd_core.teachers.checks``.
"""

from dskd_core.download import ArchiveRefused, DownloadError, DownloadPolicy, Observer
from dskd_core.teachers.archive import MAX_MEMBER_BYTES, SafeArchive, open_archive
from dskd_core.teachers.fetch import DOWNLOADS_DIR, TeacherResult, fetch_teachers, tensors_sha256, verify_teacher_file
from dskd_core.teachers.locate import CHECKS_FILE, WEAK_GAP, ensure_strong_teacher, fetchable, teacher_checkpoint
from dskd_core.teachers.manifest import (
    Manifest,
    TeacherEntry,
    TeacherSet,
    load_manifest,
    parse_models,
    published_teachers,
)

__all__ = [
    "CHECKS_FILE",
    "DOWNLOADS_DIR",
    "MAX_MEMBER_BYTES",
    "WEAK_GAP",
    "ArchiveRefused",
    "DownloadError",
    "DownloadPolicy",
    "Manifest",
    "Observer",
    "SafeArchive",
    "TeacherEntry",
    "TeacherResult",
    "TeacherSet",
    "ensure_strong_teacher",
    "fetch_teachers",
    "fetchable",
    "load_manifest",
    "open_archive",
    "parse_models",
    "published_teachers",
    "teacher_checkpoint",
    "tensors_sha256",
    "verify_teacher_file",
]
