"""``dskd report``'s views: groups in four formats (table, md, csv, json), the README's paper grids, curves."""

from __future__ import annotations

import csv
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich import box
from rich.markup import escape
from rich.table import Table

from dskd_cli.render.console import json_out, note, print_wide, text, wrapped

if TYPE_CHECKING:
    from dskd_core.quickstart import QuickstartResult
    from dskd_core.report import Curve, Delta, Group, Paper, PaperCell, PaperTable, Report, Stat


def _num(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")


def _stat_text(stat: Stat, with_n: bool = True) -> str:
    """``71.00 ± 1.41 (n=2)``; one run: ``71.00 (n=1)``; none: ``—``."""
    if stat.mean is None:
        return "—"
    spread = f" ± {stat.std:.2f}" if stat.std is not None else ""
    return f"{stat.mean:.2f}{spread}" + (f" (n={stat.n})" if with_n else "")


def _delta_text(delta: Delta | None, *, noise: bool = True) -> str:
    """``+2.10`` (difference of means); with matching seeds the mean ± std of per-seed differences.

    When every run of both groups pairs up the two means agree: ``+2.10 ± 0.30 (paired, n=3)``;
    otherwise both are shown: ``+2.10; paired +2.40 ± 0.20 (n=2)``.
    """
    if delta is None or delta.diff is None:
        return "—"
    if not delta.paired_seeds:
        return _num(delta.diff, signed=True)
    spread = f" ± {delta.paired.std:.2f}" if delta.paired.std is not None else ""
    ci = delta.ci95 if noise else None
    verdict = "" if ci is None else f"; 95% CI {ci[0]:+.2f} to {ci[1]:+.2f}, {delta.noise} noise"
    if delta.paired.n == delta.base.n == delta.other.n:
        return f"{delta.paired.mean:+.2f}{spread} (paired, n={delta.paired.n}{verdict})"
    return f"{delta.diff:+.2f}; paired {delta.paired.mean:+.2f}{spread} (n={delta.paired.n}{verdict})"


def _base_text(delta: Delta) -> str:
    """What a Δ is against: the plain method's variant, or the student trained from scratch."""
    return f"{delta.base.student} from scratch" if delta.vs_scratch else delta.base.variant


def _delta_mark(delta: Delta | None) -> str:
    """`` !`` after a Δ whose two configs differ (beyond the variant's own keys), `` ?`` when a config is unknown."""
    if delta is None or delta.diff is None:
        return ""
    if not delta.consistent:
        return " !"
    return " ?" if delta.config == "unknown" else ""


def _pair_text(group: Group) -> str:
    return f"{group.teacher}→{group.student}" if group.teacher else group.student


def _group_flags(group: Group, delta: Delta | None) -> list[str]:
    """The group's flags, then its Δ's (``Δ inconsistent: kd and kd+ls differ in lr (0.05 vs 0.1)``) and notes."""
    extra = [] if delta is None else [f"Δ {line}" for line in [*delta.flags, *delta.notes]]
    return [*group.flags, *extra]


def _group_cells(report: Report, group: Group) -> list[str]:
    delta = report.delta_for(group)
    return [
        group.dataset,
        _pair_text(group),
        group.variant,
        str(group.n),
        _stat_text(group.best, with_n=False),
        _stat_text(group.last, with_n=False),
        group.epochs_label,
        f"{_delta_text(delta)} vs {_base_text(delta)}{_delta_mark(delta)}" if delta is not None else "",
        "; ".join(_group_flags(group, delta)),
    ]


_GROUP_COLUMNS = ("dataset", "pair", "variant", "n", "best top-1", "last top-1", "epochs", "Δ {metric}", "flags")


def _excluded_lines(report: Report) -> list[str]:
    lines = []
    for group in report.groups:
        for run in group.excluded:
            seed = f"seed {run.seed}" if run.seed is not None else "run"
            lines.append(
                f"{group.variant} {_pair_text(group)}: {seed} not averaged, {run.incomplete_reason()} ({run.path})"
            )
    for path, reason in report.ungrouped_unreadable:
        lines.append(f"{path}: not reported, unreadable: {reason}")
    return lines


def report_groups(report: Report, fmt: str) -> None:
    """One row per (dataset, teacher, student, method, variant) in the asked format."""
    if fmt == "json":
        json_out(report.as_dict())
    elif fmt == "csv":
        _report_groups_csv(report)
    elif fmt == "md":
        _report_groups_md(report)
    else:
        _report_groups_table(report)


def _report_groups_table(report: Report) -> None:
    runs = sum(len(g.runs) for g in report.groups)
    table = Table(
        title=f"{len(report.groups)} groups from {runs} runs — top-1 %, mean ± sample std over seeds",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="incomplete runs are excluded from n, mean and std; flagged groups need a look; "
        "epochs × passes per epoch; Δ: mean ± std of per-seed differences, within noise when their 95% "
        "interval (Student t) holds 0; ! = configs differ, ? = a config unknown",
    )
    for column in _GROUP_COLUMNS:
        table.add_column(
            column.format(metric=report.metric), justify="right" if column == "n" else "left", no_wrap=column != "flags"
        )
    for group in report.groups:
        delta = report.delta_for(group)
        ok = group.ok and (delta is None or delta.consistent)
        table.add_row(*map(escape, _group_cells(report, group)), style=None if ok else "yellow")
    print_wide(table, detail=(f"Δ {report.metric}", "flags"))
    for line in _excluded_lines(report):
        wrapped(line, mark="!")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _report_groups_md(report: Report) -> None:
    header = [c.format(metric=report.metric) for c in _GROUP_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in report.groups:
        lines.append("| " + " | ".join(_md_escape(c) for c in _group_cells(report, group)) + " |")
    lines += [
        "",
        "Top-1 %, mean ± sample std over seeds; incomplete runs are excluded from n, mean and std. "
        "Epochs × passes per epoch. Δ `!`: the configs differ beyond the variant's own keys; `?`: a config is unknown.",
    ]
    excluded = _excluded_lines(report)
    if excluded:
        lines += ["", *[f"- {line}" for line in excluded]]
    sys.stdout.write("\n".join(lines) + "\n")


def _csv_num(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))


def _report_groups_csv(report: Report) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "dataset",
            "teacher",
            "student",
            "method",
            "variant",
            "n",
            "seeds",
            "epochs",
            "epoch_passes",
            "best_mean",
            "best_std",
            "last_mean",
            "last_std",
            "delta_vs",
            "delta",
            "delta_paired_n",
            "delta_paired_mean",
            "delta_paired_std",
            "delta_ok",
            "delta_config",
            "delta_flags",
            "ok",
            "flags",
            "delta_ci95_low",
            "delta_ci95_high",
            "delta_noise",
        ]
    )
    for group in report.groups:
        delta = report.delta_for(group)
        paired = delta.paired if delta is not None and delta.paired_seeds else None
        ci = delta.ci95 if delta is not None else None
        writer.writerow(
            [
                group.dataset,
                group.teacher or "",
                group.student,
                group.method,
                group.variant,
                group.n,
                " ".join(map(str, group.seeds)),
                "" if group.epochs is None else group.epochs,
                "" if group.epoch_passes is None else group.epoch_passes,
                _csv_num(group.best.mean),
                _csv_num(group.best.std),
                _csv_num(group.last.mean),
                _csv_num(group.last.std),
                delta.base.variant if delta is not None else "",
                _csv_num(delta.diff) if delta is not None else "",
                paired.n if paired is not None else "",
                _csv_num(paired.mean) if paired is not None else "",
                _csv_num(paired.std) if paired is not None else "",
                str(delta.ok).lower() if delta is not None else "",
                delta.config if delta is not None else "",
                "; ".join([*delta.flags, *delta.notes]) if delta is not None else "",
                str(group.ok).lower(),
                "; ".join(group.flags),
                _csv_num(ci[0]) if ci is not None else "",
                _csv_num(ci[1]) if ci is not None else "",
                (delta.noise or "") if delta is not None else "",
            ]
        )
    sys.stdout.flush()


