"""The command line through Typer's runner: dry-run, errors as one line with exit codes, train, eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app

runner = CliRunner()
#: The teachers are in place, as a dry run checks (a missing one is refused, as in the run: test_dry_run_validation).
pytestmark = pytest.mark.usefixtures("fetched_teachers")


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def _stderr(result) -> str:  # Click < 8.2 mixes stderr into output
    try:
        return result.stderr
    except ValueError:
        return result.output


def test_dry_run_prints_the_resolved_config_as_json() -> None:
    result = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--scales", "[1,2]", "--stand", "--dry-run")
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert cfg["scales"] == [1, 2] and cfg["stand"] is True
    assert (cfg["temperature"], cfg["kd_weight"], cfg["ce_weight"]) == (2.0, 9.0, 0.1)
    assert {
        "lr",
        "epochs",
        "batch_size",
        "weight_decay",
        "momentum",
        "lr_decay_epochs",
        "lr_decay_rate",
    } <= set(cfg)


def test_dry_run_with_base_temp_and_kd_weight() -> None:
    result = _invoke(
        "train",
        "kd",
        "resnet32x4",
        "resnet8x4",
        "--stand",
        "--base-temp",
        "3",
        "--kd-weight",
        "12",
        "--dry-run",
    )
    cfg = json.loads(result.stdout)
    assert (cfg["temperature"], cfg["kd_weight"]) == (3.0, 12.0)
    ignored = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--base-temp", "3", "--dry-run")
    assert json.loads(ignored.stdout)["temperature"] == 4.0
    assert "only with --stand" in _stderr(ignored)


def test_help_says_base_temp_and_kd_weight_need_stand() -> None:
    import typer

    assert _invoke("train", "--help").exit_code == 0
    train = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    helps = {p.name: p.help for p in train.params}
    assert "Ignored without --stand" in helps["base_temp"] and "Ignored without --stand" in helps["kd_weight"]


@pytest.mark.parametrize("scales", ["1,2", "[1,2]", "'[1,2]'", '"[1, 2]"'])
def test_scales_spellings(scales: str) -> None:
    result = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--scales", scales, "--dry-run")
    assert json.loads(result.stdout)["scales"] == [1, 2]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "kd", "resnet32x4", "resnet8x5", "--dry-run"], "did you mean resnet8x4"),
        (["train", "kdd", "resnet32x4", "resnet8x4", "--dry-run"], "unknown method 'kdd'"),
        (["train", "kd", "resnet32x4", "resnet8x4", "--scales", "2,4", "--dry-run"], "subset of 1,2,4"),
        (["train", "kd", "resnet32x4", "resnet8x4", "--scales", "1,3", "--dry-run"], "subset of 1,2,4"),
        (["train", "kd", "resnet32x4", "--dry-run"], "TEACHER STUDENT"),
        (["train", "kd", "resnet32x4", "resnet8x4", "--epochs", "0", "--dry-run"], "epochs"),
        (["train", "kd", "resnet32x4", "resnet8x4", "--nope"], "No such option"),
        (["train", "kd", "resnet32x4", "resnet8x4", "-d", "cifar10", "--dry-run"], "did you mean cifar100"),
        (
            ["train", "kd", "resnet32x4", "resnet8x4", "-d", "synthetic", "--epochs", "1", "--teachers-dir", "none"],
            "dskd train vanilla resnet32x4",
        ),
        (["train", "vanilla", "resnet8", "--epochs", "1"], "cifar-100-python/"),
        (["eval", "-m", "resnet8", "-c", "missing.safetensors", "-d", "synthetic"], "not found"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(args: list[str], fragment: str) -> None:
    result = _invoke(*args)
    err = _stderr(result).strip()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert fragment in err
    assert len(err.splitlines()) == 1 and "Traceback" not in result.output


def test_models_lists_the_zoo() -> None:
    result = _invoke("models")
    assert result.exit_code == 0
    for name in ("resnet32x4", "wrn_40_2", "MobileNetV2", "ShuffleV2", "ResNet50", "vgg13"):
        assert name in result.stdout


def test_train_vanilla_then_kd_then_eval_reproduces_the_summary(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = _invoke("train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    teacher_run = runs / "synthetic" / "resnet8" / "vanilla" / "seed0"
    result = _invoke(
        "train",
        "kd",
        "resnet8",
        "resnet8",
        "-d",
        "synthetic",
        "--epochs",
        "1",
        "--scales",
        "1,2",
        "--stand",
        "--teacher-ckpt",
        str(teacher_run),
        "--runs-dir",
        str(runs),
    )
    assert result.exit_code == 0, result.output
    run = runs / "synthetic" / "resnet8-resnet8" / "kd+sdd[1,2]+ls" / "seed0"
    summary = json.loads((run / "summary.json").read_text())
    result = _invoke(
        "eval",
        "-m",
        "resnet8",
        "-c",
        str(run / "checkpoints" / "student_best.safetensors"),
        "-d",
        "synthetic",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["top1"] == summary["best_acc"]
    wrong = _invoke("eval", "-m", "resnet20", "-c", str(run), "-d", "synthetic")
    assert wrong.exit_code == 2 and "holds a resnet8" in _stderr(wrong)
    # The run folder alone: the model and the dataset are the ones its student files record.
    from_run = _invoke("eval", "-c", str(run), "--format", "json")
    assert from_run.exit_code == 0, from_run.output
    evaluated = json.loads(from_run.stdout)
    assert (evaluated["top1"], evaluated["model"], evaluated["dataset"]) == (
        summary["best_acc"],
        "resnet8",
        "synthetic",
    )


def test_bare_dskd_prints_the_help_and_version_prints_the_version() -> None:
    import subprocess
    import sys

    from dskd_core._version import __version__
    from tests.helpers import subprocess_env

    bare = subprocess.run([sys.executable, "-m", "dskd_cli"], capture_output=True, text=True, env=subprocess_env())
    assert bare.returncode == 0 and "Usage: dskd" in bare.stdout and "error" not in bare.stderr
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith(f"dskd {__version__} ")


def test_ctrl_c_ends_with_the_command_that_resumes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers import subprocess_env

    args = ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "50", "--runs-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dskd_cli", *args], env=subprocess_env(), stderr=subprocess.PIPE, text=True
    )
    log = tmp_path / "synthetic" / "resnet8" / "vanilla" / "seed0" / "log.jsonl"
    deadline = time.time() + 120
    while not log.exists() and time.time() < deadline:  # training has started
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == f"error: interrupted: continue with dskd {' '.join(args)} --resume"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "kd", "a", "b", "--overwrite"], "dskd train kd a b --resume"),
        (["--debug", "train", "kd", "a", "b"], "dskd --debug train kd a b --resume"),
        (["train", "--resume", "runs/x/seed0"], "dskd train --resume runs/x/seed0"),
        (["sweep", "kd", "a", "b", "--seeds", "0,1"], "dskd sweep kd a b --seeds 0,1"),
        (["eval", "-c", "runs/x"], None),
        (["--debug"], None),
    ],
)
def test_the_command_that_continues_an_interrupted_invocation(argv: list[str], expected: str | None) -> None:
    from dskd_cli import invocation

    invocation.record(argv)
    assert invocation.resume_command() == expected
