"""The only module that prints: results to stdout, notes, progress and errors to stderr."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
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


@contextmanager
def training_progress(enabled: bool) -> Iterator[Any]:
    """An observer for the engine's events: a progress bar when interactive, epoch lines otherwise."""
    if not enabled:

        def plain(event: dict[str, Any]) -> None:
            if event["event"] == "epoch":
                err.print(_epoch_line(event), markup=False)
            elif event["event"] in ("start", "resume"):
                err.print(_start_line(event), markup=False)
            elif event["event"] == "note":
                err.print(f"note: {event['message']}", markup=False)

        yield plain
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task("train", total=None, info="")

        def observe(event: dict[str, Any]) -> None:
            kind = event["event"]
            if kind in ("start", "resume"):
                bar.console.print(_start_line(event), markup=False)
            elif kind == "step":
                bar.update(
                    task,
                    description=f"epoch {event['epoch']}",
                    total=event["steps"],
                    completed=event["step"],
                    info=f"loss {event['loss']:.3f}" if event.get("loss") is not None else "",
                )
            elif kind == "epoch":
                bar.console.print(_epoch_line(event), markup=False)
            elif kind == "note":
                bar.console.print(f"note: {event['message']}", markup=False)

        yield observe


def _start_line(event: dict[str, Any]) -> str:
    verb = "resuming after epoch" if event["event"] == "resume" else "starting"
    line = f"{verb} {event['epoch'] if event['event'] == 'resume' else ''}".rstrip()
    line += (
        f" → {event['run_dir']} on {event['device']} ({event['train_samples']} train / {event['test_samples']} test)"
    )
    if "world_size" in event:
        line += f"; {event['world_size']} processes ({event['backend']}), global batch {event['global_batch_size']}"
    if "teacher_acc" in event:
        line += f"; teacher top-1 {event['teacher_acc']:.2f}"
    return line + "".join(f"\n  {note}" for note in event.get("notes", ()))


def _epoch_line(event: dict[str, Any]) -> str:
    return (
        f"epoch {event['epoch']:>3}  lr {event['lr']:.4g}  train loss {event['train_loss']:.4f}  "
        f"train {event['train_acc']:.2f}  test {event['test_acc']:.2f} (top-5 {event['test_acc_top5']:.2f})  "
        f"best {event['best_acc']:.2f}  {event['epoch_time_s']:.1f}s"
    )


def run_summary(summary: dict[str, Any], run_dir: str) -> None:
    if _quiet:
        return
    pair = f"{summary['teacher']}→{summary['student']}" if summary["teacher"] else summary["student"]
    out.print(
        f"{summary['variant']} {pair} on {summary['dataset']}: best top-1 {summary['best_acc']:.2f} "
        f"(epoch {summary['best_epoch']}), last {summary['last_acc']:.2f} after {summary['epochs_done']} epochs, "
        f"{summary['wall_time_s']:.0f}s → {run_dir}",
        markup=False,
    )


