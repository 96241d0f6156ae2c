"""``dskd``: the app, its error handling and the one table of its commands.

Each command (one module under :mod:`dskd_cli.commands`) builds a request from its flags, calls one
core function and hands the result to :mod:`dskd_cli.render`. Every failure becomes one line on
stderr and an exit code here, in :class:`DskdGroup`.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter  # typer's click, for the overrides' signatures

import dskd_core
from dskd_cli import invocation, render
from dskd_cli.commands import eval as eval_cmd
from dskd_cli.commands import report as report_cmd
from dskd_cli.commands import runs as runs_cmd
from dskd_cli.commands import sweep as sweep_cmd
from dskd_cli.commands import train as train_cmd
from dskd_cli.commands.completions import completions
from dskd_cli.commands.eval import eval_
from dskd_cli.commands.fetch_teachers import fetch_teachers
from dskd_cli.commands.models import models_
from dskd_cli.commands.presets import presets_
from dskd_cli.commands.quickstart import quickstart
from dskd_cli.commands.report import report
from dskd_cli.commands.runs import runs_
from dskd_cli.commands.sweep import sweep
from dskd_cli.commands.train import train
from dskd_cli.help import DskdCommand, group_page
from dskd_cli.options import METHODS_HELP, methods_help
from dskd_cli.render.help import print_help
from dskd_core.errors import DskdError

#: The folders of dskd_core and dskd_cli: their ``UserWarning``s are shown as ``note:`` lines.
_OWN = tuple(str(Path(p).resolve().parent) + os.sep for p in (dskd_core.__file__, __file__))


class DskdGroup(TyperGroup):
    """Every failure becomes one line on stderr and an exit code; no tracebacks unless DSKD_DEBUG=1."""

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        """The command being run; asked for its help, its help texts' ``{methods}`` filled in from the method
        registry."""
        name, cmd, rest = super().resolve_command(ctx, args)
        if not {"-h", "--help"} & set(rest):  # only the help shows them; reading the registry costs torch's import
            return name, cmd, rest
        for param in cmd.params if cmd is not None else ():
            text = getattr(param, "help", None)
            if isinstance(text, str) and METHODS_HELP in text:
                setattr(param, "help", text.replace(METHODS_HELP, methods_help()))  # noqa: B010 (only options and arguments have one)
        return name, cmd, rest

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """``dskd --help``: the options, then the commands, laid out as every command's page is."""
        print_help(group_page(ctx, self))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        invocation.record(sys.argv[1:] if args is None else args)
        render.set_quiet(False)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warning_as_note(warnings.showwarning)
                rv = super().main(
                    args=args,
                    prog_name=prog_name or "dskd",
                    complete_var=complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                )
        except DskdError as err:
            if os.environ.get("DSKD_DEBUG"):
                traceback.print_exc()
            if not _reported_elsewhere(err):
                render.error(str(err))
            sys.exit(err.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            _interrupted()
            sys.exit(130)
        except Exception as err:
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `dskd` (or a group): the help is printed, no error
                sys.exit(0)
            if hasattr(err, "format_message") and hasattr(err, "exit_code"):  # click's usage errors
                ctx = getattr(err, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None and err.exit_code == 2 else ""
                render.error(" ".join(err.format_message().split()) + hint)
                sys.exit(err.exit_code)
            if os.environ.get("DSKD_DEBUG"):
                raise
            render.error(f"internal error {type(err).__name__}: {err} (set DSKD_DEBUG=1 for the traceback)")
            sys.exit(1)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # typer returns Ctrl-C (an Abort) as exit code 130, without a message
            _interrupted()
        if standalone_mode:
            sys.exit(code)
        return code


def _interrupted() -> None:
    """The Ctrl-C line, naming the command that continues; the processes of ``--nproc``/torchrun leave it to
    their launcher, which knows the whole command."""
    if "WORLD_SIZE" in os.environ:
        return
    command = invocation.resume_command()
    render.error(f"interrupted: continue with {command}" if command else "interrupted")


def _warning_as_note(show: Callable[..., None]) -> Callable[..., None]:
    """A ``UserWarning`` raised in dskd (a model alias, say) as a ``note:`` line; others as Python shows them."""

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if category is UserWarning and str(Path(filename).resolve()).startswith(_OWN):
            render.note(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def _reported_elsewhere(err: DskdError) -> bool:
    """Under torchrun, rank 0 prints errors every rank meets (bad input, exit 2) or that it relayed."""
    if getattr(err, "quiet", False):
        return True
    if err.exit_code != 2 or "WORLD_SIZE" not in os.environ:
        return False
    from dskd_core.train.distributed import launched_rank  # here: the CLI starts without torch

    return launched_rank() != 0


app = typer.Typer(
    cls=DskdGroup,
    name="dskd",
    help="Knowledge distillation with scale decoupling (SDD) and logit standardization (DSKD).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from dskd_core._version import __version__

        typer.echo(f"dskd {__version__} (Python {sys.version.split()[0]})")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of errors (also DSKD_DEBUG=1).")] = False,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print dskd's version and exit.")
    ] = False,
) -> None:
    """Knowledge distillation with scale decoupling (SDD) and logit standardization (DSKD)."""
    if debug:
        os.environ["DSKD_DEBUG"] = "1"


#: Every command, in the order ``dskd --help`` and the completions list them.
COMMANDS: dict[str, Callable[..., None]] = {
    "train": train,
    "eval": eval_,
    "quickstart": quickstart,
    "presets": presets_,
    "models": models_,
    "completions": completions,
    "report": report,
    "runs": runs_,
    "sweep": sweep,
    "fetch-teachers": fetch_teachers,
}

#: The examples at the end of a command's help (its epilog): commands that work as written.
EXAMPLES: dict[str, str] = {
    "train": train_cmd.EXAMPLES,
    "eval": eval_cmd.EXAMPLES,
    "report": report_cmd.EXAMPLES,
    "runs": runs_cmd.EXAMPLES,
    "sweep": sweep_cmd.EXAMPLES,
}

for _name, _command in COMMANDS.items():
    app.command(_name, cls=DskdCommand, epilog=EXAMPLES.get(_name))(_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
