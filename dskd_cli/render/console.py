"""Console primitives: stdout for results, stderr for notes and errors, the quiet flag of ranks but 0, and tables
that fit their width (a terminal's, or COLUMNS when piped) without cutting a cell."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

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


#: Wider than any table: the width a table is measured in for a pipe without ``COLUMNS``.
_UNBOUNDED = 10_000
#: Where a cell may break besides its spaces: after a pair's arrow, a variant's ``+`` and a path's ``/``.
_BREAKS = re.compile(r"[→+/](?=\S)|\s+(?=\S)")


def output_width() -> int | None:
    """The width tables are laid out in: a terminal's own, else ``COLUMNS`` when set, else None (natural width)."""
    if out.is_terminal:
        return out.width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def print_wide(table: Table, *, detail: Sequence[str] = (), keys: int = 0) -> None:
    """``table`` in :func:`output_width`, never cut: what does not fit is stacked, not dropped or ellipsised.

    A pipe without ``COLUMNS`` gets the table's natural width (``dskd report > file`` keeps one line per
    row). Too wide for its width, the columns headed ``detail`` move to labelled lines under each row, or,
    with ``keys``, the other columns are split over several tables, each led by the first ``keys`` columns.
    What still does not fit wraps (at spaces and after ``→``, ``+`` and ``/``), then folds.
    """
    natural = Measurement.get(out, out.options.update_width(_UNBOUNDED), table).maximum
    width = output_width()
    if width is None:
        Console(highlight=False, width=max(natural, 80)).print(table)
        return
    console = _console(width)
    if natural <= width:
        console.print(table)
    elif detail:
        console.print(_stacked(console, table, detail, width))
    elif keys:
        console.print(Group(*_chunked(console, table, keys, width)))
    else:
        console.print(_copy(table, table.columns, rows=True))


def wrapped(line: str, mark: str = "") -> None:
    """A line on stdout (after ``mark``, ``!`` for a warning), wrapped under itself in :func:`output_width`."""
    if is_quiet():
        return
    width = output_width()
    if width is None:
        out.print(f"{mark} {line}" if mark else line, markup=False)
        return
    grid = Table.grid(padding=(0, 1, 0, 0))
    if mark:
        grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(*([mark] if mark else []), Text(line))
    _console(width).print(grid)


def _console(width: int) -> Console:
    """The console that prints in ``width``: stdout's own on a terminal."""
    return out if out.is_terminal else Console(highlight=False, width=width)


def _copy(table: Table, columns: Sequence[Column], *, rows: bool = False, **looks: Any) -> Table:
    """A table of copies of ``columns`` that wrap and fold (never cut), in ``table``'s looks but ``looks``.

    With ``rows`` it holds ``table``'s rows (their cells in ``columns``, their styles and sections).
    """
    copy = Table(
        title=looks.get("title", table.title),
        caption=looks.get("caption", table.caption),
        box=looks.get("box", table.box),
        padding=looks.get("padding", table.padding),
        show_header=looks.get("show_header", table.show_header),
        show_edge=looks.get("show_edge", table.show_edge),
        pad_edge=looks.get("pad_edge", table.pad_edge),
    )
    for column, width in zip(columns, looks.get("widths") or [None] * len(columns), strict=True):
        copy.add_column(
            column.header,
            header_style=column.header_style,
            style=column.style,
            justify=column.justify,
            vertical=column.vertical,
            overflow="fold",
            width=width,
        )
    if rows:
        cells = [list(c.cells) for c in columns]
        for i, row in enumerate(table.rows):
            copy.add_row(*(col[i] for col in cells), style=row.style, end_section=row.end_section)
    return copy


def _texts(console: Console, cells: Iterable[RenderableType]) -> list[Text]:
    """Cells as text (markup in a string rendered, as a table renders it)."""
    return [c if isinstance(c, Text) else console.render_str(c if isinstance(c, str) else str(c)) for c in cells]


def _cuts(line: str) -> list[int]:
    """Where ``line`` may break (see ``_BREAKS``), its two ends included."""
    return [0, *(m.end() for m in _BREAKS.finditer(line)), len(line)]


def _min_width(text: Text) -> int:
    """The widest piece of ``text`` between two places it may break."""
    lines = text.plain.split("\n")
    return max(cell_len(line[a:b].rstrip()) for line in lines for a, b in itertools.pairwise(_cuts(line)))


