"""Reliability: kill-anywhere resume, atomic state with fallback, run locking, guards, bad input."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import load_tensors, save_student
from dskd_core.config import parse_scales
from dskd_core.errors import DskdError, RunLocked, StorageError, UsageError
from dskd_core.models import create_model
from dskd_core.resolve import parse_overrides, resolve_run_config
from dskd_core.runlock import RunLock
from dskd_core.train import fit
from tests.helpers import DSKD, make_settings, subprocess_env


def _vanilla(epochs: int = 2, **flags: object):
    return resolve_run_config(
        method="vanilla",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": epochs, "deterministic": True, **flags},
    )


def _weights(run_dir: Path, name: str = "student_last.safetensors") -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "checkpoints" / name)[0]


def _assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _epochs_logged(run_dir: Path) -> list[int]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(x)["epoch"] for x in lines if '"event": "epoch"' in x]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted deterministic 3-epoch run to compare resumed runs against."""
    return fit(_vanilla(3), make_settings(tmp_path_factory.mktemp("straight"))).run_dir


# 1. Kill-anywhere resume


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_bit_identical(tmp_path: Path) -> None:
    """A real process killed with SIGKILL several times (mid-epoch, mid-write), resumed each time."""
    env = subprocess_env()
    base = [
        *DSKD,
        "train",
        "vanilla",
        "resnet8",
        "-d",
        "synthetic",
        "--epochs",
        "6",
        "--deterministic",
        "--set",
        "lr_decay_epochs=[4]",
    ]
    straight = tmp_path / "straight"
    subprocess.run([*base, "--runs-dir", str(straight)], env=env, check=True, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    rng = random.Random(7)
    for attempt in range(3):
        extra = ["--resume"] if attempt else []
        proc = subprocess.Popen(
            [*base, "--runs-dir", str(killed), *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(2.5, 7.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finish = subprocess.run(
        [*base, "--runs-dir", str(killed), "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert finish.returncode == 0, finish.stderr
    run = Path("synthetic") / "resnet8" / "vanilla" / "seed0"
    _assert_bit_identical(_weights(straight / run), _weights(killed / run))
    assert _epochs_logged(killed / run) == [1, 2, 3, 4, 5, 6]
    summary = json.loads((killed / run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 6


def test_resume_after_an_epoch_is_bit_identical_and_restores_every_rng(straight_run: Path, tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path)
    fit(_vanilla(1), settings_)
    saved_py, saved_np = random.getstate(), np.random.get_state()[1].copy()  # as committed after epoch 1
    random.seed(999)
    np.random.seed(999)
    fit(_vanilla(2), settings_, resume=True)
    assert random.getstate() == saved_py and np.array_equal(np.random.get_state()[1], saved_np)
    result = fit(_vanilla(3), settings_, resume=True)
    _assert_bit_identical(_weights(straight_run), _weights(result.run_dir))


# 2. Atomic state and fallback


def test_corrupted_newest_state_falls_back_to_the_previous_one(straight_run: Path, tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path)
    run_dir = fit(_vanilla(2), settings_).run_dir
    state = run_dir / "checkpoints" / "train_state.safetensors"
    raw = bytearray(state.read_bytes())
    raw[-100] ^= 0xFF  # one flipped byte in the data section
    state.write_bytes(bytes(raw))
    result = fit(_vanilla(3), settings_, resume=True)
    events = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert any(e["event"] == "fallback" and "digest mismatch" in e["reason"] for e in events)
    assert _epochs_logged(run_dir) == [1, 2, 3]  # epoch 2 was redone, not logged twice
    _assert_bit_identical(_weights(straight_run), _weights(result.run_dir))


def test_kill_between_commit_and_derived_files_is_repaired(tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path)
    run_dir = fit(_vanilla(2), settings_).run_dir
    # As if killed right after committing epoch 2: student_last and the log line of epoch 2 missing,
    # plus a line cut in half.
    (run_dir / "checkpoints" / "student_last.safetensors").unlink()
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    kept = [x for x in lines if '"epoch": 2' not in x and '"event": "end"' not in x]
    (run_dir / "log.jsonl").write_text("\n".join(kept) + '\n{"event": "epo')
    fit(_vanilla(2), settings_, resume=True)
    assert _epochs_logged(run_dir) == [1, 2]
    _, meta = load_tensors(run_dir / "checkpoints" / "student_last.safetensors")
    assert meta["epoch"] == "2"


def test_only_the_previous_state_left_still_resumes(tmp_path: Path) -> None:
    """A kill between the two renames of a state write leaves only the previous state."""
    settings_ = make_settings(tmp_path)
    run_dir = fit(_vanilla(2), settings_).run_dir
    ckpt = run_dir / "checkpoints"
    os.replace(ckpt / "train_state.safetensors", ckpt / "train_state.prev.safetensors")
    result = fit(_vanilla(2), settings_, resume=True)
    assert result.summary["epochs_done"] == 2 and _epochs_logged(run_dir) == [1, 2]


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_ = make_settings(tmp_path)
    run_dir = fit(_vanilla(1), settings_).run_dir
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if os.fstat(fd).st_size > 10_000:  # a checkpoint, not a small JSON file
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    result = CliRunner().invoke(
        app,
        [
            "train",
            "vanilla",
            "resnet8",
            "-d",
            "synthetic",
            "--epochs",
            "2",
            "--deterministic",
            "--resume",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert result.exit_code == StorageError.exit_code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "Traceback" not in result.output
    monkeypatch.setattr(os, "fsync", real_fsync)
    _, meta = load_tensors(run_dir / "checkpoints" / "train_state.safetensors")
    assert json.loads(meta["progress"])["epoch"] == 1
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")]


# 3. Run locking and finished runs


def test_a_live_owner_blocks_a_second_train_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path)
    cfg = _vanilla(1)
    run_dir = cfg.run_dir(settings_.runs_dir)
    with RunLock(run_dir), pytest.raises(RunLocked, match="in use by pid"):
        fit(cfg, settings_)
    (run_dir / ".lock").write_text("pid 999999 on a-dead-host\n")  # stale: nobody holds the flock
    assert fit(cfg, settings_).summary["status"] == "finished"


def test_concurrent_trainings_on_one_run_directory(tmp_path: Path) -> None:
    env = subprocess_env()
    cmd = [
        *DSKD,
        "train",
        "vanilla",
        "resnet8",
        "-d",
        "synthetic",
        "--epochs",
        "12",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "runs" / "synthetic" / "resnet8" / "vanilla" / "seed0" / ".lock"
    deadline = time.time() + 60
    while not (lock.exists() and lock.read_text().startswith("pid")) and time.time() < deadline:
        time.sleep(0.1)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    first.wait(timeout=300)
    assert first.returncode == 0, first.stderr.read() if first.stderr else ""
    assert second.returncode == RunLocked.exit_code
    assert "in use by pid" in second.stderr and len(second.stderr.strip().splitlines()) == 1


def test_finished_run_needs_overwrite_and_resume_run_dir_form(tmp_path: Path) -> None:
    runs = str(tmp_path / "runs")
    args = ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", runs]
    assert CliRunner().invoke(app, args).exit_code == 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0
    run_dir = tmp_path / "runs" / "synthetic" / "resnet8" / "vanilla" / "seed0"
    more = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--epochs", "2"])
    assert more.exit_code == 0, more.output
    assert _epochs_logged(run_dir) == [1, 2]
    bad = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--lr", "0.3"])
    assert bad.exit_code == 2 and "drop --lr" in bad.output


# 4. NaN guard through the CLI


def test_non_finite_loss_exits_3_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dskd_core.methods.vanilla as vanilla_module

    monkeypatch.setattr(vanilla_module, "cross_entropy", lambda logits, target: logits.sum(-1) * float("inf"))
    result = CliRunner().invoke(
        app, ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", str(tmp_path / "runs")]
    )
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 3 and len(errors) == 1 and "loss term loss_ce is" in errors[0]
    assert "Traceback" not in result.output


# 6. The bad-input matrix: one row each, one line, documented exit code


@pytest.fixture(scope="module")
def digits_student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "resnet8_digits.safetensors"
    save_student(path, create_model("resnet8", 10), arch="resnet8", num_classes=10, extra={})
    return path


def _bad_inputs(tmp: Path, student10: Path) -> list[tuple[str, list[str], int, str]]:
    truncated = tmp / "truncated.safetensors"
    truncated.write_bytes(student10.read_bytes()[:500])
    not_st = tmp / "notes.safetensors"
    not_st.write_text("hello")
    evil = tmp / "evil.pth"

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {tmp / 'pwned'}",))

    torch.save({"model": Exploit()}, evil)
    locked_dir = tmp / "readonly"
    locked_dir.mkdir()
    locked_dir.chmod(0o500)
    return [
        ("unknown model", ["train", "kd", "resnet32x4", "resnet8x5", "--dry-run"], 2, "did you mean resnet8x4"),
        ("unknown method", ["train", "kdd", "resnet32x4", "resnet8x4", "--dry-run"], 2, "did you mean kd"),
        ("unknown dataset", ["train", "vanilla", "resnet8", "-d", "cifar10", "--dry-run"], 2, "did you mean cifar100"),
        (
            "malformed scales",
            ["train", "kd", "resnet32x4", "resnet8x4", "--scales", "1,,x", "--dry-run"],
            2,
            "--scales",
        ),
        (
            "impossible scales",
            ["train", "kd", "resnet32x4", "resnet8x4", "--scales", "2,4", "--dry-run"],
            2,
            "contains 1",
        ),
        (
            "class counts differ",
            ["train", "kd", "resnet8", "resnet8", "-d", "synthetic", "--epochs", "1", "--teacher-ckpt", str(student10)],
            2,
            "10 classes but the dataset has 100",
        ),
        ("wrong architecture", ["eval", "-m", "resnet20", "-c", str(student10), "-d", "digits"], 2, "holds a resnet8"),
        ("truncated checkpoint", ["eval", "-m", "resnet8", "-c", str(truncated), "-d", "digits"], 2, "not a readable"),
        ("not safetensors", ["eval", "-m", "resnet8", "-c", str(not_st), "-d", "digits"], 2, "not a readable"),
        ("malicious pickle", ["eval", "-m", "resnet8", "-c", str(evil), "-d", "digits"], 2, "cannot be read safely"),
        ("missing dataset", ["train", "vanilla", "resnet8", "--epochs", "1"], 2, "cifar-100-python/"),
        ("zero epochs", ["train", "vanilla", "resnet8", "--epochs", "0", "--dry-run"], 2, "epochs"),
        ("negative batch", ["train", "vanilla", "resnet8", "--batch-size", "-4", "--dry-run"], 2, "batch-size"),
        ("zero lr", ["train", "vanilla", "resnet8", "--lr", "0", "--dry-run"], 2, "lr"),
        (
            "unwritable runs dir",
            ["train", "vanilla", "resnet8", "-d", "synthetic", "--epochs", "1", "--runs-dir", str(locked_dir)],
            2,
            "writable --runs-dir",
        ),
        ("path separator in name", ["train", "vanilla", "resnet8", "--name", "a/b", "--dry-run"], 2, "plain folder"),
        ("dot-dot in name", ["train", "vanilla", "resnet8", "--name", "..", "--dry-run"], 2, "plain folder"),
    ]


def test_bad_input_matrix(tmp_path: Path, digits_student: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere: make the unwritable dir a file path instead
        pass
    failures = []
    for label, args, code, fragment in _bad_inputs(tmp_path, digits_student):
        if label == "unwritable runs dir" and os.geteuid() == 0:
            (tmp_path / "a-file").write_text("x")
            args = [*args[:-1], str(tmp_path / "a-file")]
        result = CliRunner().invoke(app, args)
        out = result.output.strip()
        if result.exit_code != code or fragment not in out or len(out.splitlines()) != 1 or "Traceback" in out:
            failures.append((label, result.exit_code, out[:300]))
    assert not failures, failures
    assert not (tmp_path / "pwned").exists()


def test_debug_shows_the_traceback() -> None:
    result = CliRunner().invoke(app, ["--debug", "train", "kd", "resnet32x4", "resnet8x5", "--dry-run"])
    assert result.exit_code == 2 and "Traceback" in result.output


# 7. Property-based: parsing validates or fails with a usage error, never crashes


@given(st.text(max_size=20))
def test_parse_scales_never_crashes(text: str) -> None:
    try:
        scales = parse_scales(text)
    except UsageError:
        return
    assert scales[0] == 1 and set(scales) <= {1, 2, 4} and scales == sorted(set(scales))


@given(st.lists(st.text(max_size=30), max_size=4))
def test_parse_overrides_never_crashes(items: list[str]) -> None:
    try:
        parse_overrides(items)
    except UsageError:
        pass


_VALUES = st.one_of(
    st.none(),
    st.integers(-5, 400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(-3, 300), max_size=4),
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "epochs",
                "batch_size",
                "lr",
                "momentum",
                "weight_decay",
                "lr_decay_epochs",
                "temperature",
                "scales",
                "stand",
                "seed",
                "sdd_weighting",
                "name",
                "alpha",
            ]
        ),
        _VALUES,
        max_size=5,
    )
)
def test_resolve_run_config_validates_or_fails_with_a_usage_error(values: dict) -> None:
    try:
        cfg = resolve_run_config(method="dkd", teacher="resnet32x4", student="resnet8x4", overrides=values)
    except UsageError as err:
        assert "\n" not in str(err)
        return
    assert cfg.epochs > 0 and cfg.lr > 0 and cfg.scales[0] == 1


_ARGS = st.lists(
    st.sampled_from(
        [
            "--scales",
            "1,2",
            "[1,4]",
            "x",
            "--stand",
            "--epochs",
            "-1",
            "0",
            "3",
            "--lr",
            "abc",
            "--base-temp",
            "--kd-weight",
            "nan",
            "--set",
            "lr=2",
            "beta=x",
            "--name",
            "a/b",
            "--sdd-weighting",
            "mean",
            "--no-preset",
            "--same-t",
            "-d",
            "digits",
        ]
    ),
    max_size=6,
)


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["kd", "dkd", "rld", "vanilla"]), _ARGS)
def test_cli_train_dry_run_exits_0_or_2_never_crashes(method: str, args: list[str]) -> None:
    models = ["resnet8"] if method == "vanilla" else ["resnet32x4", "resnet8x4"]
    result = CliRunner().invoke(app, ["train", method, *models, *args, "--dry-run"])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) <= 2  # a note may precede the one-line error


def test_errors_carry_their_documented_exit_codes() -> None:
    assert (UsageError.exit_code, StorageError.exit_code, RunLocked.exit_code, DskdError.exit_code) == (2, 4, 5, 1)


def test_a_finished_run_leaves_no_lock_file_and_a_released_lock_is_taken_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_ = make_settings(tmp_path)
    run_dir = fit(_vanilla(1), settings_).run_dir
    assert not (run_dir / ".lock").exists()
    # A process that opened the file just before its owner released (and removed) it locks a removed
    # file: it notices and takes a new one, so two processes never both think they own the run.
    real_open = RunLock._open
    opened: list[int] = []

    def open_a_removed_file_first(self: RunLock) -> int:
        fd = real_open(self)
        if not opened:
            self.path.unlink()  # as if the previous owner released right after this open
        opened.append(fd)
        return fd

    monkeypatch.setattr(RunLock, "_open", open_a_removed_file_first)
    with RunLock(run_dir):
        assert len(opened) == 2 and (run_dir / ".lock").exists() and RunLock.held(run_dir)
        monkeypatch.setattr(RunLock, "_open", real_open)
        with pytest.raises(RunLocked):
            RunLock(run_dir).__enter__()
    assert not (run_dir / ".lock").exists()
