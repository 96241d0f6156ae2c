"""Experiment trackers (``--log tensorboard,wandb``): the event files and the W&B offline run read back.

TensorBoard's files are read with TensorBoard's own reader; W&B runs in offline mode (no network) and its
``run-<id>.wandb`` file is read record by record (LevelDB log framing of W&B's protobuf records).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.config import Settings
from dskd_core.errors import UsageError
from dskd_core.trackers import check_available, parse_log
from dskd_core.train.engine import fit
from dskd_core.train.lockstep import fit_lockstep
from tests.helpers import make_settings, vanilla_config

runner = CliRunner()


_vanilla = vanilla_config


def _with_log(settings: Settings, log: str) -> Settings:
    return settings.model_copy(update={"log": log})


def _epoch_lines(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return [e for e in lines if e["event"] == "epoch"]


def _steps_per_epoch(run_dir: Path) -> int:
    lines = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    return int(next(e for e in lines if e["event"] in ("start", "resume"))["steps_per_epoch"])


# --------------------------------------------------------------------------- parsing and extras


def test_log_names_parse_comma_separated_and_repeated_and_unknown_ones_are_refused() -> None:
    assert parse_log("wandb,tensorboard") == ("tensorboard", "wandb")
    assert parse_log(["tensorboard", "TensorBoard, wandb"]) == ("tensorboard", "wandb")
    assert parse_log("") == () and parse_log(None) == ()
    with pytest.raises(UsageError, match="unknown tracker 'tensorbord' in --log: use tensorboard or wandb"):
        parse_log("tensorbord")


def test_dskd_log_env_sets_the_trackers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSKD_LOG", "tensorboard")
    assert parse_log(Settings().log) == ("tensorboard",)


@pytest.mark.parametrize(("name", "module"), [("tensorboard", "tensorboard"), ("wandb", "wandb")])
def test_a_missing_extra_is_one_line_naming_the_pip_install_and_nothing_is_written(
    name: str, module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # Python's own way to make a package unimportable
    with pytest.raises(UsageError, match=rf"--log {name} needs the {module} package: pip install 'dskd\[{name}\]'"):
        check_available([name])
    result = runner.invoke(app, ["train", "vanilla", "resnet8", "-d", "synthetic", "--log", name])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"error: --log {name} needs the {module} package: pip install 'dskd[{name}]'"]
    assert not (tmp_path / "runs").exists()


def test_an_unknown_tracker_is_refused_by_train_and_sweep_before_anything_runs(tmp_path: Path) -> None:
    for argv in (
        ["train", "vanilla", "resnet8", "-d", "synthetic", "--log", "mlflow"],
        ["sweep", "kd", "resnet8", "resnet8", "-d", "synthetic", "--log", "mlflow", "--dry-run"],
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "unknown tracker 'mlflow' in --log: use tensorboard or wandb" in result.output
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- TensorBoard


def _tensorboard(run_dir: Path) -> Any:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_event_files_hold_the_epoch_metrics_the_loss_curve_and_the_config(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    run_dir = fit(_vanilla(2), _with_log(make_settings(tmp_path), "tensorboard")).run_dir
    acc = _tensorboard(run_dir)
    steps, lines = _steps_per_epoch(run_dir), _epoch_lines(run_dir)
    scalars = set(acc.Tags()["scalars"])
    assert {
        "train/loss",
        "train/loss_ce",
        "train/acc_top1",
        "train/lr",
        "test/acc_top1",
        "test/acc_top5",
        "test/loss",
        "test/best_acc_top1",
        "time/epoch_s",
        "train/loss_curve",
    } <= scalars
    top1 = acc.Scalars("test/acc_top1")
    assert [e.step for e in top1] == [steps, 2 * steps]
    assert [e.value for e in top1] == pytest.approx([e["test_acc"] for e in lines], abs=1e-4)
    assert [e.value for e in acc.Scalars("train/lr")] == pytest.approx([e["lr"] for e in lines])
    curve = acc.Scalars("train/loss_curve")
    expected = [v for e in lines for v in e["train_loss_curve"]]
    assert len(curve) == len(expected) > 2
    assert [e.value for e in curve] == pytest.approx(expected, rel=1e-5)
    assert [e.step for e in curve] == sorted(e.step for e in curve) and curve[-1].step == 2 * steps
    hparams = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(hparams)
    start = hparams["_hparams_/session_start_info"].decode(errors="replace")
    assert "resnet8" in start and "synthetic" in start  # the resolved config's values
    config_text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"method": "vanilla"' in config_text


def test_a_resumed_run_continues_its_tensorboard_curves_without_duplicates(tmp_path: Path) -> None:
    """Even where an epoch is trained again (the newest state failed verification), each step is there once."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    settings = _with_log(make_settings(tmp_path), "tensorboard")
    run_dir = fit(_vanilla(2), settings).run_dir
    state = run_dir / "checkpoints" / "train_state.safetensors"
    raw = bytearray(state.read_bytes())
    raw[-100] ^= 0xFF  # the epoch-2 commit is refused: the resume redoes epoch 2 from epoch 1's state
    state.write_bytes(bytes(raw))
    fit(_vanilla(3), settings, resume=True)
    acc = _tensorboard(run_dir)
    steps = _steps_per_epoch(run_dir)
    top1 = acc.Scalars("test/acc_top1")
    assert [e.step for e in top1] == [steps, 2 * steps, 3 * steps]
    assert [e.value for e in top1] == pytest.approx([e["test_acc"] for e in _epoch_lines(run_dir)], abs=1e-4)
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2


