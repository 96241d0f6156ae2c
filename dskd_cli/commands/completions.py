"""``dskd completions``: the generated shell completion script."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from dskd_cli import render
from dskd_cli.completions import SHELLS, generate
from dskd_core.errors import UsageError


def completions(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script (the files under completions/ are these outputs)."""
    if shell not in SHELLS:
        raise UsageError(f"unknown shell '{shell}': use one of {', '.join(SHELLS)}")
    group = ctx.find_root().command
    assert isinstance(group, TyperGroup)  # dskd's root: the DskdGroup of every command
    render.completion_script(generate(shell, group))