def _paper_cell(cell: PaperCell | None, bold: str) -> str:
    """``mean ± std (n=k)``; the column's best mean in ``bold`` (md ``**77.62**``, or a rich tag); ``!`` if flagged."""
    if cell is None or cell.stat.mean is None:
        return "—" if cell is None or cell.ok else "— !"
    text = _stat_text(cell.stat)
    if cell.best_in_column and bold:
        mean = f"{cell.stat.mean:.2f}"
        text = (f"**{mean}**" if bold == "**" else f"[{bold}]{mean}[/{bold}]") + text[len(mean) :]
    return text if cell.ok else f"{text} !"


def _paper_flag_lines(paper: Paper) -> list[str]:
    """``! variant pair: flags`` per flagged cell, then ``? Δ KD ResNet32x4/ResNet8x4: config unknown …``."""
    seen: dict[str, str] = {}
    unknown: list[str] = []
    for table in paper.tables:
        for row in table.rows:
            for cell in row.cells:
                if cell is not None and not cell.ok:
                    seen[f"{cell.group.variant} {_pair_text(cell.group)}"] = "; ".join(cell.flags)
        for method, cells in table.deltas.items():
            for (_, _, tl, sl), delta in zip(table.columns, cells, strict=True):
                if delta is not None and _delta_mark(delta) == " ?":
                    unknown.append(f"? Δ {method.upper()} {tl}/{sl}: {'; '.join(delta.notes)}")
    return [f"! {name}: {flags}" for name, flags in seen.items()] + unknown


