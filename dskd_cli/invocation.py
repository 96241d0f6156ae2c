"""The arguments of this invocation: ``dskd train --nproc N`` hands them, less ``--nproc``, to its processes."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

_ARGV: list[str] = []


def record(argv: Sequence[str]) -> None:
    """Called by the app before a command runs."""
    _ARGV[:] = [str(a) for a in argv]


def child_argv() -> list[str]:
    """This invocation's arguments without ``--nproc N`` / ``--nproc=N``."""
    out: list[str] = []
    skip = False
    for arg in _ARGV:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def resume_command() -> str:
    """The command that continues this interrupted invocation: ``train`` with ``--resume`` added, a sweep or
    the quickstart as it was (they resume their unfinished runs and keep the finished ones)."""
    argv = list(_ARGV)
    if argv[:1] == ["train"] and "--resume" not in argv and not any(a.startswith("--resume=") for a in argv):
        argv.append("--resume")
    return shlex.join(["dskd", *argv])
