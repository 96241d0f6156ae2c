"""The offline quickstart end to end on the embedded digits (one pass per epoch here, to stay fast)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core import quickstart
from dskd_core.config import RunConfig


@pytest.fixture
def one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every quickstart run with one pass per epoch: the teacher 23 steps, each student 4."""
    original = quickstart.quickstart_configs

    def configs(**kwargs: Any) -> list[tuple[str, RunConfig]]:
        return original(**{**kwargs, "overrides": {"epoch_passes": 1}})

    monkeypatch.setattr(quickstart, "quickstart_configs", configs)


@pytest.mark.slow
def test_quickstart_trains_seeds_reports_them_and_names_the_commands_that_reproduce_it(
    tmp_path: Path, one_pass: None
) -> None:
    runner = CliRunner()
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["quickstart", "--seeds", "0,1", "--per-class", "10", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    home = runs / "quickstart"
    folders = sorted(p.parent.relative_to(home).as_posix() for p in home.rglob("summary.json"))
    assert folders == [
        "digits/resnet20-resnet8/kd+sdd[1,2]+ls/seed0",
        "digits/resnet20-resnet8/kd+sdd[1,2]+ls/seed1",
        "digits/resnet20-resnet8/kd/seed0",
        "digits/resnet20-resnet8/kd/seed1",
        "digits/resnet20/vanilla/seed0",
        "digits/resnet8/vanilla/seed0",
        "digits/resnet8/vanilla/seed1",
    ]
    students = [json.loads((home / f / "config.json").read_text()) for f in folders if "resnet20/" not in f]
    assert {(c["train_per_class"], c["seed"]) for c in students} == {(10, 0), (10, 1)}
    teacher = json.loads((home / "digits/resnet20/vanilla/seed0/config.json").read_text())
    assert teacher["train_per_class"] is None  # the teacher learns from every image
    # The table is `dskd report` of the quickstart's folder, as that command prints it.
    regenerate = next(line for line in out if line.startswith("regenerate this table: "))
    command = shlex.split(regenerate.removeprefix("regenerate this table: "))
    assert command[:2] == ["dskd", "report"] and Path(command[2]) == home
    report = runner.invoke(app, command[1:])
    assert report.exit_code == 0, report.output
    table = report.stdout.splitlines()
    start = out.index(table[0])
    assert out[start : start + len(table)] == table
    assert "vs resnet8 from scratch" in " ".join(report.stdout.split())
    # A plain sentence per comparison, with the interval of the paired differences over the seeds.
    for head in ("KD vs the resnet8 from scratch: ", "DSKD vs KD: "):
        line = next(line for line in out if line.startswith(head))
        assert "95% interval" in line and "over 2 seeds" in line and "seed noise" in line, line
    # The DSKD student's number, from its checkpoint alone.
    check = next(line for line in out if line.startswith("check a DSKD student: "))
    evaluated = runner.invoke(app, [*shlex.split(check.removeprefix("check a DSKD student: "))[1:], "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads((home / "digits/resnet20-resnet8/kd+sdd[1,2]+ls/seed0/summary.json").read_text())
    assert json.loads(evaluated.stdout)["top1"] == summary["best_acc"]
    # A second quickstart reuses every finished run.
    again = runner.invoke(app, ["quickstart", "--seeds", "0,1", "--per-class", "10", "--runs-dir", str(runs)])
    assert again.exit_code == 0 and again.output.count("reusing the finished") == 7, again.output


def test_one_seed_says_it_cannot_be_told_from_noise(tmp_path: Path, one_pass: None) -> None:
    result = CliRunner().invoke(
        app, ["quickstart", "--seeds", "0", "--teacher", "resnet14", "--runs-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("DSKD vs KD: "))
    assert "on one seed" in line and "--seeds 0,1,2" in line


def test_bad_seeds_are_one_line_naming_the_form(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["quickstart", "--seeds", "0,x"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: invalid --seeds '0,x': use comma-separated integers, e.g. 0,1,2"
