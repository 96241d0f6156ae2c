"""``dskd fetch-teachers``: a loopback HTTP server serves archives built here in the published layout.

The archives hold dskd models saved as RepDistiller/mdistiller did (``{"model", "epoch",
"accuracy": numpy scalar, "opt": argparse.Namespace, "optimizer"}``). Besides the happy path:
a download cut midway and resumed with a Range request, corrupted archives, path traversal,
links and devices, and a pickle that would run a command — each refused in one line, nothing
executed, nothing written outside the teachers folder.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core import download
from dskd_core.checkpoint import STUDENT_FORMAT, load_model, load_tensors
from dskd_core.errors import CheckpointError
from dskd_core.models import create_model, list_models
from dskd_core.resolve import resolve_run_config
from dskd_core.teachers import (
    ArchiveRefused,
    DownloadError,
    DownloadPolicy,
    Manifest,
    TeacherEntry,
    TeacherSet,
    fetch_teachers,
    load_manifest,
)
from dskd_core.teachers import fetch as teacher_fetch
from dskd_core.teachers import manifest as teacher_manifest
from dskd_core.teachers.locate import teacher_checkpoint

runner = CliRunner()
FAST = DownloadPolicy(connect_timeout=5, read_timeout=5, retries=2, backoff=0.0, chunk_size=4096)
PUBLISHED_MEMBER = "cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth"


# ---------------------------------------------------------------------------------------------
# A loopback HTTP server with Range support, and archives in the published layout


class LoopbackServer:
    """Serves ``files`` on 127.0.0.1; can cut the first responses short or ignore Range headers."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None  # bytes of the body sent before closing the connection
        self.cuts_left = 0
        self.ignore_range = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            name, asked = self.path.lstrip("/"), self.headers.get("Range")
            server.requests.append((name, asked))
            data = server.files.get(name)
            if data is None:
                self.send_error(404)
                return
            match = re.fullmatch(r"bytes=(\d+)-", asked or "")
            start = int(match.group(1)) if match and not server.ignore_range else 0
            if start >= len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.cuts_left > 0:
                server.cuts_left -= 1
                body = body[: server.cut_after]
                self.close_connection = True
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's download policy without back-off waits."""
    monkeypatch.setattr(download, "DEFAULT_POLICY", FAST)


def legacy_checkpoint(name: str, seed: int = 0, accuracy: float = 71.25) -> tuple[bytes, dict[str, torch.Tensor]]:
    """A dskd model saved in RepDistiller's ``train_teacher.py`` layout, with its pickle extras."""
    torch.manual_seed(seed)
    model = create_model(name, num_classes=100)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for value in state.values():  # not just the init: BN statistics too
        if value.is_floating_point():
            value.add_(torch.randn_like(value) * 0.01)
    buffer = io.BytesIO()
    torch.save(
        {
            "model": state,
            "epoch": 240,
            "accuracy": np.float64(accuracy),
            "opt": argparse.Namespace(model=name, learning_rate=0.05, epochs=240),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.0005, "momentum": 0.9, "params": [0, 1]}]},
        },
        buffer,
    )
    return buffer.getvalue(), state


