"""``--help`` pages laid out at the terminal's width (``COLUMNS`` where it is set).

A page is the usage line, the description, one panel per group of options, two columns each (the
option's names, then its help wrapping in the width left) and the examples. A name too long for the
name column is stacked, on its own line above its help, rather than cut: typer's own rich help cuts
names at 80 columns (``--stand,--logit-s…``), squeezes the help into a third of the width and spends
a column on a type label (``<bool>`` for a flag), which this layout leaves out. The page itself is
data, built from the click command by :mod:`dskd_cli.help`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text

#: Between the name column and the help column.
GAP = 2
#: The name column is at most this share of the panel (and at least MIN_NAME cells); longer names stack.
NAME_SHARE = 1 / 3
MIN_NAME = 12
#: Below this many cells for the help column, every entry stacks (a very narrow terminal).
MIN_HELP = 16
#: A stacked entry's help, when every entry stacks, is indented this much.
STACK_INDENT = 4


@dataclass(frozen=True)
class HelpEntry:
    """One row of a panel: ``--dataset, -d DATASET`` and its help; ``note`` (a default) follows it, dimmed."""

    name: str
    help: str
    note: str = ""


@dataclass(frozen=True)
class HelpPanel:
    title: str
    entries: tuple[HelpEntry, ...]


@dataclass(frozen=True)
class HelpPage:
    """What ``--help`` shows: ``usage`` after "Usage: ", the description's paragraphs, the panels in order and
    the example lines (an indented line is a command, shown as it is; another is prose, wrapped)."""

    usage: str
    description: tuple[str, ...]
    panels: tuple[HelpPanel, ...]
    examples: tuple[str, ...] = ()


def print_help(page: HelpPage, console: Console | None = None) -> None:
    """``page`` on stdout, at ``console``'s width: by default a console made now, so that it reads ``COLUMNS``
    as the command runs (a test's runner sets it then)."""
    console = console or Console(highlight=False)
    width = console.width
    usage = Text("Usage: ", style="bold") + Text(page.usage, style="bold")
    console.print(Padding(usage, (1, 1, 0, 1)))
    for paragraph in page.description:
        console.print(Padding(Text(paragraph), (1, 1, 0, 1)))
    console.print()
    inner = width - 4  # a panel's two borders and its padding of one on each side
    name_width = _name_width([e for p in page.panels for e in p.entries], inner)
    for panel in page.panels:
        lines: list[Text] = []
        for entry in panel.entries:
            lines += _entry_lines(entry, name_width, inner, console)
        console.print(_panel(panel.title, lines))
    if page.examples:
        console.print(_panel("Examples", _example_lines(page.examples, inner, console)))


def _panel(title: str, lines: list[Text]) -> Panel:
    return Panel(Group(*lines), title=title, title_align="left", border_style="dim", padding=(0, 1))


def _name_width(entries: list[HelpEntry], inner: int) -> int:
    """The name column: as wide as the widest name that fits within its share; 0 when every entry stacks."""
    cap = max(MIN_NAME, int(inner * NAME_SHARE))
    fitting = [cell_len(e.name) for e in entries if cell_len(e.name) <= cap]
    width = max(fitting, default=cap)
    return width if inner - width - GAP >= MIN_HELP else 0


def _entry_lines(entry: HelpEntry, name_width: int, inner: int, console: Console) -> list[Text]:
    """The lines of one entry: name and help side by side, or the name (folded, never cut) above the help."""
    name = Text(entry.name, style="bold cyan")
    body = Text(entry.help)
    if entry.note:
        body.append((" " if entry.help else "") + entry.note, style="dim")
    stacked = name_width == 0 or cell_len(entry.name) > name_width
    indent = STACK_INDENT if name_width == 0 else name_width + GAP
    help_lines = list(body.wrap(console, max(inner - indent, 1))) if body.plain else []
    if stacked:
        names = list(name.wrap(console, max(inner, 1), overflow="fold"))
        return names + [Text(" " * indent) + line for line in help_lines]
    first = name + Text(" " * (indent - cell_len(entry.name)))
    if help_lines:
        first += help_lines[0]
    return [first] + [Text(" " * indent) + line for line in help_lines[1:]]


def _command_lines(line: str, inner: int, console: Console) -> list[Text]:
    """An example command at its indentation; too long for the panel, the rest below it, indented further."""
    indent = len(line) - len(line.lstrip())
    command = line.strip()
    first = Text(command).wrap(console, max(inner - indent, 1))[0].plain
    lines = [Text(" " * indent) + Text(first, style="bold")]
    rest = command[len(first) :].strip()
    if rest:
        for part in Text(rest, style="bold").wrap(console, max(inner - indent - STACK_INDENT, 1)):
            lines.append(Text(" " * (indent + STACK_INDENT)) + part)
    return lines


def _example_lines(examples: tuple[str, ...], inner: int, console: Console) -> list[Text]:
    lines: list[Text] = []
    for line in examples:
        if line.startswith(" "):  # a command: as written; where it must wrap, its next lines indented further
            lines += _command_lines(line.rstrip(), inner, console)
        else:
            lines += list(Text(line).wrap(console, inner)) if line else [Text("")]
    return lines
