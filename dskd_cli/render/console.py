"""Console primitives: stdout for results, stderr for notes and errors, and the quiet flag of ranks but 0."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
#: Set in every process but rank 0 of a distributed run: rank 0 alone reports (errors excepted).
_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def error(message: str) -> None:
    """One line on stderr, no traceback."""
    err.print(f"error: {message}", markup=False)


def note(message: str) -> None:
    if not _quiet:
        err.print(f"note: {message}", markup=False)


def json_out(value: Any) -> None:
    if _quiet:
        return
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def text(message: str) -> None:
    if not _quiet:
        out.print(message, markup=False)


def progress_enabled(setting: bool) -> bool:
    return setting and os.environ.get("DSKD_PROGRESS", "1") != "0" and sys.stderr.isatty()


def is_quiet() -> bool:
    return _quiet


def completion_script(script: str) -> None:
    """A generated shell completion script on stdout, as it is."""
    sys.stdout.write(script)


def print_wide(table: Table) -> None:
    """A terminal gets its width; a pipe or file gets the table's natural width rather than cut cells."""
    if out.is_terminal:
        out.print(table)
        return
    width = max(out.width, Measurement.get(out, out.options.update_width(1000), table).maximum)
    Console(highlight=False, soft_wrap=True, width=width).print(table)
