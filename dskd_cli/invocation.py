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


def status_command() -> str:
    """This sweep invocation with ``--status``: the command that shows its runs' state."""
    return shlex.join(["dskd", *[a for a in _ARGV if a != "--status"], "--status"])


#: Commands whose interrupted run continues: ``train`` with ``--resume``, the others as they were given.
RESUMABLE = ("train", "sweep", "quickstart")


def resume_command() -> str | None:
    """The command that continues this interrupted invocation: ``train`` with ``--resume`` (and without
    ``--overwrite``), a sweep or the quickstart as it was (they resume their unfinished runs and keep the
    finished ones); None for a command with nothing to continue."""
    argv = list(_ARGV)
    at = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)  # past --debug and the like
    if at is None or argv[at] not in RESUMABLE:
        return None
    if argv[at] == "train":
        argv = [a for a in argv if a != "--overwrite"]
        if "--resume" not in argv and not any(a.startswith("--resume=") for a in argv):
            argv.append("--resume")
    return shlex.join(["dskd", *argv])
