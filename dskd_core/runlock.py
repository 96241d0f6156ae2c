"""One live process per run directory: an advisory ``flock`` on ``<run>/.lock`` holding the PID.

The kernel drops the lock when its process dies (even by SIGKILL), so a lock file left by a
dead process is simply taken over; a live owner makes a second ``train`` refuse. The owner
removes the file when it is done, so only a killed process leaves one behind.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import TracebackType

from dskd_core.errors import RunLocked, UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunLock:
    """Context manager owning ``run_dir`` for this process."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None

    @staticmethod
    def held(run_dir: Path) -> bool:
        """Whether a live process holds ``run_dir``'s lock now (read only: the file is neither created nor written)."""
        path = run_dir / LOCK_NAME
        if fcntl is None or not path.is_file():
            return False
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a lock this probe took
        return False

    def __enter__(self) -> RunLock:
        while True:
            fd = self._open()
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise RunLocked(
                        f"{self.path.parent} is in use by {owner}: wait for that run to end, or train into another "
                        "--runs-dir/--seed/--name"
                    ) from None
                if not self._still_the_file(fd):  # its owner removed it as we opened it: take the new one
                    os.close(fd)
                    continue
            break
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UsageError(
                f"cannot write in {self.path.parent} ({err.strerror or err}): choose a writable --runs-dir"
            ) from None

    def _still_the_file(self, fd: int) -> bool:
        """Whether the locked descriptor is still the file at ``path`` (not one a releasing owner removed)."""
        try:
            here = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            # Removed while still held, then released: a finished run leaves no lock file, and a process
            # that opened it meanwhile sees that it locked a removed file and takes a new one. Only our own
            # file is removed (one deleted or replaced by hand may be another owner's by now).
            try:
                if self._still_the_file(self._fd):
                    self.path.unlink()
            except OSError:
                pass  # it stays behind, as a killed owner's would: the next owner takes it over
            finally:
                os.close(self._fd)
                self._fd = None