def eval_result(result: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        json_out(result)
        return
    out.print(
        f"top-1 {result['top1']:.2f}  top-5 {result['top5']:.2f}  loss {result['loss']:.4f}  "
        f"({result['samples']} {result['dataset']} test images, {result['model']} from {result['checkpoint']})",
        markup=False,
    )


def models_table(rows: Sequence[tuple[str, str, int | None, str]]) -> None:
    """Rows of (zoo, model, parameters or None, aliases)."""
    table = Table("zoo", "model", "parameters", "also accepted as", box=box.SIMPLE_HEAD)
    for zoo, name, params, aliases in rows:
        table.add_row(zoo, name, f"{params / 1e6:.2f} M" if params is not None else "", aliases)
    out.print(table)


def quickstart_table(rows: Sequence[dict[str, Any]]) -> None:
    table = Table(title="dskd quickstart — digits (offline)")
    for column in ("run", "model", "variant", "best top-1", "last top-1", "train time"):
        table.add_column(column, justify="right" if "top-1" in column or "time" in column else "left")
    for row in rows:
        table.add_row(
            row["label"],
            row["model"],
            row["variant"],
            f"{row['best_acc']:.2f}",
            f"{row['last_acc']:.2f}",
            f"{row['wall_time_s']:.0f}s",
        )
    out.print(table)
    for row in rows:
        out.print(f"{row['label']}: {row['run_dir']}", markup=False)


def presets(rows: Sequence[Any], fmt: str) -> None:
    if fmt == "json":
        json_out(
            [
                {
                    "dataset": p.dataset,
                    "source": list(p.sources),
                    "sdd": p.sdd,
                    "method": p.method,
                    "teacher": p.teacher,
                    "student": p.student,
                    "structure": p.structure,
                    "sdd_scales": p.sdd_scales,
                    "base_temp": p.base_temp,
                    "stand_kd_weight": p.stand_kd_weight,
                    **p.values,
                    "note": p.note,
                }
                for p in rows
            ]
        )
        return
    datasets = ", ".join(sorted({p.dataset for p in rows}))
    table = Table(
        title=f"{len(rows)} presets ({datasets})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="source: --preset-source; sdd: for runs with SDD scales (on), without (off) or both; "
        "scales: for --scales auto; τ and w: --base-temp and --kd-weight under --stand; --format json for every value",
    )
    for column in ("dataset", "source", "sdd", "method", "teacher", "student", "scales", "τ", "w", "lr", "batch"):
        table.add_column(column, no_wrap=True)
    for column in ("β", "from"):
        table.add_column(column)
    for p in rows:
        beta = p.values.get("beta")
        table.add_row(
            p.dataset,
            ",".join(p.sources),
            "both" if p.sdd is None else "on" if p.sdd else "off",
            p.method,
            p.teacher,
            p.student,
            ",".join(map(str, p.sdd_scales)),
            f"{p.base_temp:g}",
            f"{p.stand_kd_weight:g}",
            f"{p.values.get('lr', '')}",
            f"{p.values.get('batch_size', '')}",
            "" if beta is None else f"{beta:g}",
            p.note,
        )
    _print_wide(table)


# --------------------------------------------------------------------------- dskd report


def _num(value: float | None, signed: bool = False) -> str:
    return "—" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")


def _stat_text(stat: Any, with_n: bool = True) -> str:
    """``71.00 ± 1.41 (n=2)``; one run: ``71.00 (n=1)``; none: ``—``."""
    if stat.mean is None:
        return "—"
    spread = f" ± {stat.std:.2f}" if stat.std is not None else ""
    return f"{stat.mean:.2f}{spread}" + (f" (n={stat.n})" if with_n else "")


def _delta_text(delta: Any) -> str:
    """``+2.10`` (difference of means); with matching seeds the mean ± std of per-seed differences.

    When every run of both groups pairs up the two means agree: ``+2.10 ± 0.30 (paired, n=3)``;
    otherwise both are shown: ``+2.10; paired +2.40 ± 0.20 (n=2)``.
    """
    if delta is None or delta.diff is None:
        return "—"
    if not delta.paired_seeds:
        return _num(delta.diff, signed=True)
    spread = f" ± {delta.paired.std:.2f}" if delta.paired.std is not None else ""
    if delta.paired.n == delta.base.n == delta.other.n:
        return f"{delta.paired.mean:+.2f}{spread} (paired, n={delta.paired.n})"
    return f"{delta.diff:+.2f}; paired {delta.paired.mean:+.2f}{spread} (n={delta.paired.n})"


def _delta_mark(delta: Any) -> str:
    """`` !`` after a Δ whose two configs differ (beyond the variant's own keys), `` ?`` when a config is unknown."""
    if delta is None or delta.diff is None:
        return ""
    if not delta.consistent:
        return " !"
    return " ?" if delta.config == "unknown" else ""


def _pair_text(group: Any) -> str:
    return f"{group.teacher}→{group.student}" if group.teacher else group.student


def _group_flags(group: Any, delta: Any) -> list[str]:
    """The group's flags, then its Δ's (``Δ inconsistent: kd and kd+ls differ in lr (0.05 vs 0.1)``) and notes."""
    extra = [] if delta is None else [f"Δ {line}" for line in [*delta.flags, *delta.notes]]
    return [*group.flags, *extra]


def _group_cells(report: Any, group: Any) -> list[str]:
    delta = report.delta_for(group)
    return [
        group.dataset,
        _pair_text(group),
        group.variant,
        str(group.n),
        _stat_text(group.best, with_n=False),
        _stat_text(group.last, with_n=False),
        group.epochs_label,
        f"{_delta_text(delta)} vs {delta.base.variant}{_delta_mark(delta)}" if delta is not None else "",
        "; ".join(_group_flags(group, delta)),
    ]


_GROUP_COLUMNS = ("dataset", "pair", "variant", "n", "best top-1", "last top-1", "epochs", "Δ {metric}", "flags")


def _excluded_lines(report: Any) -> list[str]:
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


def report_groups(report: Any, fmt: str) -> None:
    """One row per (dataset, teacher, student, method, variant) in the asked format."""
    if fmt == "json":
        json_out(report.as_dict())
    elif fmt == "csv":
        _report_groups_csv(report)
    elif fmt == "md":
        _report_groups_md(report)
    else:
        _report_groups_table(report)


def _report_groups_table(report: Any) -> None:
    from rich.markup import escape

    runs = sum(len(g.runs) for g in report.groups)
    table = Table(
        title=f"{len(report.groups)} groups from {runs} runs — top-1 %, mean ± sample std over seeds",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="incomplete runs are excluded from n, mean and std; flagged groups need a look; "
        "epochs × passes per epoch; Δ ! = configs differ, ? = a config unknown",
    )
    for column in _GROUP_COLUMNS:
        table.add_column(
            column.format(metric=report.metric), justify="right" if column == "n" else "left", no_wrap=column != "flags"
        )
    for group in report.groups:
        delta = report.delta_for(group)
        ok = group.ok and (delta is None or delta.consistent)
        table.add_row(*map(escape, _group_cells(report, group)), style=None if ok else "yellow")
    _print_wide(table)
    for line in _excluded_lines(report):
        out.print(f"! {line}", markup=False)


def _print_wide(table: Table) -> None:
    """A terminal gets its width; a pipe or file gets the table's natural width rather than cut cells."""
    from rich.measure import Measurement

    if out.is_terminal:
        out.print(table)
        return
    width = max(out.width, Measurement.get(out, out.options.update_width(1000), table).maximum)
    Console(highlight=False, soft_wrap=True, width=width).print(table)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _report_groups_md(report: Any) -> None:
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


def _report_groups_csv(report: Any) -> None:
    import csv

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
        ]
    )
    for group in report.groups:
        delta = report.delta_for(group)
        paired = delta is not None and bool(delta.paired_seeds)
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
                delta.paired.n if paired else "",
                _csv_num(delta.paired.mean) if paired else "",
                _csv_num(delta.paired.std) if paired else "",
                str(delta.ok).lower() if delta is not None else "",
                delta.config if delta is not None else "",
                "; ".join([*delta.flags, *delta.notes]) if delta is not None else "",
                str(group.ok).lower(),
                "; ".join(group.flags),
            ]
        )
    sys.stdout.flush()


