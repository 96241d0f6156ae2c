"""A finished run is only "done" for the same config (issue #14.6).

``sweep``, ``train`` and the quickstart reuse (or refuse) a run folder by comparing its
``config.json`` with the request (``config_differences``); reusing writes nothing; a folder
holding another config is refused with one line naming the differing keys and the fixes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core import quickstart
from dskd_core.config import RunConfig
from dskd_core.errors import UsageError
from dskd_core.resolve import resolve_run_config
from dskd_core.runs.store import check_run_dir
from dskd_core.sweep import inspect_for as inspect_run_dir
from dskd_core.sweep import plan_rows, run_status, run_sweep
from tests.helpers import make_settings, teacher_header

runner = CliRunner()


def _stderr(result: Any) -> str:  # Click < 8.2 mixes stderr into output
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


def _snapshot(run_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a run folder, its lock file included, with its bytes and mtime."""
    files = [p for p in sorted(run_dir.rglob("*")) if p.is_file()]
    assert {"config.json", "log.jsonl", "summary.json"} <= {p.name for p in files}
    return {str(p.relative_to(run_dir)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _kd(teacher_ckpt: str | Path, **flags: Any) -> RunConfig:
    return resolve_run_config(
        method="kd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": 1, "teacher_ckpt": str(teacher_ckpt), **flags},
    )


def _vanilla(**flags: Any) -> RunConfig:
    return resolve_run_config(method="vanilla", student="resnet8", dataset="synthetic", flags={"epochs": 1, **flags})


# --------------------------------------------------------------------------- the comparison, no training


def _fake_run(cfg: RunConfig, run_dir: Path, *, status: str = "finished", epochs_done: int | None = None) -> None:
    """A run folder as ``fit`` leaves it, without training: config.json, summary.json, a train state,
    the student files and the log's epoch lines."""
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in ("train_state", "student_last", "student_best"):
        (run_dir / "checkpoints" / f"{name}.safetensors").write_bytes(b"")
    (run_dir / "config.json").write_text(cfg.to_json())
    done = cfg.epochs if epochs_done is None else epochs_done
    (run_dir / "log.jsonl").write_text(
        "".join(json.dumps({"event": "epoch", "epoch": e}) + "\n" for e in range(1, done + 1))
    )
    (run_dir / "summary.json").write_text(json.dumps({"status": status, "epochs_done": done, "best_acc": 12.5}))


def test_train_refusals_name_the_differing_keys_and_the_fixes(tmp_path: Path) -> None:
    saved = _vanilla(epochs=2)
    run_dir = tmp_path / "run"
    _fake_run(saved, run_dir)

    def refusal(cfg: RunConfig, *, resume: bool = False) -> str:
        with pytest.raises(UsageError) as err:
            check_run_dir(cfg, run_dir, resume=resume, overwrite=False)
        assert "\n" not in str(err.value)
        return str(err.value)

    assert refusal(_vanilla(epochs=2)).startswith(f"{run_dir} holds a finished run (best top-1 12.50)")
    assert refusal(_vanilla(epochs=2, lr=0.1, batch_size=32)) == (
        f"{run_dir} holds a run with another config (batch_size, lr differ): pass --overwrite to replace it, "
        "or --name to train this one beside it"
    )
    assert refusal(_vanilla(epochs=1)) == (  # a finished 2-epoch run is not the requested 1-epoch run
        f"{run_dir} holds a run with another config (epochs differs): pass --overwrite to replace it, "
        "or --name to train this one beside it"
    )
    assert "pass --resume to extend it, --overwrite to replace it" in refusal(_vanilla(epochs=3))
    # Keys that do not change the run: the run name, the preset's provenance, open execution keys.
    same = _vanilla(epochs=2).model_copy(update={"name": "other", "preset_source": "mdistiller", "fast": None})
    assert "holds a finished run" in refusal(same)
    check_run_dir(_vanilla(epochs=1, lr=0.3), run_dir, resume=False, overwrite=True)  # --overwrite: no refusal


def test_resume_comparison_keeps_its_messages(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fake_run(_vanilla(epochs=2).model_copy(update={"fast": False, "precision": "fp32", "compile": False}), run_dir)
    check_run_dir(_vanilla(epochs=5), run_dir, resume=True, overwrite=False)  # epochs may change on a resume
    with pytest.raises(UsageError, match=r"^--resume with a different config \(lr, seed changed\): drop those"):
        check_run_dir(_vanilla(epochs=2, lr=0.3, seed=1), run_dir, resume=True, overwrite=False)
    with pytest.raises(UsageError, match=r"--resume with 2 processes, but .* trained with 1: launch that many"):
        check_run_dir(_vanilla(epochs=2, world_size=2), run_dir, resume=True, overwrite=False)
    with pytest.raises(UsageError, match=r"different config \(fast changed\)"):
        check_run_dir(_vanilla(epochs=2, fast=True, precision="fp32"), run_dir, resume=True, overwrite=False)
    saved = json.loads((run_dir / "config.json").read_text())
    for key in ("fast", "precision", "compile", "sdd_weighting"):  # as an older dskd wrote it: the defaults
        del saved[key]
    (run_dir / "config.json").write_text(json.dumps(saved))
    check_run_dir(_vanilla(epochs=2, fast=True, precision="bf16"), run_dir, resume=True, overwrite=False)


def test_an_unfinished_run_is_refused_as_such_unless_its_config_differs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _fake_run(_vanilla(epochs=3), run_dir, status="running", epochs_done=1)
    with pytest.raises(UsageError, match="holds an unfinished run: pass --resume to continue it"):
        check_run_dir(_vanilla(epochs=5), run_dir, resume=False, overwrite=False)  # a resume may change epochs
    with pytest.raises(UsageError, match=r"another config \(lr differs\): pass --overwrite"):
        check_run_dir(_vanilla(epochs=3, lr=0.2), run_dir, resume=False, overwrite=False)


def test_run_status_and_the_dry_run_plan(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    finished, unfinished = _vanilla(epochs=2), _vanilla(epochs=4, seed=1)
    _fake_run(finished, finished.run_dir(runs))
    _fake_run(unfinished, unfinished.run_dir(runs), status="interrupted", epochs_done=2)
    assert run_status(finished, runs) == "done"
    assert run_status(_vanilla(epochs=2, lr=0.2), runs) == "conflict"  # not skipped as done
    assert run_status(_vanilla(epochs=1), runs) == "conflict"  # a finished 2-epoch run is not a 1-epoch run
    assert run_status(_vanilla(epochs=3), runs) == "resume"  # extended, as dskd train --resume --epochs 3
    assert run_status(unfinished, runs) == "resume"
    assert run_status(_vanilla(epochs=4, seed=1, aug=True), runs) == "conflict"  # not resumed silently
    assert run_status(_vanilla(epochs=1, seed=1), runs) == "conflict"  # 2 epochs done: cannot resume to 1
    assert run_status(_vanilla(epochs=2, seed=2), runs) == "new"
    rows = plan_rows([_vanilla(epochs=2, lr=0.2, aug=True), finished], runs)
    assert [(r["status"], r["differs"]) for r in rows] == [("conflict", ["lr", "aug"]), ("done", [])]
    assert plan_rows([_vanilla(epochs=2, lr=0.2)], runs, overwrite=True)[0]["status"] == "overwrite"
    kd = _kd(tmp_path / "teacher", epochs=2)
    _fake_run(kd, kd.run_dir(runs))
    teacher_header(tmp_path / "teacher", "resnet8", 100)  # the dry run reads the header only
    argv = "sweep kd resnet8 resnet8 -d synthetic --epochs 2 --lr 0.2 --seeds 0 --scales-grid 1 --dry-run".split()
    shown = runner.invoke(app, [*argv, "--teacher-ckpt", str(tmp_path / "teacher"), "--runs-dir", str(runs)])
    assert shown.exit_code == 0, shown.output
    assert "conflict (lr differs)" in shown.stdout and "--overwrite" in shown.stdout  # kd
    assert "new" in shown.stdout  # kd+ls


# --------------------------------------------------------------------------- sweeps


def test_sweep_refuses_a_finished_run_of_another_config_before_training_anything(
    teacher_run: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path)
    first = run_sweep([_kd(teacher_run)], settings)
    assert [r.status for r in first.rows] == ["finished"]
    run_dir = first.rows[0].run_dir
    before = _snapshot(run_dir)
    other, beside = _kd(teacher_run, lr=0.1), _kd(teacher_run, lr=0.1, seed=1)
    with pytest.raises(UsageError) as err:
        run_sweep([beside, other], settings)
    assert str(err.value) == (
        f"{run_dir} holds a run with another config (lr differs): pass --overwrite to replace it (the sweep "
        "trains nothing until then), or another --runs-dir to train this sweep beside it"
    )
    assert _snapshot(run_dir) == before and not beside.run_dir(settings.runs_dir).exists()  # nothing trained
    replaced = run_sweep([beside, other], settings, overwrite=True)
    assert [r.status for r in replaced.rows] == ["finished", "finished"]
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.1
    events = [json.loads(line)["event"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert events.count("start") == 1 and "resume" not in events  # trained afresh, not appended to


def test_sweep_reports_an_unfinished_run_of_another_config_up_front(teacher_run: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    cfg = _kd(teacher_run)
    run_dir = run_sweep([cfg], settings).rows[0].run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # killed after epoch 1
    cli = "sweep kd resnet8 resnet8 -d synthetic --seeds 0 --scales-grid 1 --stand off --epochs 2".split()
    cli += ["--teacher-ckpt", str(teacher_run), "--runs-dir", str(settings.runs_dir)]
    refused = runner.invoke(app, [*cli, "--set", "temperature=2"])
    assert refused.exit_code == 2
    message = _stderr(refused).strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in refused.output
    assert f"{run_dir} holds a run with another config (temperature differs): pass --overwrite" in message
    resumed = runner.invoke(app, [*cli, "--format", "json"])  # the same config: resumed to 2 epochs
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["runs"][0]["status"] == "finished"
    assert json.loads((run_dir / "summary.json").read_text())["epochs_done"] == 2


def test_a_reused_run_is_byte_identical_and_another_spelling_of_its_config_is_reused(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs dir and teacher checkpoint relative on the first sweep, absolute on the next: the same runs."""
    monkeypatch.chdir(tmp_path)
    relative_ckpt = os.path.relpath(teacher_run, tmp_path)
    assert not Path(relative_ckpt).is_absolute()
    relative = make_settings(Path("."))
    first = run_sweep([_kd(relative_ckpt), _kd(relative_ckpt, stand=True)], relative)
    assert [r.status for r in first.rows] == ["finished", "finished"]
    absolute = make_settings(tmp_path)
    run_dirs = [absolute.runs_dir / r.run_dir.relative_to("runs") for r in first.rows]
    # An older dskd recorded the checkpoint as given: a relative path in config.json.
    saved = json.loads((run_dirs[1] / "config.json").read_text())
    (run_dirs[1] / "config.json").write_text(json.dumps({**saved, "teacher_ckpt": relative_ckpt}, indent=2))
    before = [_snapshot(d) for d in run_dirs]
    again = run_sweep([_kd(teacher_run.resolve()), _kd(teacher_run.resolve(), stand=True)], absolute)
    assert [r.status for r in again.rows] == ["done", "done"]
    assert [_snapshot(d) for d in run_dirs] == before
    # The CLI, once more: skipped, and still not a byte changed.
    cli = "sweep kd resnet8 resnet8 -d synthetic --seeds 0 --scales-grid 1 --epochs 1".split()
    cli += ["--teacher-ckpt", relative_ckpt, "--runs-dir", str(absolute.runs_dir)]
    result = runner.invoke(app, cli)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("skipped (done)") == 2
    assert [_snapshot(d) for d in run_dirs] == before


# --------------------------------------------------------------------------- dskd train


def test_train_refuses_another_config_in_one_line_and_overwrite_or_name_fix_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", str(runs)]
    assert runner.invoke(app, args).exit_code == 0
    run_dir = runs / "synthetic" / "resnet8" / "vanilla" / "seed0"
    before = _snapshot(run_dir)
    refused = runner.invoke(app, [*args, "--lr", "0.1", "--set", "weight_decay=0.001"])
    assert refused.exit_code == 2
    message = _stderr(refused).strip()
    assert message == (
        f"error: {run_dir} holds a run with another config (lr, weight_decay differ): pass --overwrite to replace "
        "it, or --name to train this one beside it"
    )
    assert _snapshot(run_dir) == before  # nothing written, nothing lost
    beside = runner.invoke(app, [*args, "--lr", "0.1", "--name", "lr0.1"])
    assert beside.exit_code == 0, beside.output
    assert (runs / "synthetic" / "resnet8" / "lr0.1" / "seed0" / "summary.json").exists()
    assert _snapshot(run_dir) == before
    replaced = runner.invoke(app, [*args, "--lr", "0.1", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.1


def test_train_sees_the_same_run_through_another_spelling_of_the_teacher_checkpoint(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["train", "kd", "resnet8", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", "runs"]
    assert runner.invoke(app, [*args, "--teacher-ckpt", os.path.relpath(teacher_run, tmp_path)]).exit_code == 0
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "runs"), "--teacher-ckpt", str(teacher_run)])
    assert again.exit_code == 2
    assert "holds a finished run" in _stderr(again) and "another config" not in _stderr(again)


# --------------------------------------------------------------------------- the quickstart


def test_quickstart_reuses_its_runs_from_the_default_and_an_absolute_runs_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dskd quickstart``, then ``dskd quickstart --runs-dir /abs/runs``: the second reuses all three,
    writing nothing (a one-pass epoch and a resnet14 teacher here, to stay fast)."""
    original = quickstart.quickstart_configs

    def one_pass(**kwargs: Any) -> list[tuple[str, RunConfig]]:
        return original(**{**kwargs, "overrides": {"epoch_passes": 1}})

    monkeypatch.setattr(quickstart, "quickstart_configs", one_pass)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSKD_RUNS_DIR")  # the default runs dir: ./runs
    args = ["quickstart", "--epochs", "1", "--teacher", "resnet14", "--seeds", "0"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    run_dirs = sorted(p.parent for p in (tmp_path / "runs").rglob("summary.json"))
    assert len(run_dirs) == 4  # the teacher; the student from scratch, by KD, by DSKD
    before = [_snapshot(d) for d in run_dirs]
    again = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs")])
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing the finished") == 4 and "starting" not in again.output
    assert [_snapshot(d) for d in run_dirs] == before
    # Another recipe in the same folders is refused by name, not silently reused or resumed.
    monkeypatch.setattr(quickstart, "quickstart_configs", original)
    other = runner.invoke(app, args)
    assert other.exit_code == 2 and "another config (epoch_passes differs)" in _stderr(other)
    assert [_snapshot(d) for d in run_dirs] == before


def test_a_damaged_or_unreadable_finished_run_is_never_taken_as_done(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cfg = _vanilla(epochs=2)
    run_dir = cfg.run_dir(runs)
    _fake_run(cfg, run_dir)
    assert run_status(cfg, runs) == "done"
    (run_dir / "checkpoints" / "student_last.safetensors").unlink()  # as a kill after the commit leaves it
    assert run_status(cfg, runs) == "resume"  # resumed, so the student file is re-derived
    _fake_run(cfg, other := tmp_path / "other")
    (other / "config.json").write_text("{cut")
    folder = inspect_run_dir(cfg, other)
    assert folder.differences == ("config.json",) and folder.plan(cfg.epochs) == "conflict"
    with pytest.raises(UsageError, match=r"config\.json cannot be read"):
        check_run_dir(cfg, other, resume=False, overwrite=False)
    with pytest.raises(UsageError, match=r"^cannot resume .*: its config\.json cannot be read"):
        check_run_dir(cfg, other, resume=True, overwrite=False)


def test_an_old_bf16_run_is_not_the_default_run_on_cuda(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cfg = _vanilla(epochs=2)
    _fake_run(cfg.model_copy(update={"fast": True, "precision": "bf16", "compile": True}), cfg.run_dir(runs))
    # Resolved for a CUDA device, the request is fp32/TF32: the bf16 run is another run.
    assert inspect_run_dir(cfg, cfg.run_dir(runs), torch.device("cuda")).differences == ("precision",)
    assert inspect_run_dir(
        cfg.model_copy(update={"precision": "bf16"}), cfg.run_dir(runs), torch.device("cuda")
    ).reusable