def test_lockstep_students_each_write_their_own_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    settings = _with_log(make_settings(tmp_path), "tensorboard")
    cfgs = [_vanilla(1, lr=0.05, name="lr0.05"), _vanilla(1, lr=0.1, name="lr0.1")]
    result = fit_lockstep(cfgs, settings)
    dirs = [r.run_dir for r in result.results if not isinstance(r, Exception)]
    assert len(dirs) == 2 and dirs[0] != dirs[1]
    lrs = [_tensorboard(d).Scalars("train/lr")[0].value for d in dirs]
    assert lrs == pytest.approx([0.05, 0.1])


def test_overwrite_removes_the_replaced_runs_tracker_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    settings = _with_log(make_settings(tmp_path), "tensorboard")
    run_dir = fit(_vanilla(1), settings).run_dir
    fit(_vanilla(1), settings.model_copy(update={"log": ""}), overwrite=True)
    assert not (run_dir / "tensorboard").exists()


# --------------------------------------------------------------------------- W&B, offline


def _wandb_records(run_dir: Path) -> list[list[Any]]:
    """Per offline run directory (in the order written): its records, parsed."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'dskd[wandb]'")
    from wandb.proto import wandb_internal_pb2 as pb

    out = []
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        data = path.read_bytes()
        assert data[:4] == b":W&B"
        pos, block, chunks, pending = 7, 32768, [], b""
        while pos + 7 <= len(data):
            if block - pos % block < 7:  # a block's tail too short for a header is padding
                pos += block - pos % block
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
            if kind == 1:  # FULL
                chunks.append(payload)
            elif kind == 2:  # FIRST
                pending = payload
            elif kind == 3:  # MIDDLE
                pending += payload
            elif kind == 4:  # LAST
                chunks.append(pending + payload)
        records = []
        for chunk in chunks:
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
        out.append(records)
    return out


def _history(records: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        if r.WhichOneof("record_type") == "history":
            rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in r.history.item})
    return rows


def _run_record(records: list[Any]) -> Any:
    return next(r.run for r in records if r.WhichOneof("record_type") == "run")


def test_wandb_offline_run_is_named_grouped_configured_and_holds_every_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'dskd[wandb]'")
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = fit(_vanilla(2, seed=1), _with_log(make_settings(tmp_path), "wandb")).run_dir
    (records,) = _wandb_records(run_dir)
    run = _run_record(records)
    assert run.display_name == "synthetic/resnet8/vanilla/seed1"
    assert run.run_group == "synthetic/resnet8/vanilla"  # the seeds of a variant aggregate
    assert run.run_id == json.loads((run_dir / "trackers.json").read_text())["wandb_id"]
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["method"] == "vanilla" and config["seed"] == 1 and config["epochs"] == 2
    rows = _history(records)
    epochs = [r for r in rows if "epoch" in r]
    assert [r["epoch"] for r in epochs] == [1, 2]
    lines = _epoch_lines(run_dir)
    assert [r["test/acc_top1"] for r in epochs] == pytest.approx([e["test_acc"] for e in lines])
    assert [r["train/loss_ce"] for r in epochs] == pytest.approx([e["loss_ce"] for e in lines])
    curve = [r["train/loss_curve"] for r in rows if "train/loss_curve" in r]
    assert curve == pytest.approx([v for e in lines for v in e["train_loss_curve"]])
    exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
    assert exits == [0]


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'dskd[wandb]'")
    monkeypatch.setenv("WANDB_MODE", "offline")
    settings = _with_log(make_settings(tmp_path), "wandb")
    run_dir = fit(_vanilla(1), settings).run_dir
    fit(_vanilla(2), settings, resume=True)
    first, second = _wandb_records(run_dir)
    assert _run_record(first).run_id == _run_record(second).run_id
    assert [r["epoch"] for r in _history(first) if "epoch" in r] == [1]
    assert [r["epoch"] for r in _history(second) if "epoch" in r] == [2]
    # a new run in the same place (--overwrite) is a new W&B run
    kept = _run_record(first).run_id
    fit(_vanilla(1), settings, overwrite=True)
    (fresh,) = _wandb_records(run_dir)
    assert _run_record(fresh).run_id != kept


def test_train_cli_logs_to_both_trackers_and_wandb_says_nothing(tmp_path: Path) -> None:
    """A real `dskd train` process: W&B's service writes to the process's own stderr, which only a subprocess
    test sees."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'dskd[wandb]'")
    import subprocess

    from tests.helpers import DSKD, subprocess_env

    env = {**subprocess_env(), "WANDB_MODE": "offline", "DSKD_RUNS_DIR": str(tmp_path / "runs")}
    cmd = [*DSKD, "train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--log", "tensorboard"]
    done = subprocess.run([*cmd, "--log", "wandb"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [line for line in (done.stdout + done.stderr).splitlines() if "wandb" in line.lower()]
    run_dir = tmp_path / "runs" / "synthetic" / "resnet8" / "vanilla" / "seed0"
    assert _tensorboard(run_dir).Scalars("test/acc_top1")
    assert len(_wandb_records(run_dir)) == 1


# --------------------------------------------------------------------------- failures and late starts


def test_a_tracker_that_cannot_start_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    settings = _with_log(make_settings(tmp_path), "tensorboard")
    run_dir = _vanilla(1).run_dir(settings.runs_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "tensorboard").write_text("a file where the event folder goes")
    with pytest.raises(Exception, match="tensorboard"):
        fit(_vanilla(1), settings)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "tensorboard" in summary["error"]
    assert json.loads((run_dir / "log.jsonl").read_text().splitlines()[-1])["event"] == "failed"


def test_online_wandb_without_a_login_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """W&B's own init would stop at an interactive login menu; dskd names the fixes instead (exit 2)."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'dskd[wandb]'")
    import subprocess

    from tests.helpers import DSKD, subprocess_env

    env = {k: v for k, v in subprocess_env().items() if not k.startswith("WANDB_")}
    env |= {"HOME": str(tmp_path / "home"), "DSKD_RUNS_DIR": str(tmp_path / "runs")}
    (tmp_path / "home").mkdir()
    cmd = [*DSKD, "train", "vanilla", "resnet8", "-d", "synthetic", "--log", "wandb"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: --log wandb: no W&B login on this machine: run `wandb login` (or set WANDB_API_KEY), or set "
        "WANDB_MODE=offline to log locally"
    ]
    assert not (tmp_path / "runs").exists()


def test_a_resume_that_adds_tensorboard_writes_the_config_once(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'dskd[tensorboard]'")
    settings = make_settings(tmp_path)
    run_dir = fit(_vanilla(1), settings).run_dir
    fit(_vanilla(2), _with_log(settings, "tensorboard"), resume=True)
    acc = _tensorboard(run_dir)
    steps = _steps_per_epoch(run_dir)
    assert [e.step for e in acc.Scalars("test/acc_top1")] == [2 * steps]  # the epochs it saw
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")
    assert acc.Tensors("config/text_summary")