def _paper_cell(cell: Any, bold: str) -> str:
    """``mean ± std (n=k)``; the column's best mean in ``bold`` (md ``**77.62**``, or a rich tag); ``!`` if flagged."""
    if cell is None or cell.stat.mean is None:
        return "—" if cell is None or cell.ok else "— !"
    text = _stat_text(cell.stat)
    if cell.best_in_column and bold:
        mean = f"{cell.stat.mean:.2f}"
        text = (f"**{mean}**" if bold == "**" else f"[{bold}]{mean}[/{bold}]") + text[len(mean) :]
    return text if cell.ok else f"{text} !"


def _paper_flag_lines(paper: Any) -> list[str]:
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


def _paper_has_deltas(table: Any) -> bool:
    return any(d is not None for cells in table.deltas.values() for d in cells)


def report_paper(paper: Any, fmt: str) -> None:
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


def _paper_md_table(table: Any, metric: str) -> list[str]:
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
            lines.append(f"| Δ {method.upper()} | " + " | ".join(_delta_text(d) + _delta_mark(d) for d in cells) + " |")
    return lines


def _report_paper_md(paper: Any) -> None:
    lines: list[str] = []
    for table in paper.tables:
        lines += [*_paper_md_table(table, paper.metric), ""]
    lines.append(
        "Bold: best in its column. METHOD + DSKD = METHOD + SDD + logit standardization. "
        "`!`: flagged (below); `?` on a Δ: a config is unknown (below)."
    )
    lines += [f"- {n}" for n in paper.notes] + [f"- {f}" for f in _paper_flag_lines(paper)]
    sys.stdout.write("\n".join(lines) + "\n")


def _report_paper_table(paper: Any) -> None:
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
                grid.add_row(f"Δ {method.upper()}", *[_delta_text(d) + _delta_mark(d) for d in cells], style="dim")
        _print_wide(grid)
    for line in [*paper.notes, *_paper_flag_lines(paper)]:
        out.print(line, markup=False)


def _report_paper_csv(paper: Any) -> None:
    import csv

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


