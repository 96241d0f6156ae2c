"""Reading a teachers archive safely: every member checked, expected members read into memory, never extracted.

An archive is refused when any member has an absolute path, a ``..`` component, or is a link,
device or fifo: a teachers archive holds only plain files. Members are read into memory with a
size bound, so nothing is ever written outside the teachers folder.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from dskd_core.download import ArchiveRefused, short_reason
from dskd_core.errors import UsageError

#: No legitimate teacher checkpoint comes near this; a bigger member is refused unread.
MAX_MEMBER_BYTES = 2 << 30


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
        f"{path.name} is not a readable tar archive ({short_reason(err)}): download it again (--force) or check "
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