def tar_bytes(*members: tuple[str, bytes] | tarfile.TarInfo) -> bytes:
    """A tar archive of ``(name, bytes)`` files and raw ``TarInfo`` entries (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def small_manifest(dataset: str = "cifar100", top1: float = 70.0, **entry: Any) -> Manifest:
    """Tiny teachers (resnet8, resnet14) in the published layout; the URL is replaced per test."""
    members = {name: TeacherEntry(member=f"{name}_vanilla/ckpt_epoch_240.pth", top1=top1) for name in ("resnet14",)}
    members["resnet8"] = TeacherEntry(member="resnet8_vanilla/ckpt_epoch_240.pth", top1=top1, **entry)
    source = TeacherSet(
        source="archive",
        num_classes=100,
        url="http://127.0.0.1:9/cifar_teachers.tar",
        filename="cifar_teachers.tar",
        prefixes=["cifar_teachers/", ""],
        teachers=members,
    )
    return Manifest(datasets={dataset: source})


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _stderr(result: Any) -> str:  # Click < 8.2 mixes stderr into output
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


def _one_line_error(result: Any, code: int, fragment: str) -> None:
    err = _stderr(result).strip()
    assert result.exit_code == code, (result.exit_code, result.output)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], err
    assert "Traceback" not in result.output


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# ---------------------------------------------------------------------------------------------
# The shipped manifest


def test_shipped_manifest_names_the_published_teachers() -> None:
    manifest = load_manifest()
    cifar = manifest.teacher_set("cifar100")
    assert cifar.url == "https://github.com/megvii-research/mdistiller/releases/download/checkpoints/cifar_teachers.tar"
    published = {"resnet56": 72.34, "resnet110": 74.31, "resnet32x4": 79.42, "wrn_40_2": 75.61, "vgg13": 74.64}
    published["ResNet50"] = 79.34
    assert {k: v.top1 for k, v in cifar.teachers.items()} == published
    assert all(e.member == f"{n}_vanilla/ckpt_epoch_240.pth" for n, e in cifar.teachers.items())
    assert cifar.prefixes == ["cifar_teachers/", ""]
    assert cifar.teachers["resnet32x4"].advisory_sha256 == (
        "22aa12e2b632b19ddde155ccf2388671842ddd304824b3095e0a7fff364beb4f"
    )
    assert set(cifar.teachers) <= set(list_models()) and cifar.num_classes == 100
    from torchvision.models import get_weight

    imagenet = manifest.teacher_set("imagenet")
    for entry in imagenet.teachers.values():
        assert get_weight(str(entry.weights)).url.startswith("https://download.pytorch.org/models/")


# ---------------------------------------------------------------------------------------------
# Happy path, through the CLI with the shipped manifest


def test_fetch_from_a_mirror_converts_exactly_the_published_weights(server: LoopbackServer, tmp_path: Path) -> None:
    pth, reference = legacy_checkpoint("resnet56", accuracy=72.34)
    archive = tar_bytes((PUBLISHED_MEMBER.format(name="resnet56"), pth))
    server.files["cifar_teachers.tar"] = archive
    url = server.url("cifar_teachers.tar")
    result = _invoke("fetch-teachers", "--url", url, "--models", "resnet56")
    assert result.exit_code == 0, result.output
    path = tmp_path / "teachers" / "cifar100" / "resnet56.safetensors"
    assert "resnet56: converted" in result.stdout

    tensors, meta = load_tensors(path)
    assert set(tensors) == set(reference)
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert (meta["format"], meta["arch"], meta["num_classes"]) == (STUDENT_FORMAT, "resnet56", "100")
    assert json.loads(meta["source"]) == url
    assert json.loads(meta["member"]) == PUBLISHED_MEMBER.format(name="resnet56")
    assert json.loads(meta["member_sha256"]) == hashlib.sha256(pth).hexdigest()
    assert (json.loads(meta["epoch"]), json.loads(meta["reported_top1"])) == (240, 72.34)
    assert json.loads(meta["published_top1"]) == 72.34
    load_model("resnet56", path, 100, torch.device("cpu"))  # what `dskd train` does with it

    evaluated = _invoke("eval", "-m", "resnet56", "-c", str(path), "-d", "synthetic", "--format", "json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["samples"] > 0

    downloads = tmp_path / "teachers" / "cifar100" / ".downloads"
    digest = hashlib.sha256(archive).hexdigest()
    assert (downloads / "cifar_teachers.tar.sha256").read_text().split() == [digest, "cifar_teachers.tar"]
    assert not (downloads / "cifar_teachers.tar.part").exists()

    asked = len(server.requests)
    again = _invoke("fetch-teachers", "--url", url, "--models", "resnet56")
    assert again.exit_code == 0 and "resnet56: present (verified)" in again.stdout
    assert len(server.requests) == asked  # nothing downloaded again


def test_local_archive_without_prefix_and_default_selection(tmp_path: Path) -> None:
    """``--archive`` (offline): members without the ``cifar_teachers/`` prefix; absent teachers are reported."""
    pth, reference = legacy_checkpoint("wrn_40_2")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes(("wrn_40_2_vanilla/ckpt_epoch_240.pth", pth)))
    result = _invoke("fetch-teachers", "--archive", str(local))
    assert result.exit_code == 0, result.output
    assert "wrn_40_2: converted" in result.stdout and "resnet56: missing from the archive" in result.stdout
    assert "has no member cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth" in _stderr(result)
    tensors, meta = load_tensors(tmp_path / "teachers" / "cifar100" / "wrn_40_2.safetensors")
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert json.loads(meta["source"]) == str(local)
    assert json.loads(meta["archive_sha256"]) == hashlib.sha256(local.read_bytes()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "teachers" / "cifar100").iterdir()) == ["wrn_40_2.safetensors"]
    again = _invoke("fetch-teachers", "--archive", str(local))  # still a subset of the teachers: fine
    assert again.exit_code == 0 and "wrn_40_2: present (verified)" in again.stdout


def test_an_archive_holding_none_of_the_teachers_is_refused(tmp_path: Path) -> None:
    local = tmp_path / "other.tar"
    local.write_bytes(tar_bytes(("README.md", b"not teachers")))
    _one_line_error(_invoke("fetch-teachers", "--archive", str(local)), 2, "holds none of the cifar100 teachers")


def test_a_named_teacher_missing_from_the_archive_is_an_error(tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("wrn_40_2")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes(("wrn_40_2_vanilla/ckpt_epoch_240.pth", pth)))
    result = _invoke("fetch-teachers", "--archive", str(local), "--models", "vgg13")
    _one_line_error(result, 2, "has no member cifar_teachers/vgg13_vanilla/ckpt_epoch_240.pth")


# ---------------------------------------------------------------------------------------------
# Downloading: resume, restarts, retries, HTTP errors


def test_a_download_cut_midway_is_resumed_with_a_range_request(server: LoopbackServer, tmp_path: Path) -> None:
    pth, reference = legacy_checkpoint("resnet8")
    archive = tar_bytes((PUBLISHED_MEMBER.format(name="resnet8"), pth))
    server.files["mirror.tar"] = archive
    server.cut_after, server.cuts_left = len(archive) // 3, 1
    events: list[dict[str, Any]] = []
    results = fetch_teachers(
        "cifar100",
        tmp_path / "t",
        models=["resnet8"],
        url=server.url("mirror.tar"),
        manifest=small_manifest(),
        policy=FAST,
        notify=events.append,
    )
    assert [r.status for r in results] == ["converted"]
    (_, fresh), (_, asked) = server.requests
    match = re.fullmatch(r"bytes=(\d+)-", str(asked))
    assert fresh is None and match is not None
    assert 0 < int(match.group(1)) <= len(archive) // 3  # what had arrived was kept, the rest asked for
    assert any(e["event"] == "retry" for e in events)
    downloads = tmp_path / "t" / "cifar100" / ".downloads"
    assert (downloads / "cifar_teachers.tar").read_bytes() == archive
    assert (downloads / "cifar_teachers.tar.sha256").read_text().split()[0] == hashlib.sha256(archive).hexdigest()
    tensors, _ = load_tensors(tmp_path / "t" / "cifar100" / "resnet8.safetensors")
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)


def test_a_server_that_ignores_range_is_read_again_from_zero(server: LoopbackServer, tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet8")
    archive = tar_bytes((PUBLISHED_MEMBER.format(name="resnet8"), pth))
    server.files["mirror.tar"] = archive
    server.cut_after, server.cuts_left, server.ignore_range = len(archive) // 2, 1, True
    fetch_teachers(
        "cifar100", tmp_path, models=["resnet8"], url=server.url("mirror.tar"), manifest=small_manifest(), policy=FAST
    )
    assert len(server.requests) == 2 and server.requests[1][1] is not None  # asked to resume, answered 200
    assert (tmp_path / "cifar100" / ".downloads" / "cifar_teachers.tar").read_bytes() == archive


def test_a_download_that_keeps_failing_gives_up_and_keeps_the_partial_file(
    server: LoopbackServer, tmp_path: Path
) -> None:
    server.files["cifar_teachers.tar"] = bytes(range(256)) * 64
    server.cut_after, server.cuts_left, server.ignore_range = FAST.chunk_size + 100, 99, True
    result = _invoke("fetch-teachers", "--url", server.url("cifar_teachers.tar"), "--models", "resnet56")
    _one_line_error(result, DownloadError.exit_code, "failed after 3 attempts")
    assert "retry 1/2" in _stderr(result)
    downloads = tmp_path / "teachers" / "cifar100" / ".downloads"
    assert (downloads / "cifar_teachers.tar.part").stat().st_size == FAST.chunk_size  # resumed by the next run
    assert not (downloads / "cifar_teachers.tar").exists()
    assert not list((tmp_path / "teachers" / "cifar100").glob("*.safetensors"))


def test_http_404_is_not_retried(server: LoopbackServer) -> None:
    result = _invoke("fetch-teachers", "--url", server.url("nothing-here.tar"))
    _one_line_error(result, DownloadError.exit_code, "answered HTTP 404")
    assert len(server.requests) == 1


OFFLINE_URL = "http://dskd-offline.invalid/cifar_teachers.tar"  # .invalid never resolves (RFC 2606)


def test_a_host_that_does_not_resolve_is_tried_once_and_names_the_offline_options(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    with pytest.raises(DownloadError) as info:  # retries allowed: a lookup failure takes none of them
        download.download(OFFLINE_URL, tmp_path / "x.tar", policy=FAST, notify=events.append)
    assert not [e for e in events if e["event"] == "retry"], events
    assert "dskd-offline.invalid does not resolve" in str(info.value) and "--archive" in str(info.value)
    result = _invoke("fetch-teachers", "--url", OFFLINE_URL, "--models", "resnet56")
    _one_line_error(result, DownloadError.exit_code, "does not resolve")
    assert "retry" not in _stderr(result) and "--archive" in _stderr(result) and "--url" in _stderr(result)


def test_a_refused_connection_is_still_retried(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    events: list[dict[str, Any]] = []
    with pytest.raises(DownloadError, match="failed after 3 attempts"):
        download.download(f"http://127.0.0.1:{port}/x.tar", tmp_path / "x.tar", policy=FAST, notify=events.append)
    assert [e["event"] for e in events] == ["retry", "retry"]


# ---------------------------------------------------------------------------------------------
# Corrupted archives and cached copies


def test_a_corrupted_archive_is_refused_and_the_download_deleted(server: LoopbackServer, tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet56")
    archive = bytearray(tar_bytes((PUBLISHED_MEMBER.format(name="resnet56"), pth)))
    archive[100:140] = b"\xff" * 40  # inside the first header: its checksum no longer matches
    server.files["cifar_teachers.tar"] = bytes(archive)
    result = _invoke("fetch-teachers", "--url", server.url("cifar_teachers.tar"), "--models", "resnet56")
    _one_line_error(result, 2, "is not a readable tar archive")
    assert _files(tmp_path / "teachers") == set()  # neither the refused download nor its record


def test_a_corrupted_member_is_refused(tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet56")
    damaged = pth[:200] + bytes(len(pth) - 400) + pth[-200:]
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes((PUBLISHED_MEMBER.format(name="resnet56"), damaged)))
    result = _invoke("fetch-teachers", "--archive", str(local), "--models", "resnet56")
    _one_line_error(result, 2, "cannot be read safely as a weights-only checkpoint")
    assert local.exists()  # the user's own file is never deleted
    assert not (tmp_path / "teachers" / "cifar100" / "resnet56.safetensors").exists()


def test_a_cached_archive_changed_since_download_is_refused(server: LoopbackServer, tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet8")
    server.files["a.tar"] = tar_bytes((PUBLISHED_MEMBER.format(name="resnet8"), pth))
    kwargs: dict[str, Any] = {"models": ["resnet8"], "url": server.url("a.tar"), "manifest": small_manifest()}
    fetch_teachers("cifar100", tmp_path, policy=FAST, **kwargs)
    cached = tmp_path / "cifar100" / ".downloads" / "cifar_teachers.tar"
    cached.write_bytes(cached.read_bytes()[:-1] + b"x")
    with pytest.raises(ArchiveRefused, match="no longer matches the SHA-256 recorded"):
        fetch_teachers("cifar100", tmp_path, policy=FAST, **{**kwargs, "models": ["resnet14"]})
    assert not cached.exists()  # refused content is not kept: the next run downloads it again
    results = fetch_teachers("cifar100", tmp_path, force=True, policy=FAST, **kwargs)
    assert [r.status for r in results] == ["converted"] and cached.exists()


def test_a_damaged_teacher_file_is_converted_again(tmp_path: Path) -> None:
    pth, reference = legacy_checkpoint("resnet8")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes(("resnet8_vanilla/ckpt_epoch_240.pth", pth)))
    kwargs: dict[str, Any] = {"models": ["resnet8"], "archive": local, "manifest": small_manifest()}
    fetch_teachers("cifar100", tmp_path, **kwargs)
    path = tmp_path / "cifar100" / "resnet8.safetensors"
    assert [r.status for r in fetch_teachers("cifar100", tmp_path, **kwargs)] == ["present"]
    raw = bytearray(path.read_bytes())
    raw[-8:] = b"\x00" * 8
    path.write_bytes(bytes(raw))
    events: list[dict[str, Any]] = []
    assert [r.status for r in fetch_teachers("cifar100", tmp_path, notify=events.append, **kwargs)] == ["converted"]
    assert any("fails verification" in e.get("message", "") for e in events)
    tensors, _ = load_tensors(path)
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert [r.status for r in fetch_teachers("cifar100", tmp_path, force=True, **kwargs)] == ["converted"]


def test_an_advisory_digest_mismatch_warns_and_converts(tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet8")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes((PUBLISHED_MEMBER.format(name="resnet8"), pth)))
    manifest = small_manifest(advisory_sha256="0" * 64)
    (result,) = fetch_teachers("cifar100", tmp_path, models=["resnet8"], archive=local, manifest=manifest)
    assert result.status == "converted"
    assert len(result.warnings) == 1 and "advisory" in result.warnings[0]


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    pth, _ = legacy_checkpoint("resnet8")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes((PUBLISHED_MEMBER.format(name="resnet56"), pth)))
    result = _invoke("fetch-teachers", "--archive", str(local), "--models", "resnet56")
    _one_line_error(result, 2, "does not fit resnet56")
    assert not (tmp_path / "teachers" / "cifar100" / "resnet56.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# Malicious archives: traversal, links, devices, code in the pickle


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (("cifar_teachers/../../evil.pth", b"x"), "'..' path component"),
        (("../evil.pth", b"x"), "'..' path component"),
        (("/tmp/dskd-evil.pth", b"x"), "absolute path"),
        (_special(PUBLISHED_MEMBER.format(name="resnet56"), tarfile.SYMTYPE, "/etc/passwd"), "a link"),
        (_special("cifar_teachers/evil", tarfile.LNKTYPE, "../../etc/passwd"), "a link"),
        (_special("cifar_teachers/fifo", tarfile.FIFOTYPE), "a device or fifo"),
        (_special("cifar_teachers/tty", tarfile.CHRTYPE), "a device or fifo"),
    ],
)
def test_an_archive_with_an_unsafe_member_is_refused(
    server: LoopbackServer, tmp_path: Path, bad: Any, reason: str
) -> None:
    pth, _ = legacy_checkpoint("resnet56")
    server.files["cifar_teachers.tar"] = tar_bytes((PUBLISHED_MEMBER.format(name="wrn_40_2"), pth), bad)
    before = _files(tmp_path)
    result = _invoke("fetch-teachers", "--url", server.url("cifar_teachers.tar"))
    _one_line_error(result, 2, reason)
    assert _files(tmp_path) == before  # nothing converted, the refused download deleted, nothing outside
    assert not (tmp_path.parent / "evil.pth").exists() and not (tmp_path / "evil.pth").exists()
    assert not Path("/tmp/dskd-evil.pth").exists()


class _RunsACommand:
    """Unpickling this would call ``os.system``: a published teacher never holds one."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("force_env", [False, True])
