"""The CLI → core contract: each command hands its flags to one core function, pinned here.

As fastapi-cli's tests patch ``uvicorn.run``, each test patches the core function a command calls
and asserts the exact arguments a typical invocation passes (nothing trains, downloads or reads).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli import render
from dskd_cli.app import COMMANDS, app
from dskd_cli.commands import completions as completions_cmd
from dskd_core.config import Settings
from dskd_core.request import TrainRequest
from dskd_core.sweep import SweepRequest, SweepResult

runner = CliRunner()


class Recorder:
    """A stand-in for a core function: records its calls, returns ``value``."""

    def __init__(self, value: Any = None) -> None:
        self.value = value
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.value

    @property
    def call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DSKD_DEVICE", "DSKD_DATA_DIR", "DSKD_RUNS_DIR", "DSKD_TEACHERS_DIR", "DSKD_WORKERS", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)


def test_the_command_table_is_the_app() -> None:
    assert list(COMMANDS) == [
        "train",
        "eval",
        "quickstart",
        "presets",
        "models",
        "completions",
        "report",
        "runs",
        "sweep",
        "fetch-teachers",
    ]
    assert [c.name for c in app.registered_commands] == list(COMMANDS)


def test_train(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Recorder(SimpleNamespace(exit_code=0))
    monkeypatch.setattr("dskd_core.train.run.run_train", run)
    _invoke(
        "train",
        "kd",
        "resnet32x4",
        "resnet8x4",
        "-d",
        "cifar100",
        "--scales",
        "1,2",
        "--stand",
        "--epochs",
        "3",
        "--set",
        "lr=0.1",
        "--no-fast",
        "--nproc",
        "2",
        "--runs-dir",
        "out",
    )
    (request,), kwargs = run.call
    assert request == TrainRequest(
        method="kd",
        models=["resnet32x4", "resnet8x4"],
        dataset="cifar100",
        scales="1,2",
        stand=True,
        epochs=3,
        overrides=["lr=0.1"],
        fast=False,
        nproc=2,
        runs_dir=Path("out"),
    )
    assert request.model_fields_set == {
        "method",
        "models",
        "dataset",
        "scales",
        "stand",
        "epochs",
        "overrides",
        "fast",
        "nproc",
        "runs_dir",
    }
    assert kwargs == {
        "argv": [
            "train",
            "kd",
            "resnet32x4",
            "resnet8x4",
            "-d",
            "cifar100",
            "--scales",
            "1,2",
            "--stand",
            "--epochs",
            "3",
            "--set",
            "lr=0.1",
            "--no-fast",
            "--runs-dir",
            "out",
        ],
        "notify": render.note,
        "progress": render.progress_for,
    }


def test_train_request_resume_conflicts_are_the_flags_given() -> None:
    request = TrainRequest.given(
        method="runs/x", models=[], resume=True, dataset="cifar100", seed=0, stand=False, fast=False, epochs=9
    )
    assert request.model_fields_set == {"method", "resume", "dataset", "seed", "fast", "epochs"}
    assert request.resume_conflicts == ["--dataset", "--seed", "--fast/--no-fast"]


def test_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluate = Recorder({"top1": 1.0})
    monkeypatch.setattr("dskd_core.evaluation.evaluate_checkpoint", evaluate)
    result = _invoke("eval", "-m", "resnet8", "-c", "ck.safetensors", "-d", "digits", "-bs", "32", "--format", "json")
    assert result.stdout.strip().startswith("{")
    assert evaluate.call == (
        ("resnet8", Path("ck.safetensors"), "digits", Settings()),
        {"batch_size": 32, "image_size": None},
    )
    evaluate.calls.clear()
    _invoke("eval", "-c", "run_dir", "--format", "json")  # model and dataset: what the checkpoint records
    assert evaluate.call == ((None, Path("run_dir"), None, Settings()), {"batch_size": None, "image_size": None})


def test_quickstart(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Recorder("result")
    shown = Recorder()
    monkeypatch.setattr("dskd_core.quickstart.run_quickstart", run)
    monkeypatch.setattr(render, "quickstart_result", shown)
    _invoke("quickstart", "--epochs", "1", "--seeds", "2,3", "--per-class", "5", "--device", "cpu", "--runs-dir", "r")
    args, kwargs = run.call
    assert args == (Settings(device="cpu", runs_dir=Path("r")),)
    assert {k: v for k, v in kwargs.items() if k != "observer"} == {
        "teacher": "resnet20",
        "student": "resnet8",
        "epochs": 1,
        "seeds": [2, 3],
        "per_class": 5,
    }
    assert shown.call == (("result",), {})
    run.calls.clear()
    _invoke("quickstart", "--per-class", "0")  # every image: the plain digits recipe
    assert run.call[1]["per_class"] is None and run.call[1]["seeds"] == [0, 1, 2]


def test_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    select = Recorder([])
    monkeypatch.setattr("dskd_core.presets.select", select)
    _invoke("presets", "--method", "kd", "-d", "cifar100", "--source", "dskd", "--format", "json")
    assert select.call == (("kd", "cifar100", "dskd"), {})


def test_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    listed, shown = Recorder([]), Recorder(SimpleNamespace(path=tmp_path, config={}, summary={}, events=[]))
    monkeypatch.setattr("dskd_core.runs.listing.list_runs", listed)
    monkeypatch.setattr("dskd_core.runs.listing.show_run", shown)
    _invoke("runs", str(tmp_path), "--status", "finished", "--method", "kd", "-d", "cifar100", "--format", "json")
    assert listed.call == (([tmp_path],), {"status": "finished", "method": "kd", "dataset": "cifar100"})
    _invoke("runs", "show", str(tmp_path / "run"), "--events", "3")
    assert shown.call == ((tmp_path / "run", 3), {})


def test_models(monkeypatch: pytest.MonkeyPatch) -> None:
    describe = Recorder([])
    monkeypatch.setattr("dskd_core.models.registry.describe", describe)
    _invoke("models", "--params", "--zoo", "cifar", "--num-classes", "10")
    assert describe.call == (("cifar",), {"params": True, "num_classes": 10})


def test_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    generate = Recorder("# script\n")
    monkeypatch.setattr(completions_cmd, "generate", generate)
    assert _invoke("completions", "zsh").stdout == "# script\n"
    (shell, group), kwargs = generate.call
    assert (shell, kwargs) == ("zsh", {}) and set(group.commands) >= {"train", "sweep", "completions"}


def test_fetch_teachers(monkeypatch: pytest.MonkeyPatch) -> None:
    fetch = Recorder([])
    monkeypatch.setattr("dskd_core.teachers.fetch_teachers", fetch)
    _invoke("fetch-teachers", "--models", "resnet56,wrn_40_2", "--teachers-dir", "t", "--archive", "a.tar", "--force")
    assert fetch.call == (
        ("cifar100", Path("t")),
        {
            "models": ["resnet56", "wrn_40_2"],
            "url": None,
            "archive": Path("a.tar"),
            "force": True,
            "progress": False,
            "notify": fetch.call[1]["notify"],
        },
    )


def test_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[tuple[SweepRequest, Path]] = []

    def configs(self: SweepRequest, runs_dir: Path) -> list[Any]:
        requests.append((self, runs_dir))
        return []

    run = Recorder(SweepResult([], []))
    checked = Recorder()
    monkeypatch.setattr(SweepRequest, "configs", configs)
    monkeypatch.setattr("dskd_core.sweep.run_sweep", run)
    monkeypatch.setattr("dskd_core.sweep.check_sweep", checked)
    _invoke(
        "sweep",
        "kd",
        "resnet32x4",
        "resnet8x4",
        "--seeds",
        "0,1",
        "--stand",
        "on",
        "--epochs",
        "2",
        "--set",
        "lr=0.1",
        "--devices",
        "cuda:0, cuda:1",
        "--no-lockstep",
        "--no-fuse",
        "--runs-dir",
        "r",
    )
    assert requests == [
        (
            SweepRequest(
                method="kd",
                teacher="resnet32x4",
                student="resnet8x4",
                seeds="0,1",
                stand="on",
                epochs=2,
                overrides=["lr=0.1"],
            ),
            Path("r"),
        )
    ]
    assert checked.call == (([], Settings(runs_dir=Path("r")), ["cuda:0", "cuda:1"]), {})  # before any run
    args, kwargs = run.call
    assert args == ([], Settings(runs_dir=Path("r")))
    assert {k: v for k, v in kwargs.items() if k != "observer"} == {
        "lockstep": False,
        "fuse": False,
        "devices": ["cuda:0", "cuda:1"],
        "overwrite": False,
    }


def test_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    report = SimpleNamespace(skipped=[], unreadable=[])
    build = Recorder(report)
    shown = Recorder()
    monkeypatch.setattr("dskd_core.report.build_report", build)
    monkeypatch.setattr(render, "report_groups", shown)
    _invoke("report", str(tmp_path), "--metric", "last", "--teacher", "resnet56", "--format", "md")
    (paths, metric, hints), kwargs = build.call
    assert (paths, metric, kwargs) == ([tmp_path], "last", {})
    assert (hints.teacher, hints.student, hints.dataset, hints.method, hints.variant) == (
        "resnet56",
        None,
        None,
        None,
        None,
    )
    assert shown.call == ((report, "md"), {})
