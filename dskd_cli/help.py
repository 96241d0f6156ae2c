"""The ``--help`` pages of dskd's commands: :class:`DskdCommand`, and the page of a click command or group.

A page (:class:`dskd_cli.render.help.HelpPage`) is built here from the click tree: the usage line, the
description, the arguments, the options grouped by their ``rich_help_panel`` (in the order of
:data:`dskd_cli.options.PANELS`; an option without one goes under "Options") and the examples, the
command's epilog. :mod:`dskd_cli.render.help` lays it out.

Names are written whole, with a metavar only where the option takes a value: the option's own
``metavar``, else one by type (``N``, ``X``, ``PATH``) or, for text, the last word of the option's long
name in capitals, as argparse writes it (``--dataset, -d DATASET``, ``--lr-scaling SCALING``); a flag has
none (``--fast / --no-fast``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

from typer.core import TyperCommand

from dskd_cli.options import PANELS
from dskd_cli.render.help import HelpEntry, HelpPage, HelpPanel, print_help

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter, Parameter
    from typer.core import TyperGroup

ARGUMENTS = "Arguments"
OPTIONS = "Options"
COMMANDS = "Commands"
#: Metavars by the value's type; text takes the option's name (argparse's habit).
TYPE_METAVARS: dict[type, str] = {int: "N", float: "X", Path: "PATH"}


class DskdCommand(TyperCommand):
    """A command whose ``--help`` is dskd's page: panels, whole names, no type column, examples."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        print_help(command_page(ctx, self))


def command_page(ctx: Context, command: Command) -> HelpPage:
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    usage = " ".join([ctx.command_path, "[OPTIONS]", *(_argument_usage(p) for p in arguments)])
    panels: dict[str, list[HelpEntry]] = {}
    if arguments:
        panels[ARGUMENTS] = [HelpEntry(_argument_name(p), _help(p), _note(p)) for p in arguments]
    for param in params:
        if param.param_type_name == "option":
            panel = getattr(param, "rich_help_panel", None) or OPTIONS
            panels.setdefault(panel, []).append(_option_entry(ctx, command, param))
    ranked = sorted(panels, key=_panel_rank)  # stable: panels of no known rank keep their order
    return HelpPage(
        usage=usage,
        description=_paragraphs(command.help),
        panels=tuple(HelpPanel(title, tuple(panels[title])) for title in ranked),
        examples=tuple(inspect.cleandoc(command.epilog).splitlines()) if command.epilog else (),
    )


def group_page(ctx: Context, group: TyperGroup) -> HelpPage:
    """The root page: the group's options, then its commands with the first paragraph of each one's help."""
    options = [p for p in group.get_params(ctx) if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    commands = [group.commands[name] for name in group.list_commands(ctx)]
    return HelpPage(
        usage=f"{ctx.command_path} [OPTIONS] COMMAND [ARGS]...",
        description=_paragraphs(group.help),
        panels=(
            HelpPanel(OPTIONS, tuple(_option_entry(ctx, group, p) for p in options)),
            HelpPanel(
                COMMANDS,
                tuple(HelpEntry(c.name or "", next(iter(_paragraphs(c.help)), "")) for c in commands if not c.hidden),
            ),
        ),
    )


def option_name(param: Parameter) -> str:
    """``--stand, --logit-stand``, ``--fast / --no-fast``, ``--dataset, -d DATASET``: every name, whole."""
    names = ", ".join(param.opts)
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return names
    return f"{names} {metavar(param)}"


def _option_entry(ctx: Context, command: Command, param: Parameter) -> HelpEntry:
    if param is command.get_help_option(ctx):  # -h, --help in the app's order (click keeps them in a set)
        name = ", ".join(n for n in ctx.help_option_names if n in param.opts)
    else:
        name = option_name(param)
    return HelpEntry(name, _help(param), _note(param))


def _panel_rank(title: str) -> float:
    """Arguments first, then :data:`PANELS` in order, panels it does not name, and "Options" last."""
    order = [ARGUMENTS, *PANELS]
    return order.index(title) if title in order else len(order) + (title == OPTIONS)


def metavar(param: Parameter) -> str:
    if param.metavar:
        return param.metavar
    kind = _value_type(param)
    if kind in TYPE_METAVARS:
        return TYPE_METAVARS[kind]
    longest = max((o for o in param.opts if o.startswith("--")), key=len, default=param.name or "value")
    return longest.lstrip("-").replace("_", "-").split("-")[-1].upper()


def _value_type(param: Parameter) -> Any:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if get_origin(annotation) in (list, tuple):
        annotation = next(iter(get_args(annotation)), None)
    return annotation


def _argument_name(param: Parameter) -> str:
    return param.metavar or (param.name or "").upper()


def _argument_usage(param: Parameter) -> str:
    name = _argument_name(param)
    name = name if param.required else f"[{name}]"
    return name + ("..." if param.nargs == -1 else "")


def _help(param: Parameter) -> str:
    return " ".join(_paragraphs(getattr(param, "help", None)))


def _note(param: Parameter) -> str:
    """``[required]``, or the default where there is one to show: a flag's only when it is on."""
    if param.required:
        return "[required]"
    default = param.default
    empty = default is None or default is False or (isinstance(default, (list, tuple)) and not default)
    if empty or callable(default) or getattr(param, "show_default", True) is False:
        return ""
    if getattr(param, "is_flag", False):
        return f"[default: {param.opts[0]}]" if param.secondary_opts else ""
    if isinstance(default, (list, tuple)):
        default = ", ".join(str(d) for d in default)
    return f"[default: {default}]"


def _paragraphs(text: str | None) -> tuple[str, ...]:
    """The paragraphs of a docstring or help text, each on one line (before a ``\\f``, as click cuts them)."""
    body = inspect.cleandoc(text or "").partition("\f")[0]
    return tuple(" ".join(p.split()) for p in body.split("\n\n") if p.strip())