def test_a_pickle_that_would_run_a_command_is_refused(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force_env: bool
) -> None:
    if force_env:  # torch's escape hatch must not apply: dskd passes weights_only=True explicitly
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    _, state = legacy_checkpoint("resnet56")
    buffer = io.BytesIO()
    torch.save({"model": state, "epoch": 240, "hook": _RunsACommand(marker)}, buffer)
    server.files["cifar_teachers.tar"] = tar_bytes((PUBLISHED_MEMBER.format(name="resnet56"), buffer.getvalue()))
    result = _invoke("fetch-teachers", "--url", server.url("cifar_teachers.tar"), "--models", "resnet56")
    _one_line_error(result, 2, "cannot be read safely as a weights-only checkpoint")
    assert "system" in _stderr(result)  # the refused global is named
    assert not marker.exists()
    assert _files(tmp_path / "teachers") == set()


# ---------------------------------------------------------------------------------------------
# --check, and the weak-teacher gate of `dskd train`


@pytest.mark.slow
def test_check_records_the_measured_top1_and_train_refuses_a_weak_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pth, _ = legacy_checkpoint("resnet8")
    local = tmp_path / "copy.tar"
    local.write_bytes(tar_bytes((PUBLISHED_MEMBER.format(name="resnet8"), pth)))
    monkeypatch.setattr(teacher_manifest, "load_manifest", lambda path=None: small_manifest("synthetic", top1=90.0))
    result = _invoke("fetch-teachers", "-d", "synthetic", "--archive", str(local), "--models", "resnet8", "--check")
    assert result.exit_code == 0, result.output
    assert "resnet8" in result.stdout and "90.00" in result.stdout
    assert "below the published 90.00" in _stderr(result)
    folder = tmp_path / "teachers" / "synthetic"
    record = json.loads((folder / "checks.json").read_text())["resnet8"]
    assert record["weak"] is True and record["published_top1"] == 90.0
    assert record["file_sha256"] == hashlib.sha256((folder / "resnet8.safetensors").read_bytes()).hexdigest()

    train = ["train", "kd", "resnet8", "resnet8", "-d", "synthetic", "--epochs", "1"]
    _one_line_error(_invoke(*train), 2, "--allow-weak-teacher")
    allowed = _invoke(*train, "--allow-weak-teacher")
    assert allowed.exit_code == 0, allowed.output


