"""``dskd presets``, ``report`` and ``runs`` at 80 columns: every flag, warning and note kept whole (stacked or
wrapped, never dropped or cut with an ellipsis), and ``COLUMNS`` honoured when stdout is a pipe."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_cli.render import console
from dskd_core.presets import select
from tests.test_report import MDISTILLER_LAYOUT, write_dskd_run, write_worklog

runner = CliRunner()


def _invoke(args: list[str], columns: int | None, monkeypatch: pytest.MonkeyPatch) -> str:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fits(text: str, width: int) -> list[str]:
    """The lines of ``text``, checked to be at most ``width`` wide and free of rich's ellipsis."""
    lines = text.splitlines()
    assert lines, "nothing printed"
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, f"{len(too_wide)} lines over {width} columns, e.g. {too_wide[0]!r}"
    assert "…" not in text
    return lines


def _squash(text: str) -> str:
    """``text`` without its whitespace: a wrapped (or folded) line reads the same as the unwrapped one."""
    return "".join(text.split())


def _pieces(cell: str) -> list[str]:
    """Where a narrow cell may wrap: at spaces and after ``→`` and ``+``."""
    return [p for p in re.split(r"\s+|(?<=[→+])", cell) if p]


@pytest.fixture
def flagged(tmp_path: Path) -> Path:
    """Runs whose report carries every kind of flag: a Δ across epoch passes, incomplete runs, a config unknown.

    wrn_40_2→wrn_16_2 kd (epoch_passes 1) vs kd+sdd[1,2]+ls (8): the Δ is flagged, and kd has a running and
    a failed seed; vgg13→MobileNetV2 has dkd runs of n=1; under ``legacy/`` an mdistiller worklog of
    resnet32x4→resnet8x4 kd makes that pair's Δ "config unknown".
    """
    runs = tmp_path / "runs"

    def wrn(best: float, seed: int, passes: int, **run: Any) -> None:
        write_dskd_run(
            runs, best=best, seed=seed, teacher="wrn_40_2", student="wrn_16_2", **run, extra={"epoch_passes": passes}
        )

    for seed in (0, 1):
        wrn(70.0 + seed, seed, 1)
        wrn(73.0 + seed, seed, 8, scales=(1, 2), stand=True)
    wrn(99.0, 2, 1, status="running", done=2)
    wrn(60.0, 3, 1, status="failed", done=3)
    write_dskd_run(runs, best=76.0, method="dkd", teacher="vgg13", student="MobileNetV2", scales=(1, 2, 4))
    write_dskd_run(runs, best=75.0, method="dkd", teacher="vgg13", student="MobileNetV2")
    write_dskd_run(runs, best=90.0, teacher="resnet20", student="resnet8", dataset="digits")
    legacy = tmp_path / "legacy"
    for seed in (0, 1):
        write_dskd_run(legacy / "runs", best=72.0 + seed, seed=seed, scales=(1, 2), stand=True)
    write_worklog(legacy / MDISTILLER_LAYOUT, best=71.0)
    return tmp_path


