"""Numbers users can trust: fp32 evaluation, the best epoch on a tie, and replaying a run's config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.evaluation import evaluate_checkpoint
from dskd_core.train import engine, fit
from dskd_core.train.evaluate import EvalResult
from tests.helpers import kd_config, make_settings

_kd = kd_config
#: The teachers are in place, as a dry run checks (a missing one is refused, as in the run).
pytestmark = pytest.mark.usefixtures("fetched_teachers")


def test_evaluation_is_fp32_under_a_bf16_training_run(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bool, torch.dtype]] = []  # (model, training mode, autocast on, logits dtype)
    tf32: list[tuple[bool, str, bool]] = []  # (training mode, matmul precision, cuDNN TF32) at each student forward
    build = engine.build_distiller

    def recording_build(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        distiller = build(*args, **kwargs)
        for role, model in (("student", distiller.student), ("teacher", distiller.teacher)):

            def hook(module: torch.nn.Module, inputs: Any, output: Any, role: str = role) -> None:
                seen.append((role, module.training, torch.is_autocast_enabled("cpu"), output[0].dtype))
                if role == "student":
                    tf32.append(
                        (module.training, torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
                    )

            model.register_forward_hook(hook)
        return distiller

    monkeypatch.setattr(engine, "build_distiller", recording_build)
    cfg = _kd(teacher_run, epochs=1, fast=True, precision="bf16", compile=False)
    settings = make_settings(tmp_path)
    result = fit(cfg, settings)
    assert json.loads((result.run_dir / "config.json").read_text())["precision"] == "bf16"
    steps = [s for s in seen if s[:2] == ("student", True)]
    assert steps and all(autocast and dtype == torch.bfloat16 for *_, autocast, dtype in steps)
    evals = [s for s in seen if s[:2] == ("student", False)]
    assert evals and all(not autocast and dtype == torch.float32 for *_, autocast, dtype in evals)
    # TF32 (on with bf16 for the fp32 parts) is switched off for evaluation.
    assert {(mode, p, c) for mode, p, c in tf32} == {(True, "high", True), (False, "highest", False)}
    # The teacher: bf16 inside the training steps, fp32 for its start-of-run accuracy (the first forwards).
    teacher = [s for s in seen if s[0] == "teacher"]
    assert not teacher[0][2] and teacher[0][3] == torch.float32
    assert any(autocast and dtype == torch.bfloat16 for *_, autocast, dtype in teacher)
    # dskd eval of the best student reproduces the summary's number.
    again = evaluate_checkpoint("resnet8", result.run_dir, "synthetic", settings)
    assert again["top1"] == result.summary["best_acc"]


def test_best_checkpoint_on_a_tie_is_the_last_epoch_that_reaches_it(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accuracies = iter([50.0, 60.0, 40.0, 60.0, 55.0])

    def fake_evaluate(model: torch.nn.Module, batches: Any, dist: Any = None) -> EvalResult:
        return EvalResult(next(accuracies), 90.0, 1.0, 10)

    monkeypatch.setattr(engine, "evaluate", fake_evaluate)
    cfg = _kd(teacher_run, epochs=4, lr_decay_epochs=[3])
    result = fit(cfg, make_settings(tmp_path))  # the first value is the teacher's start-of-run accuracy
    assert (result.summary["best_acc"], result.summary["best_epoch"]) == (60.0, 3)
    from dskd_core.checkpoint import read_metadata

    assert read_metadata(result.run_dir / "checkpoints" / "student_best.safetensors")["epoch"] == "3"


# --------------------------------------------------------------------------------------------
# --config replays a run


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _dry(*args: str) -> dict[str, Any]:
    result = _invoke("train", *args, "--dry-run")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_json_replays_as_it_is(tmp_path: Path) -> None:
    first = _dry("dkd", "wrn_40_2", "wrn_16_2", "--scales", "1,2,4", "--stand", "--set", "lr=0.02")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(first))
    replayed = _dry("--config", str(path))
    assert replayed == first  # α 9, β 54 once: the --stand values are not applied a second time
    assert (replayed["alpha"], replayed["beta"], replayed["lr"]) == (9.0, 54.0, 0.02)
    assert _dry("dkd", "wrn_40_2", "wrn_16_2", "--config", str(path)) == first  # agreeing names are fine
    with_flag = _dry("--config", str(path), "--lr", "0.01")  # flags given now go on top
    assert with_flag["lr"] == 0.01 and with_flag["beta"] == 54.0


@pytest.mark.parametrize(
    ("names", "fragment"),
    [
        (["kd", "wrn_40_2", "wrn_16_2"], "method dkd in the file, kd on the command line"),
        (["dkd", "wrn_40_2", "wrn_40_1"], "student wrn_16_2 in the file, wrn_40_1 on the command line"),
    ],
)
def test_config_that_contradicts_the_command_is_refused_by_name(
    tmp_path: Path, names: list[str], fragment: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_dry("dkd", "wrn_40_2", "wrn_16_2")))
    result = _invoke("train", *names, "--config", str(path), "--dry-run")
    assert result.exit_code == 2 and fragment in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    toml = tmp_path / "run.toml"
    toml.write_text('method = "dkd"\nteacher = "wrn_40_2"\nstudent = "wrn_16_2"\nlr = 0.02\n')
    result = _invoke("train", *names, "--config", str(toml), "--dry-run")
    assert result.exit_code == 2 and fragment in result.output
    assert _dry("--config", str(toml))["lr"] == 0.02  # a TOML that names the run needs no positionals


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"method": "kd", "colour": 1}', "colour"),
        ('{"lr": 0.1}', "not a whole run config (no method, student"),  # a partial JSON is no replay
    ],
)
def test_bad_json_config_is_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = _invoke("train", "--config", str(path), "--dry-run")
    assert result.exit_code == 2 and fragment in result.output and len(result.output.strip().splitlines()) == 1


def test_train_config_json_of_a_run_reruns_it(teacher_run: Path, tmp_path: Path) -> None:
    first = tmp_path / "a"
    args = ["kd", "resnet8", "resnet8", "-d", "synthetic", "--teacher-ckpt", str(teacher_run), "--epochs", "1"]
    done = _invoke("train", *args, "--scales", "1,2", "--stand", "--runs-dir", str(first))
    assert done.exit_code == 0, done.output
    run = next(first.glob("synthetic/*/*/seed0"))
    replay = _invoke("train", "--config", str(run / "config.json"), "--runs-dir", str(tmp_path / "b"))
    assert replay.exit_code == 0, replay.output
    again = tmp_path / "b" / run.relative_to(first)
    saved, rerun = (json.loads((d / "config.json").read_text()) for d in (run, again))
    assert rerun == saved
    best = [json.loads((d / "summary.json").read_text())["best_acc"] for d in (run, again)]
    assert best[0] == best[1]


@pytest.mark.parametrize(
    "flags",
    [["--stand"], ["--kd-weight", "6"], ["--scales", "1,2"], ["--preset-source", "mdistiller"], ["--no-preset"]],
)
def test_a_replay_refuses_the_flags_that_resolve_a_new_config(tmp_path: Path, flags: list[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_dry("rld", "resnet56", "resnet20")))
    result = _invoke("train", "--config", str(path), *flags, "--dry-run")
    assert result.exit_code == 2 and f"drop {flags[0]}" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_replay_leaves_how_steps_run_to_this_device(tmp_path: Path) -> None:
    recorded = {**_dry("kd", "resnet32x4", "resnet8x4"), "fast": True, "compile": True, "precision": "tf32"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(recorded))  # as a CUDA run records it
    here = _dry("--config", str(path))  # on this CPU: the reference path in fp32, as a new run here
    assert (here["fast"], here["compile"], here["precision"]) == (False, False, "fp32")
    path.write_text(json.dumps({**recorded, "precision": "bf16"}))
    assert _dry("--config", str(path), "--fast")["precision"] == "bf16"  # an explicit deviation is kept


def test_a_replay_refuses_bad_execution_values_and_takes_the_files_models(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_dry("kd", "resnet32x4", "resnet8x4"), "precision": "half"}))
    result = _invoke("train", "--config", str(path), "--dry-run")
    assert result.exit_code == 2 and "invalid precision" in result.output
    path.write_text(json.dumps(_dry("kd", "resnet32x4", "resnet8x4", "--lr", "0.02")))
    assert _dry("kd", "--config", str(path))["lr"] == 0.02  # the method named, the models from the file
    result = _invoke("train", "dkd", "--config", str(path), "--dry-run")
    assert result.exit_code == 2 and "method kd in the file, dkd on the command line" in result.output