def test_check_is_refused_early_where_dskd_has_no_test_split(server: LoopbackServer) -> None:
    result = _invoke("fetch-teachers", "-d", "imagenet", "--check")
    _one_line_error(result, 2, "--check needs the imagenet test split")


def test_a_missing_teacher_names_fetch_teachers_where_it_can_help(tmp_path: Path) -> None:
    cfg = resolve_run_config(method="kd", teacher="resnet56", student="resnet8", dataset="cifar100")
    with pytest.raises(CheckpointError, match="run `dskd fetch-teachers --dataset cifar100 --models resnet56`"):
        teacher_checkpoint(cfg, tmp_path)
    cfg = resolve_run_config(method="kd", teacher="resnet20", student="resnet8", dataset="digits")
    with pytest.raises(CheckpointError, match="dskd train vanilla resnet20") as err:
        teacher_checkpoint(cfg, tmp_path)
    assert "fetch-teachers" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# ImageNet: torchvision's weights API (a local stand-in for download.pytorch.org)


def _torchvision_file(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision-style weights file named ``<arch>-<sha256 prefix>.pth``, as torch's hash check expects."""
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1().state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    name = f"squeezenet1_1-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth"
    (folder / name).write_bytes(buffer.getvalue())
    return folder / name, state


def _imagenet_manifest() -> Manifest:
    entry = TeacherEntry(weights="SqueezeNet1_1_Weights.IMAGENET1K_V1", builder="squeezenet1_1", top1=58.18)
    return Manifest(datasets={"imagenet": TeacherSet(source="torchvision", num_classes=1000, teachers={"Sq": entry})})


def _serve_weights(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point the weights lookup at ``url``: a real torchvision weights enum, so its own download code runs."""
    from torchvision.models._api import Weights, WeightsEnum

    class StandIn(WeightsEnum):
        V1 = Weights(url=url, transforms=None, meta={})

    monkeypatch.setattr(teacher_fetch, "_torchvision_weights", lambda name: StandIn.V1)


def test_imagenet_weights_come_through_torchvision_with_the_hash_check(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, reference = _torchvision_file(tmp_path)
    server.files[source.name] = source.read_bytes()
    _serve_weights(monkeypatch, server.url(source.name))
    out = tmp_path / "teachers"
    (result,) = fetch_teachers("imagenet", out, manifest=_imagenet_manifest())
    tensors, meta = load_tensors(out / "imagenet" / "Sq.safetensors")
    assert result.status == "converted" and set(tensors) == set(reference)  # torchvision's keys, unchanged
    assert all(torch.equal(tensors[k], reference[k]) for k in reference)
    assert (meta["arch"], meta["num_classes"], json.loads(meta["keys"])) == (
        "Sq",
        "1000",
        "torchvision.models.squeezenet1_1",
    )
    assert json.loads(meta["file_sha256"]) == hashlib.sha256(source.read_bytes()).hexdigest()
    asked = len(server.requests)
    assert [r.status for r in fetch_teachers("imagenet", out, manifest=_imagenet_manifest())] == ["present"]
    assert len(server.requests) == asked

    # offline install: the file put in .downloads/ by hand is verified by its name's hash, then used
    offline = tmp_path / "offline"
    (offline / "imagenet" / ".downloads").mkdir(parents=True)
    (offline / "imagenet" / ".downloads" / source.name).write_bytes(source.read_bytes())
    _serve_weights(monkeypatch, f"http://127.0.0.1:9/{source.name}")
    assert [r.status for r in fetch_teachers("imagenet", offline, manifest=_imagenet_manifest())] == ["converted"]


def test_imagenet_weights_with_a_wrong_hash_are_refused(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = _torchvision_file(tmp_path)
    wrong = "squeezenet1_1-00000000.pth"
    server.files[wrong] = source.read_bytes()
    _serve_weights(monkeypatch, server.url(wrong))
    with pytest.raises(DownloadError, match="hash"):
        fetch_teachers("imagenet", tmp_path / "t", manifest=_imagenet_manifest())
    assert not list((tmp_path / "t").rglob("*.pth")) and not list((tmp_path / "t").rglob("*.safetensors"))
    (tmp_path / "t" / "imagenet" / ".downloads" / wrong).write_bytes(source.read_bytes())  # put there by hand
    with pytest.raises(ArchiveRefused, match="does not match the hash in its name"):
        fetch_teachers("imagenet", tmp_path / "t", manifest=_imagenet_manifest())


def test_imagenet_offline_is_one_line_naming_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _serve_weights(monkeypatch, "http://127.0.0.1:9/resnet34-b627a593.pth")  # nothing listens on port 9
    result = _invoke("fetch-teachers", "-d", "imagenet", "--models", "ResNet34")
    _one_line_error(result, DownloadError.exit_code, "connect to the internet and re-run, or put that file in")
    assert not list((tmp_path / "teachers").rglob("*.safetensors"))


# ---------------------------------------------------------------------------------------------
# Usage errors


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--models", "resnet57"], "did you mean resnet56"),
        (["--dataset", "cifar10"], "did you mean cifar100"),
        (["--models", ","], "--models is empty"),
        (["--url", "http://x/a.tar", "--archive", "a.tar"], "pass one of them"),
        (["--url", "ftp://mirror/cifar_teachers.tar"], "http:// or https://"),
        (["--archive", "no-such.tar"], "not found: check --archive"),
        (["-d", "imagenet", "--url", "http://mirror/x"], "come from torchvision"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args: list[str], fragment: str) -> None:
    _one_line_error(_invoke("fetch-teachers", *args), 2, fragment)


def test_the_interactive_progress_display_takes_every_event() -> None:
    from dskd_cli import render

    with render.fetch_progress(True) as observe:
        observe({"event": "download", "file": "a.tar", "done": 10, "total": 100})
        observe({"event": "download", "file": "a.tar", "done": 100, "total": 100})
        observe({"event": "retry", "message": "HTTP 503; retry 1/4 in 1s"})
        observe({"event": "warning", "message": "advisory digest differs"})