def _wrap(text: Text, width: int) -> Text:
    """``text`` broken (see ``_BREAKS``) before each piece that would make its line wider than ``width``."""
    lines: list[Text] = []
    for line in text.split("\n"):
        breaks, start = [], 0
        for a, b in itertools.pairwise(_cuts(line.plain)):
            if a > start and cell_len(line.plain[start:b].rstrip()) > width:
                breaks.append(a)
                start = a
        for part in line.divide(breaks):
            part.rstrip()
            lines.append(part)
    return Text("\n").join(lines)


def _span(texts: Sequence[Text], width: int) -> int:
    """The width ``texts`` take wrapped in ``width`` (more where a piece is wider)."""
    return max(cell_len(line) for text in texts for line in _wrap(text, width).plain.split("\n"))


def _fit(columns: Sequence[Sequence[Text]], room: int) -> list[int]:
    """Column widths to sum to at most ``room``: the widest wrapped first, never inside a piece (so the sum may stay
    over ``room``)."""
    widths = [_span(texts, _UNBOUNDED) for texts in columns]
    floors = [max(map(_min_width, texts)) for texts in columns]
    while sum(widths) > room and any(w > f for w, f in zip(widths, floors, strict=True)):
        i = max((i for i, w in enumerate(widths) if w > floors[i]), key=widths.__getitem__)
        widths[i] = _span(columns[i], widths[i] - 1)
    return widths


def _stacked(console: Console, table: Table, detail: Sequence[str], width: int) -> Group:
    """The columns but ``detail`` fitted to ``width``, a table a row, its ``detail`` cells as lines under it.

    Columns that do not fit even wrapped join the lines, from the right; a first column wider than ``width``
    folds.
    """
    heads = _texts(console, [c.header for c in table.columns])
    cells = [_texts(console, c.cells) for c in table.columns]
    main = [i for i, c in enumerate(table.columns) if c.header not in detail]
    while True:
        room = width - 2 * (len(main) - 1)
        widths = _fit([[heads[i], *cells[i]] for i in main], room)
        if sum(widths) <= room or len(main) == 1:
            break
        main.pop()
    widths = [min(w, width) for w in widths]
    looks: dict[str, Any] = {
        "box": box.SIMPLE_HEAD,
        "padding": (0, 1, 0, 0),
        "pad_edge": False,
        "show_edge": False,
        "widths": widths,
    }
    columns = [table.columns[i] for i in main]
    header = _copy(table, columns, caption=None, **looks)
    for column, i, w in zip(header.columns, main, widths, strict=True):
        column.header = _wrap(heads[i], w)
    parts: list[RenderableType] = [header]
    extra = [i for i in range(len(table.columns)) if i not in main]
    label_width = max((heads[i].cell_len for i in extra), default=0)
    for r, row in enumerate(table.rows):
        line = _copy(table, columns, title=None, caption=None, show_header=False, **looks)
        line.add_row(*(_wrap(cells[i][r], w) for i, w in zip(main, widths, strict=True)), style=row.style)
        parts.append(line)
        notes = [(heads[i], cells[i][r]) for i in extra if cells[i][r].plain]
        if notes:
            grid = Table.grid(padding=(0, 1, 0, 0))
            grid.add_column(width=1)
            grid.add_column(width=label_width, style="dim")
            grid.add_column(width=max(width - label_width - 3, 8), overflow="fold")
            for label, text in notes:
                grid.add_row("", label, text, style=row.style)
            parts.append(grid)
    if table.caption is not None:
        caption = Table.grid()
        caption.add_column(width=width, overflow="fold")
        caption.add_row(_texts(console, [table.caption])[0], style="table.caption")
        parts.append(caption)
    return Group(*parts)


def _chunked(console: Console, table: Table, keys: int, width: int) -> list[Table]:
    """``table`` with its columns after the first ``keys`` spread over as few tables as fit in ``width``."""
    options = console.options.update_width(_UNBOUNDED)

    def need(column: Column) -> int:  # its natural width, padding and rule included
        return max(Measurement.get(console, options, c).maximum for c in [column.header, *column.cells]) + 3

    lead, rest = table.columns[:keys], table.columns[keys:]
    if not rest:  # nothing to spread: the table as it is
        return [_copy(table, table.columns, rows=True)]
    room = width - 2 - sum(map(need, lead))
    chunks: list[list[Column]] = []
    used = room
    for column in rest:
        if used + need(column) > room:
            chunks.append([])
            used = 0
        chunks[-1].append(column)
        used += need(column)
    last = len(chunks) - 1
    return [
        _copy(
            table,
            [*lead, *chunk],
            rows=True,
            title=None if i else table.title,
            caption=None if i < last else table.caption,
        )
        for i, chunk in enumerate(chunks)
    ]
