"""dskd runs: listing run folders with filters, showing one run, and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dskd_cli.app import app

runner = CliRunner()


def _root(teacher_run: Path) -> Path:
    return teacher_run.parents[3]  # <runs>/synthetic/resnet8/vanilla/seed0


def test_runs_lists_the_run_folders_with_filters(teacher_run: Path) -> None:
    root = _root(teacher_run)
    listed = runner.invoke(app, ["runs", str(root), "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["method"], r["variant"], r["student"], r["seed"], r["status"]) for r in rows] == [
        ("vanilla", "vanilla", "resnet8", 0, "finished")
    ]
    assert rows[0]["epochs_done"] == rows[0]["epochs"] == 1 and rows[0]["best_acc"] is not None
    assert Path(rows[0]["path"]) == teacher_run
    assert json.loads(runner.invoke(app, ["runs", str(root), "--method", "kd", "--format", "json"]).stdout) == []
    assert json.loads(runner.invoke(app, ["runs", str(root), "--status", "failed", "--format", "json"]).stdout) == []
    table = runner.invoke(app, ["runs", str(root), "--dataset", "synthetic"])
    assert table.exit_code == 0 and "vanilla" in table.stdout and "synthetic/resnet8/vanilla/seed0" in table.stdout
    assert "no runs under" in runner.invoke(app, ["runs", str(root), "--dataset", "digits"]).stdout


def test_runs_show_prints_the_config_the_summary_and_the_last_events(teacher_run: Path) -> None:
    shown = runner.invoke(app, ["runs", "show", str(teacher_run), "--events", "2", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    config = json.loads((teacher_run / "config.json").read_text())
    assert view["config"] == config and view["summary"]["status"] == "finished"
    assert [e["event"] for e in view["events"]] == ["epoch", "end"]
    text = runner.invoke(app, ["runs", "show", str(teacher_run / "summary.json")])
    assert text.exit_code == 0 and "status finished" in text.stdout and 'method = "vanilla"' in text.stdout


def test_runs_errors_are_one_line_naming_the_fix(teacher_run: Path, tmp_path: Path) -> None:
    for args, message in (
        (["runs", "show"], "dskd runs show RUN"),
        (["runs", "show", str(tmp_path / "nowhere")], "not found"),
        (["runs", "show", str(tmp_path)], "is not in a dskd run folder"),
        (["runs", str(_root(teacher_run)), "--status", "done"], "invalid --status 'done'"),
        (["runs", str(tmp_path / "nowhere")], "not found"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_killed_run_is_unfinished_and_show_finds_the_folder_of_a_file_in_it(
    teacher_run: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "runs"
    killed = root / "synthetic" / "resnet8" / "vanilla" / "seed1"
    shutil.copytree(teacher_run, killed)
    summary = json.loads((killed / "summary.json").read_text())
    (killed / "summary.json").write_text(json.dumps({**summary, "status": "running"}))  # as a SIGKILL leaves it
    rows = json.loads(runner.invoke(app, ["runs", str(root), "--format", "json"]).stdout)
    assert [r["status"] for r in rows] == ["unfinished"]
    assert (
        len(json.loads(runner.invoke(app, ["runs", str(root), "--status", "unfinished", "--format", "json"]).stdout))
        == 1
    )
    inside = killed / "checkpoints" / "student_best.safetensors"
    shown = runner.invoke(app, ["runs", "show", str(inside), "--format", "json"])
    assert shown.exit_code == 0 and Path(json.loads(shown.stdout)["path"]) == killed
    (killed / "config.json").write_text("{not json")
    broken = runner.invoke(app, ["runs", "show", str(killed)])
    assert broken.exit_code == 2 and "config.json is not valid JSON" in broken.output


def test_eval_without_a_model_names_a_missing_checkpoint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "-c", str(tmp_path / "nowhere.safetensors")])
    assert result.exit_code == 2 and "not found: check the -c path" in result.output