def _paper_has_deltas(table: PaperTable) -> bool:
    return any(d is not None for cells in table.deltas.values() for d in cells)


def report_paper(paper: Paper, fmt: str) -> None:
    """The DSKD README's grids: pairs as columns, METHOD and METHOD + DSKD rows, best per column in bold."""
    if fmt == "json":
        json_out(paper.as_dict())
        return
    if paper.empty:
        note("no complete CIFAR-100 runs of the README's pairs as METHOD or METHOD + SDD + LS: every cell is —")
    if fmt == "csv":
        _report_paper_csv(paper)
    elif fmt == "md":
        _report_paper_md(paper)
    else:
        _report_paper_table(paper)


def _paper_md_table(table: PaperTable, metric: str) -> list[str]:
    header = ["Teacher<br>Student", *[f"{tl}<br>{sl}" for _, _, tl, sl in table.columns]]
    lines = [
        f"**{table.title}** (CIFAR-100, {metric} top-1 %, mean ± std over seeds):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for i, row in enumerate(table.rows):
        if i and not row.dskd:
            lines.append("|" + " |" * len(header))
        lines.append(f"| {row.label} | " + " | ".join(_paper_cell(c, "**") for c in row.cells) + " |")
    if _paper_has_deltas(table):
        lines += ["", "| Δ (METHOD + DSKD − METHOD) | " + " | ".join(header[1:]) + " |", "|" + "---|" * len(header)]
        for method, cells in table.deltas.items():
            lines.append(
                f"| Δ {method.upper()} | "
                + " | ".join(_delta_text(d, noise=False) + _delta_mark(d) for d in cells)
                + " |"
            )
    return lines


def _report_paper_md(paper: Paper) -> None:
    lines: list[str] = []
    for table in paper.tables:
        lines += [*_paper_md_table(table, paper.metric), ""]
    lines.append(
        "Bold: best in its column. METHOD + DSKD = METHOD + SDD + logit standardization. "
        "`!`: flagged (below); `?` on a Δ: a config is unknown (below)."
    )
    lines += [f"- {n}" for n in paper.notes] + [f"- {f}" for f in _paper_flag_lines(paper)]
    sys.stdout.write("\n".join(lines) + "\n")


def _report_paper_table(paper: Paper) -> None:
    for table in paper.tables:
        grid = Table(title=f"{table.title} — CIFAR-100, {paper.metric} top-1 %", box=box.SIMPLE_HEAD, pad_edge=False)
        grid.add_column("Teacher\nStudent")
        for _, _, tl, sl in table.columns:
            grid.add_column(f"{tl}\n{sl}", justify="right")
        for i, row in enumerate(table.rows):
            grid.add_row(row.label, *[_paper_cell(c, "bold") for c in row.cells], end_section=row.dskd and i < 5)
        if _paper_has_deltas(table):
            grid.add_section()
            for method, cells in table.deltas.items():
                grid.add_row(
                    f"Δ {method.upper()}", *[_delta_text(d, noise=False) + _delta_mark(d) for d in cells], style="dim"
                )
        print_wide(grid, keys=1)
    for line in paper.notes:
        wrapped(line)
    for line in _paper_flag_lines(paper):  # "! …" or "? …"
        wrapped(line[2:], mark=line[0])


def _report_paper_csv(paper: Paper) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["table", "row", "teacher", "student", "variant", "n", "mean", "std", "best_in_column", "ok"])
    for table in paper.tables:
        for row in table.rows:
            for (teacher, student, _, _), cell in zip(table.columns, row.cells, strict=True):
                stat = cell.stat if cell is not None else None
                writer.writerow(
                    [
                        table.name,
                        row.label,
                        teacher,
                        student,
                        cell.group.variant if cell is not None else "",
                        stat.n if stat is not None else 0,
                        _csv_num(stat.mean) if stat is not None else "",
                        _csv_num(stat.std) if stat is not None else "",
                        str(bool(cell and cell.best_in_column)).lower(),
                        str(cell is None or cell.ok).lower(),
                    ]
                )
    sys.stdout.flush()


