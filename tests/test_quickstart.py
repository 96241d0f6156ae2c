"""The offline quickstart end to end on the embedded digits (1 epoch per run to stay fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app


@pytest.mark.slow
def test_quickstart_trains_three_runs_and_eval_reproduces_the_dskd_student(tmp_path: Path) -> None:
    runner = CliRunner()
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["quickstart", "--epochs", "1", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    for label in ("teacher", "KD", "DSKD", "best top-1"):
        assert label in result.stdout
    dskd_run = runs / "digits" / "resnet20-resnet8" / "kd+sdd[1,2]+ls" / "seed0"
    summary = json.loads((dskd_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["dataset"] == "digits"
    assert summary["best_acc"] > 10.0  # beats chance on 10 classes even after one epoch
    evaluated = runner.invoke(app, ["eval", "-m", "resnet8", "-c", str(dskd_run), "-d", "digits", "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["top1"] == summary["best_acc"]
    # A second quickstart reuses the finished runs.
    again = runner.invoke(app, ["quickstart", "--epochs", "1", "--runs-dir", str(runs)])
    assert again.exit_code == 0 and again.output.count("reusing the finished") == 3
