"""Typed errors. Every message is one line that names the fix; the CLI prints it and exits."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class DskdError(Exception):
    """Base class: ``str(err)`` is a one-line message naming the fix."""

    exit_code: int = 1


class UsageError(DskdError, ValueError):
    """The user asked for something invalid (exit code 2, like a CLI usage error)."""

    exit_code = 2


class UnknownNameError(UsageError, KeyError):
    """A registry lookup failed; the message lists close matches.

    Subclasses KeyError (it is a failed lookup) and ValueError (torchvision's convention for
    unknown model names) so callers written against either keep working.
    """

    def __init__(self, kind: str, name: str, known: Iterable[str], *, first: Iterable[str] = ()) -> None:
        """``known``: the names to choose from; ``first``: those of them suggested before the rest (a model's
        own zoo before the other zoos' names), each group ranked by closeness, and listed alone when no name
        is close."""
        known = list(known)
        preferred = [k for k in first if k in known]
        exact = [k for k in [*preferred, *known] if k.lower() == name.lower()][:1]  # only the case differs
        close = exact + [m for m in _close_matches(name, preferred) if m not in exact]
        close += [m for m in _close_matches(name, [k for k in known if k not in preferred]) if m not in close]
        close = close[:3]
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else f"choose one of: {', '.join(sorted(preferred or known, key=natural_key))}"
        )
        super().__init__(f"unknown {kind} '{name}': {hint}")
        self.name = name
        self.close_matches = close

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


def _close_matches(name: str, known: list[str]) -> list[str]:
    """Up to three of ``known`` close to ``name``, closest first; compared ignoring case when none is close as typed."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        return close
    lowered = {k.lower(): k for k in known}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]


class DatasetNotFound(UsageError):
    """The dataset is not on disk and cannot be downloaded."""


class CheckpointError(DskdError):
    """A checkpoint is missing, unreadable or for another architecture."""

    exit_code = 2


class NonFiniteLoss(DskdError):
    """A loss term became NaN/Inf; training stops rather than silently zeroing it."""

    exit_code = 3


class StorageError(DskdError):
    """Writing a file failed (disk full, I/O error); the previous version of the file is intact."""

    exit_code = 4


class RunLocked(DskdError):
    """Another live process owns the run directory."""

    exit_code = 5


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key of a name with its numbers as numbers: ``resnet8 < resnet8x4 < resnet14 < resnet110`` (the
    order registries list and errors suggest names in)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name