@dataclass(frozen=True)
class PlotSeries:
    """One line of the ``--curves`` figure: its panel, legend label, points and marker."""

    panel: Literal["top1", "loss"]
    label: str
    x: list[float]
    y: list[float]
    marker: str | None  # "o" for a lone point, which a line alone does not draw


def curve_series(curves: Sequence[Curve]) -> list[PlotSeries]:
    """What ``--curves`` hands matplotlib: each group's test top-1 per epoch and its training loss per tenth of
    an epoch (fractional epochs), a marker where a series has a single point (a run of one epoch)."""
    series = []
    for curve in curves:
        marker = "o" if len(curve.epochs) == 1 else None
        series.append(PlotSeries("top1", curve.label, [float(e) for e in curve.epochs], curve.mean, marker))
        if curve.loss:
            marker = "o" if len(curve.loss) == 1 else None
            series.append(PlotSeries("loss", curve.label, curve.loss_epochs, curve.loss, marker))
    return series


_PANEL_LABELS = {
    "top1": "test top-1 (%), mean over complete runs",
    "loss": "training loss, mean per tenth of an epoch",
}


def report_curves(curves: Sequence[Curve], path: Path) -> None:
    """Each group's mean test top-1 per epoch and, below it on the same epoch axis, its training loss (one
    colour per group) into a PNG (matplotlib, the optional ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = curve_series(curves)
    panels = [p for p in ("top1", "loss") if any(s.panel == p for s in series)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.5 + 2.5 * len(panels)), sharex=True, squeeze=False)
    ax = {panel: axes[i][0] for i, panel in enumerate(panels)}
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(s.label for s in series))}
    for s in series:
        ax[s.panel].plot(
            s.x,
            s.y,
            label=s.label if s.panel == "top1" else None,
            color=colours[s.label],
            marker=s.marker,
            linewidth=1.2,
        )
    for panel, axis in ax.items():
        axis.set_ylabel(_PANEL_LABELS[panel])
        axis.grid(alpha=0.3)
    last = axes[-1][0]
    last.set_xlabel("epoch")
    if max(x for s in series for x in s.x) > 3:  # whole epochs; a shorter run keeps its fractions
        last.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax["top1"].legend(fontsize="small", loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    note(f"wrote {len(curves)} curve{'s' if len(curves) != 1 else ''} to {path}")


# --------------------------------------------------------------------------- the quickstart


def quickstart_result(result: QuickstartResult) -> None:
    """The quickstart's table (``dskd report`` of its runs folder, as that command prints it), a plain sentence
    per comparison, then the commands that regenerate the table and check a student."""
    teacher, *students = result.runs
    student = students[0].config.student if students else "student"
    seen = f"{result.per_class} labelled images per class" if result.per_class else "every training image"
    seeds = ",".join(map(str, result.seeds))
    text(
        f"dskd quickstart, digits (offline): a {teacher.config.student} teacher trained on every training image; "
        f"{student} students that see {seen}, from scratch, by KD and by DSKD, seeds {seeds}"
    )
    _report_groups_table(result.report)
    text("")
    for label, against in (("KD", f"the {student} from scratch"), ("DSKD", "KD")):
        text(_verdict(label, against, result.delta(label)))
    text("")
    text(f"regenerate this table: dskd report {shlex.quote(str(result.runs_dir))}")
    dskd = next((r for r in students if r.label == "DSKD"), None)
    if dskd is not None:
        text(f"check a DSKD student: dskd eval -c {shlex.quote(str(dskd.result.run_dir))}")


def _verdict(label: str, against: str, delta: Delta | None) -> str:
    """One sentence: the difference, its 95% interval over the seeds, and whether it is told apart from noise."""
    if delta is None or delta.diff is None:
        return f"{label} vs {against}: not compared (a run is missing or unfinished)"
    flag = "" if delta.consistent else " (flagged: the two ran different configs, see the table)"
    ci = delta.ci95
    if ci is None or delta.paired.mean is None:
        return (
            f"{label} vs {against}: {delta.diff:+.2f} points on one seed, which cannot be told apart from seed "
            f"noise: pass --seeds 0,1,2 for an interval{flag}"
        )
    n, mean = delta.paired.n, delta.paired.mean
    head = f"{label} vs {against}: {mean:+.2f} points (95% interval {ci[0]:+.2f} to {ci[1]:+.2f} over {n} seeds)"
    if delta.noise == "within":
        return f"{head}: within seed noise, so these {n} seeds cannot tell the two apart{flag}"
    verb = "gains" if mean > 0 else "loses"
    return f"{head}: beyond seed noise, {label} {verb} more than the seeds vary{flag}"
