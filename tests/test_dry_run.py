"""``--dry-run`` refuses what the run would refuse, before anything is written, and names what it would do:
the device, the teacher checkpoint (its header alone), the run folder's state, the models' zoo in
``sweep --dry-run``; the notes of the resolution (a warm-up longer than the run, every preset value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import save_student
from dskd_core.methods import get_method
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from tests.helpers import stderr_of

runner = CliRunner()


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


_stderr = stderr_of


def _errors(result: Any) -> list[str]:
    return [line for line in _stderr(result).splitlines() if line.startswith("error:")]


def _notes(result: Any) -> list[str]:
    return [line for line in _stderr(result).splitlines() if line.startswith("note:")]


def test_a_missing_teacher_is_the_runs_own_error_and_nothing_is_written(tmp_path: Path) -> None:
    args = ["train", "kd", "resnet8", "resnet8", "-d", "digits", "--epochs", "1"]
    dry, real = _invoke(*args, "--dry-run"), _invoke(*args)
    assert dry.exit_code == real.exit_code == 2, dry.output
    assert _errors(dry) == _errors(real) and len(_errors(dry)) == 1, dry.output
    assert "dskd fetch-teachers" in _errors(dry)[0] or "--teacher-ckpt" in _errors(dry)[0]
    assert not dry.stdout.strip()  # no config printed for a run that would not start
    assert not (tmp_path / "runs").exists()


def test_a_teacher_file_of_another_arch_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "teacher.safetensors"
    save_student(path, create_model("resnet8", 10), arch="resnet8", num_classes=10, extra={})
    args = ["train", "kd", "resnet14", "resnet8", "-d", "digits", "--teacher-ckpt", str(path)]
    result = _invoke(*args, "--dry-run")
    assert result.exit_code == 2 and "holds a resnet8, not a resnet14" in _errors(result)[0], result.output
    assert "--teacher-ckpt" in _errors(result)[0] and "-m " not in _errors(result)[0]  # train has no -m
    right = _invoke("train", "kd", "resnet8", "resnet8", "-d", "digits", "--teacher-ckpt", str(path), "--dry-run")
    assert right.exit_code == 0, right.output


def test_the_dry_run_names_the_run_folder_it_would_write(tmp_path: Path) -> None:
    result = _invoke("train", "vanilla", "resnet8", "-d", "digits", "--dry-run")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "runs" / "digits" / "resnet8" / "vanilla" / "seed0"
    assert f"note: dry run, nothing written: the run would train into {folder}" in _notes(result)
    assert not (tmp_path / "runs").exists()


def test_a_folder_holding_a_finished_run_is_refused_as_the_run_would(teacher_run: Path) -> None:
    runs = teacher_run.parents[3]  # <runs>/synthetic/resnet8/vanilla/seed0
    args = ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", str(runs), "--dry-run"]
    result = _invoke(*args)
    assert result.exit_code == 2 and "holds a finished run" in _errors(result)[0], result.output
    resumed = _invoke(*args, "--overwrite")
    assert resumed.exit_code == 0 and any("would replace the run in" in n for n in _notes(resumed))


def test_a_cuda_device_that_is_not_there_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ["train", "vanilla", "resnet8", "-d", "digits", "--dry-run", "--device"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = _invoke(*base, "cuda")
    assert result.exit_code == 2 and "no CUDA device is visible" in _errors(result)[0], result.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    result = _invoke(*base, "cuda:7")
    assert result.exit_code == 2, result.output
    assert _errors(result) == [
        "error: --device cuda:7 asked for, but 2 CUDA devices are visible (cuda:0 to cuda:1): pass one of them, or "
        "--device cuda"
    ]


def test_sweep_dry_run_refuses_a_model_of_another_zoo() -> None:
    result = _invoke("sweep", "kd", "ResNet50", "MobileNetV1", "-d", "cifar100", "--seeds", "0", "--dry-run")
    assert result.exit_code == 2, result.output
    assert len(_errors(result)) == 1 and "'MobileNetV1' belongs to the imagenet zoo" in _errors(result)[0]
    typo = _invoke("sweep", "kd", "resnet32x4", "resnet8x5", "--seeds", "0", "--dry-run")
    assert typo.exit_code == 2 and "did you mean resnet8x4" in _errors(typo)[0], typo.output


def test_a_warm_up_longer_than_the_run_is_a_note(fetched_teachers: Path) -> None:
    del fetched_teachers
    result = _invoke("train", "dkd", "resnet8", "resnet8", "-d", "digits", "--set", "warmup=20", "--dry-run")
    assert result.exit_code == 0, result.output
    note = (
        "note: warm-up of 20 epochs is longer than the run's 1: the distillation term never reaches full weight "
        "(1/20 of it in the last epoch); --set warmup=1 ramps it over the run, --set warmup=0 gives it full weight "
        "from the start"
    )
    assert note in _notes(result)
    for fix in ("warmup=1", "warmup=0"):
        fixed = _invoke("train", "dkd", "resnet8", "resnet8", "-d", "digits", "--set", fix, "--dry-run")
        assert fixed.exit_code == 0 and not any("warm-up" in n for n in _notes(fixed)), fixed.output
    # the run records it at its start, as the CRD negatives cap is (Distiller.describe)
    cfg = resolve_run_config(
        method="dkd", teacher="resnet8", student="resnet8", dataset="digits", overrides={"warmup": 20}
    )
    distiller = get_method("dkd")(create_model("resnet8", 10), create_model("resnet8", 10), cfg)
    assert distiller.describe()[0] == note.removeprefix("note: ")
    at = resolve_run_config(method="at", teacher="resnet8", student="resnet8", dataset="digits")
    at = at.model_copy(update={"warmup": 3})
    assert get_method("at").config_notes(at)[0].startswith("warm-up of 3 epochs")
    vanilla = resolve_run_config(method="vanilla", student="resnet8", dataset="digits", overrides={"warmup": 3})
    assert get_method("vanilla").config_notes(vanilla) == []  # nothing is distilled, nothing ramps


def test_the_preset_note_lists_every_value_it_applied(fetched_teachers: Path) -> None:
    del fetched_teachers
    args = ["train", "kd", "resnet32x4", "resnet8x4", "--stand", "--scales", "auto", "--lr", "0.1", "--dry-run"]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    (note,) = [n for n in _notes(result) if n.startswith("note: using the")]
    values = note.split("): ", 1)[1]
    assert values == (
        "batch_size 64, base_temp 2.0 and --kd-weight 9.0 (--stand), scales [1, 2] (--scales auto); overridden: "
        "lr 0.05 → 0.1"
    )
    plain = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--dry-run")
    (note,) = [n for n in _notes(plain) if n.startswith("note: using the")]
    assert note.endswith("): lr 0.05, batch_size 64; flags override it")


def test_an_empty_or_cut_short_teacher_file_is_refused_from_its_header(tmp_path: Path) -> None:
    """A dry run that accepted a file the run could not load would not be worth running."""
    good = tmp_path / "good.safetensors"
    save_student(good, create_model("resnet8", 10), arch="resnet8", num_classes=10, extra={})
    for name, data in (("empty", b""), ("cut", good.read_bytes()[:40]), ("text", b"not a checkpoint at all")):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(data)
        result = _invoke("train", "kd", "resnet8", "resnet8", "-d", "digits", "--teacher-ckpt", str(path), "--dry-run")
        assert result.exit_code == 2, result.output
        assert _errors(result) == [
            f"error: {path} is not a readable safetensors file (empty or cut short?): fetch "
            "or save it again, or pass another checkpoint"
        ], result.output


def test_resume_dry_run_says_what_the_resume_would_do(teacher_run: Path) -> None:
    """A finished run: nothing to train (the real --resume returns its result); an extended one: resumed."""
    finished = _invoke("train", "--resume", str(teacher_run), "--dry-run")
    assert finished.exit_code == 0, finished.output
    assert _notes(finished)[-1] == (
        f"note: dry run, nothing written: {teacher_run} holds this run finished; the run would train nothing"
    )
    longer = _invoke("train", "--resume", str(teacher_run), "--epochs", "2", "--dry-run")
    assert longer.exit_code == 0, longer.output
    assert _notes(longer)[-1] == f"note: dry run, nothing written: the run would resume {teacher_run}"


@pytest.mark.parametrize("method", ["dkd", "rld", "reviewkd"])
def test_the_one_epoch_digits_recipe_does_not_ramp_what_cifar_ramps_over_20_epochs(
    method: str, fetched_teachers: Path
) -> None:
    del fetched_teachers
    pair = {"teacher": "resnet20", "student": "resnet8"}
    assert resolve_run_config(method=method, dataset="cifar100", **pair).warmup == 20  # the reference's
    assert resolve_run_config(method=method, dataset="digits", **pair).warmup == 0
    assert resolve_run_config(method=method, dataset="digits", overrides={"warmup": 3}, **pair).warmup == 3
    result = _invoke("train", method, "resnet20", "resnet8", "-d", "digits", "--dry-run")
    assert result.exit_code == 0 and not any("warm-up" in n for n in _notes(result)), result.output


def test_sweep_refuses_a_missing_teacher_before_any_run(tmp_path: Path) -> None:
    """The real sweep would fail every row; the dry run and the sweep itself say why first (exit 2)."""
    for extra in ([], ["--teacher-ckpt", str(tmp_path / "nowhere")]):
        for dry in (["--dry-run"], []):
            result = _invoke("sweep", "kd", "resnet20", "resnet8", "-d", "digits", "--seeds", "0", *extra, *dry)
            assert result.exit_code == 2, result.output
            assert len(_errors(result)) == 1 and ("not found" in _errors(result)[0] or "nowhere" in _errors(result)[0])
            assert not (tmp_path / "runs").exists()