def report_curves(curves: Sequence[Any], path: Any) -> None:
    """Mean test top-1 per epoch of each group into a PNG (matplotlib, the optional ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for curve in curves:
        ax.plot(curve.epochs, curve.mean, label=curve.label, linewidth=1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%), mean over complete runs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    note(f"wrote {len(curves)} curves to {path}")


# ---------------------------------------------------------------------------------------------
# dskd fetch-teachers


@contextmanager
def fetch_progress(enabled: bool) -> Iterator[Any]:
    """An observer for teacher downloads: a byte progress bar when interactive; warnings and retries always."""
    from rich.progress import DownloadColumn, TransferSpeedColumn

    bars: dict[str, Any] = {}
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )

    def observe(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind in ("warning", "retry"):
            (bar.console if bars else err).print(f"{kind}: {event['message']}", markup=False)
        elif kind == "download" and enabled:
            if not bars:
                bar.start()  # lazily, so nothing is drawn when nothing is downloaded
            if event["file"] not in bars:
                bars[event["file"]] = bar.add_task(event["file"], total=event["total"])
            bar.update(bars[event["file"]], completed=event["done"], total=event["total"])

    try:
        yield observe
    finally:
        if bars:
            bar.stop()


def teachers_fetched(results: Sequence[Any]) -> None:
    """One line per teacher on stdout: what was done and where the checkpoint is."""
    for r in results:
        if r.status == "missing":
            out.print(f"{r.model}: missing from the archive, skipped", markup=False)
            continue
        done = "converted" if r.status == "converted" else "present (verified)"
        details = [f"published top-1 {r.published_top1:.2f}"]
        if r.reported_top1 is not None:
            details.append(f"checkpoint reports {r.reported_top1:.2f}")
        if r.epoch is not None:
            details.append(f"epoch {r.epoch}")
        out.print(f"{r.model}: {done} → {r.path} ({', '.join(details)})", markup=False)


def teacher_checks(results: Sequence[Any]) -> None:
    """Published vs measured top-1 per teacher on stdout; a warning on stderr for each gap over 1 point."""
    table = Table("teacher", "published", "measured", "gap", "test images", box=box.SIMPLE_HEAD, pad_edge=False)
    for r in results:
        table.add_row(r.model, f"{r.published_top1:.2f}", f"{r.measured_top1:.2f}", f"{r.gap:+.2f}", str(r.samples))
    out.print(table)
    for r in results:
        if r.weak:
            err.print(
                f"warning: {r.model} measures {r.measured_top1:.2f}, {r.gap:.2f} points below the published "
                f"{r.published_top1:.2f}: `dskd train` refuses it unless --allow-weak-teacher",
                markup=False,
            )


# --------------------------------------------------------------------------- dskd sweep


def sweep_plan(rows: Sequence[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        json_out(list(rows))
        return
    table = Table(title=f"sweep plan: {len(rows)} runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "seed", "pair", "dataset", "status"):
        table.add_column(column, no_wrap=True)
    labels = {"done": "done (skip)", "resume": "resume", "new": "new", "conflict": "conflict", "overwrite": "overwrite"}
    for row in rows:
        pair = f"{row['teacher']}→{row['student']}" if row["teacher"] else row["student"]
        status = labels[row["status"]]
        if row.get("differs"):
            status += f" ({', '.join(row['differs'])} differ{'s' if len(row['differs']) == 1 else ''})"
        table.add_row(row["run"], str(row["seed"]), pair, row["dataset"], status)
    out.print(table)
    roots = sorted({str(Path(row["run_dir"]).parents[2]) for row in rows})
    out.print(f"run folders under: {', '.join(roots)} (--format json lists each)", markup=False)
    conflicts = sum(row["status"] == "conflict" for row in rows)
    if conflicts:
        out.print(
            f"{conflicts} run folder{'s' if conflicts > 1 else ''} hold{'s' if conflicts == 1 else ''} another "
            "config: the sweep refuses to start until you pass --overwrite (to replace them) or another --runs-dir",
            markup=False,
        )


def sweep_result(result: Any, fmt: str) -> None:
    from dskd_core.sweep import summary_rows

    rows = summary_rows(result)
    if fmt == "json":
        json_out({"runs": list(rows), "lockstep_speedups": result.speedups})
        return
    table = Table(title="sweep", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("run", "seed", "status", "best top-1", "last top-1"):
        table.add_column(column, justify="right" if "top-1" in column else "left")
    for row in rows:
        best = "" if row["best_acc"] is None else f"{row['best_acc']:.2f}"
        last = "" if row["last_acc"] is None else f"{row['last_acc']:.2f}"
        status = {"done": "skipped (done)"}.get(row["status"], row["status"])
        table.add_row(row["run"], str(row["seed"]), status, best, last)
    out.print(table)
    for row in rows:
        if row["error"]:
            err.print(f"failed: {row['run']} seed {row['seed']}: {row['error']}", markup=False)
    for speedup in result.speedups:
        out.print(
            f"lockstep: {speedup:.2f}x the throughput of separate runs (estimated from the measured "
            "teacher-forward and data time)",
            markup=False,
        )