def test_report_keeps_every_flag_whole_at_80_columns(flagged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.loads(_invoke(["report", str(flagged), "--format", "json"], None, monkeypatch))
    warnings = [f for g in doc["groups"] for f in g["flags"]]
    warnings += [f"Δ {line}" for d in doc["deltas"] for line in [*d["flags"], *d["notes"]]]
    assert "Δ inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)" in warnings
    assert "incomplete: 2 runs excluded" in warnings
    assert any(w.startswith("Δ config unknown for mdistiller logs") for w in warnings)
    table = _invoke(["report", str(flagged)], 80, monkeypatch)
    _fits(table, 80)
    for warning in warnings:
        assert _squash(warning) in _squash(table), warning
    paired = "+3.00 ± 0.00 (paired, n=2; 95% CI +3.00 to +3.00, beyond noise) vs kd !"
    for expected in (paired, "+1.50 vs kd ?", "+1.00 (paired, n=1) vs dkd"):
        assert _squash(expected) in _squash(table), expected
    for excluded in ("seed 2 not averaged, running after 2/4 epochs", "seed 3 not averaged, failed after 3/4 epochs"):
        assert _squash(excluded) in _squash(table), excluded
    for group in doc["groups"]:  # the row itself, stacked: its name, pair, n and epochs all there
        pair = f"{group['teacher']}→{group['student']}"
        for piece in _pieces(pair) + _pieces(group["variant"]):
            assert piece in table, piece
    assert re.search(r"^digits\s+resnet20→\s+kd\s+1\s+90\.00\s+90\.00\s+4×1\s*\n\s+resnet8\s*$", table, re.MULTILINE)


def test_the_paper_grids_are_split_not_cut_at_80_columns(flagged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = _invoke(["report", str(flagged / "runs"), "--paper"], 80, monkeypatch)
    _fits(grid, 80)
    for pair in ("ResNet8x4", "VGG8", "WRN-40-1", "WRN-16-2", "ResNet20", "ResNet32", "ShuffleNet-V2", "MobileNet-V2"):
        assert pair in grid, pair
    assert "70.50 ± 0.71 (n=2) !" in grid and "+3.00 ± 0.00 (paired, n=2) !" in grid
    assert _squash("inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)") in _squash(grid)


def test_runs_keeps_status_and_folder_whole_at_80_columns(flagged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = flagged / "runs"
    rows = json.loads(_invoke(["runs", str(root), "--format", "json"], None, monkeypatch))
    assert {r["status"] for r in rows} == {"finished", "unfinished", "failed"}
    table = _invoke(["runs", str(root)], 80, monkeypatch)
    lines = _fits(table, 80)
    folders = [line.split(maxsplit=1) for line in lines if line.lstrip().startswith("folder ")]
    assert len(folders) == len(rows)  # one detail line per run
    for row in rows:
        folder = str(Path(row["path"]).relative_to(root))
        assert f"folder {folder}" in table, folder  # on one line: a run folder fits in 80 columns
        for piece in [*_pieces(f"{row['teacher']}→{row['student']}"), row["variant"], row["status"]]:
            assert piece in table, piece
    for status, epochs in (("unfinished", "2/4"), ("failed", "3/4")):
        assert re.search(rf"\s{status}\s+{epochs}\s", table), status


def test_presets_keep_source_beta_and_note_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    presets = select(None, None, None)
    table = _invoke(["presets"], 80, monkeypatch)
    _fits(table, 80)
    # One block per preset: its line of short columns, then its source, β and note, whole.
    starts = [m.start() for m in re.finditer(r"^(cifar100|imagenet)\s", table, re.MULTILINE)]
    assert len(starts) == len(presets)
    blocks = [table[a:b] for a, b in zip(starts, [*starts[1:], table.index("\nsource: --preset-source")], strict=True)]
    for preset, block in zip(presets, blocks, strict=True):
        values = [f"{preset.values.get(key, '')}" for key in ("lr", "batch_size")]
        sdd = "both" if preset.sdd is None else "on" if preset.sdd else "off"
        short = [
            preset.dataset,
            sdd,
            preset.method,
            preset.teacher,
            preset.student,
            ",".join(map(str, preset.sdd_scales)),
        ]
        short += [f"{preset.base_temp:g}", f"{preset.stand_kd_weight:g}", *values]
        assert block.splitlines()[0].split() == [v for v in short if v], block
        squashed = _squash(block)
        assert _squash(f"source {','.join(preset.sources)}") in squashed
        assert _squash(f"from {preset.note}") in squashed
        if (beta := preset.values.get("beta")) is not None:
            assert f"β{beta:g}" in squashed
    caption = _squash(table[table.index("\nsource: --preset-source") :])
    assert _squash("τ and w: --base-temp and --kd-weight under --stand") in caption


def _presets_widths(columns: int | None, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return [len(line) for line in _invoke(["presets", "--method", "dkd"], columns, monkeypatch).splitlines()]


def test_a_pipe_takes_columns_when_set_else_the_natural_width(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max(_presets_widths(60, monkeypatch)) <= 60
    assert 80 < max(_presets_widths(100, monkeypatch)) <= 100
    natural = _invoke(["presets", "--method", "dkd"], None, monkeypatch)
    assert max(map(len, natural.splitlines())) > 100
    note = next(p.note for p in select("dkd", None, None) if p.teacher == "resnet32x4")
    row = next(line for line in natural.splitlines() if note in line)  # one line a preset, note and all
    assert "dskd,mdistiller" in row and "resnet32x4" in row


def test_a_terminal_gets_its_own_width(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=72, color_system=None, highlight=False)
    monkeypatch.setattr(console, "out", terminal)
    monkeypatch.setenv("COLUMNS", "200")  # a terminal's own width wins
    table = Table("name", "note")
    table.add_row("kd", "inconsistent: " + "a long warning " * 8)
    console.print_wide(table, detail=("note",))
    _fits(screen.getvalue(), 72)
    assert _squash("inconsistent: " + "a long warning " * 8) in _squash(screen.getvalue())


@pytest.mark.parametrize("width", [24, 40, 80])
def test_nothing_is_cut_however_narrow(
    width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Columns that fit no longer join the detail lines; what still does not fit folds, character for character."""
    monkeypatch.setenv("COLUMNS", str(width))
    table = Table(title="t")
    cells = ["resnet32x4→MobileNetV2", "dkd+sdd[1,2,4]+region+ls", "unfinished", "240/240", "77.12 ± 0.33"]
    for header in ("pair", "variant", "status", "epochs", "best top-1", "flags"):
        table.add_column(header, no_wrap=True)
    table.add_row(*cells, "Δ inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)")
    console.print_wide(table, detail=("flags",))
    text = capsys.readouterr().out
    _fits(text, width)
    for cell in [*cells, "Δ inconsistent: kd and kd+sdd[1,2]+ls differ in epoch_passes (1 vs 8)"]:
        assert _squash(cell) in _squash(text) or all(p in text for p in _pieces(cell)), cell
