"""Resumable HTTP downloads whose SHA-256 is computed while streaming and verified on every later use.

``download`` streams a URL to a file with HTTP Range resume, bounded retries with exponential
back-off and a size check; ``cached_download`` keeps one copy with its digest recorded next to
it (``<file>.sha256``, ``sha256sum`` format) and refuses a copy that no longer matches. It knows
nothing about what is downloaded: ``dskd fetch-teachers`` uses it for the teachers archive.
Nothing here prints: progress and retries go to an optional observer.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from dskd_core.checkpoint import atomic_write_text
from dskd_core.errors import CheckpointError, DskdError, UsageError

#: Events for a progress display: ``{"event": "download" | "retry" | "warning", ...}``.
Observer = Callable[[dict[str, Any]], None]


def quiet(event: dict[str, Any]) -> None:
    """The default observer: nothing to show."""


class DownloadError(DskdError):
    """A download failed (network, HTTP status, size): re-run to resume, or use a mirror or local copy."""

    exit_code = 6


class ArchiveRefused(CheckpointError):
    """Downloaded content is unsafe or not what was published: refused, and a downloaded copy deleted."""


# ---------------------------------------------------------------------------------------------
# Digests


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
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


def discard(path: Path) -> None:
    """Delete a downloaded copy and its digest record (after its content was refused)."""
    for stale in (path, _sidecar(path)):
        stale.unlink(missing_ok=True)


def short_reason(err: BaseException) -> str:
    """An exception as one line of at most 200 characters (its type name when it has no message)."""
    return " ".join(str(err).split())[:200] or type(err).__name__


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


def download(url: str, dest: Path, *, policy: DownloadPolicy | None = None, notify: Observer = quiet) -> str:
    """Stream ``url`` to ``dest`` and return its SHA-256, computed while streaming.

    The bytes go to ``<dest>.part``; an interrupted transfer is resumed with an HTTP Range
    request (a server that ignores it is read again from zero), retried with exponential
    back-off, and checked against the announced size before ``.part`` is renamed to ``dest``.
    A host name that does not resolve is tried once: offline, every retry would fail alike.
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
    except requests.ConnectionError as err:
        if unresolved(err):  # offline (or no DNS): one try, since retrying would fail the same way
            raise DownloadError(
                f"cannot download {url}: the host name {urlsplit(url).hostname} does not resolve (offline?): "
                "download it on a machine with a network and pass that file with --archive, or pass --url for a "
                "mirror you can reach"
            ) from None
        raise _Retry(short_reason(err)) from None
    except (requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
        raise _Retry(short_reason(err)) from None
    except requests.RequestException as err:
        raise DownloadError(f"cannot download {url} ({short_reason(err)}): check --url") from None
    if total is not None and done != total:
        if done > total:
            part.unlink()
        raise _Retry(f"received {done} of {total} bytes")
    return digest.hexdigest()


def unresolved(err: BaseException) -> bool:
    """Whether a host name lookup failed behind ``err``: a ``socket.gaierror`` anywhere in its chain (requests wraps
    urllib3's ``NameResolutionError``, which wraps it), not another failure (refused, reset, timed out)."""
    seen: set[int] = set()
    todo: list[object] = [err]
    while todo:
        cause = todo.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        if isinstance(cause, socket.gaierror):
            return True
        seen.add(id(cause))
        todo += [cause.__cause__, cause.__context__, getattr(cause, "reason", None), *cause.args]
    return False


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


def cached_download(
    url: str, dest: Path, *, force: bool = False, policy: DownloadPolicy | None = None, notify: Observer = quiet
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
                discard(dest)
                raise ArchiveRefused(
                    f"{dest} no longer matches the SHA-256 recorded when it was downloaded ({recorded[:16]}…, now "
                    f"{actual[:16]}…): deleted; re-run to download it again"
                )
            return recorded
        dest.unlink()
    digest = download(url, dest, policy=policy, notify=notify)
    atomic_write_text(record, f"{digest}  {dest.name}\n")
    return digest
