"""dskd sweep: the plan, lockstep equal to separate runs, skip/resume, failures recorded."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.checkpoint import load_tensors, save_student
from dskd_core.errors import UsageError
from dskd_core.models import create_model
from dskd_core.resolve import resolve_run_config
from dskd_core.sweep import grid_configs, plan_configs, run_status, run_sweep
from dskd_core.train import fit
from dskd_core.train.lockstep import fit_lockstep
from tests.helpers import DSKD, make_settings, subprocess_env


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_dry_run_lists_six_distinct_variants_per_seed() -> None:
    result = CliRunner().invoke(app, ["sweep", "kd", "resnet32x4", "resnet8x4", "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 18
    for seed in (0, 1, 2):
        names = sorted(r["run"] for r in rows if r["seed"] == seed)
        assert names == sorted(["kd", "kd+ls", "kd+sdd[1,2]", "kd+sdd[1,2]+ls", "kd+sdd[1,2,4]", "kd+sdd[1,2,4]+ls"])
    assert all(r["status"] == "new" for r in rows)


def test_grid_options_narrow_the_plan(tmp_path: Path) -> None:
    cfgs = grid_configs(
        "dkd", "wrn_40_2", "wrn_16_2", runs_dir=tmp_path, scales_grid=[[1], [1, 2, 4]], stands=[True], seeds=[3]
    )
    assert [c.variant for c in cfgs] == ["dkd+ls", "dkd+sdd[1,2,4]+ls"] and {c.seed for c in cfgs} == {3}
    assert all(c.beta == 54.0 for c in cfgs)  # the preset and --stand apply as in dskd train


def test_toml_plan_crosses_its_lists(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[defaults]\ndataset = "synthetic"\nepochs = 2\n\n[[grid]]\nmethod = ["kd", "dkd"]\n'
        'pair = ["resnet8:resnet8"]\nseed = [0, 1]\nscales = [[1], [1, 2]]\nstand = true\n'
    )
    cfgs = plan_configs(plan, tmp_path)
    assert len(cfgs) == 8
    assert {c.variant for c in cfgs} == {"kd+ls", "kd+sdd[1,2]+ls", "dkd+ls", "dkd+sdd[1,2]+ls"}
    assert all(c.epochs == 2 and c.dataset == "synthetic" for c in cfgs)


def test_lockstep_equals_separate_runs(teacher_run: Path, tmp_path: Path) -> None:
    def cfgs():  # type: ignore[no-untyped-def]
        common = {"epochs": 2, "teacher_ckpt": str(teacher_run), "deterministic": True}
        return [
            resolve_run_config(
                method="kd", teacher="resnet8", student="resnet8", dataset="synthetic", flags={**common, **extra}
            )
            for extra in ({}, {"scales": [1, 2], "stand": True}, {"stand": True})
        ]

    together = fit_lockstep(cfgs(), make_settings(tmp_path / "lockstep"))
    assert together.speedup is not None and together.speedup > 1.0
    for cfg, result in zip(cfgs(), together.results, strict=True):
        separate = fit(cfg, make_settings(tmp_path / "separate"))
        assert not isinstance(result, Exception)
        a = load_tensors(result.run_dir / "checkpoints" / "student_last.safetensors")[0]
        b = load_tensors(separate.run_dir / "checkpoints" / "student_last.safetensors")[0]
        for key in a:
            assert torch.equal(a[key], b[key]), (cfg.variant, key)
        assert result.summary["best_acc"] == separate.summary["best_acc"]


def test_sweep_skips_finished_runs_and_records_failures(teacher_run: Path, tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path)
    good = grid_configs(
        "kd",
        "resnet8",
        "resnet8",
        runs_dir=settings_.runs_dir,
        scales_grid=[[1]],
        seeds=[0],
        dataset="synthetic",
        flags={"epochs": 1, "teacher_ckpt": str(teacher_run)},
    )
    bad = resolve_run_config(
        method="kd", teacher="resnet20", student="resnet8", dataset="synthetic", flags={"epochs": 1}
    )  # no such teacher: fails, the sweep goes on
    first = run_sweep([*good, bad], settings_)
    assert [r.status for r in first.rows] == ["finished", "finished", "failed"]
    assert "dskd train vanilla resnet20" in (first.rows[2].error or "")
    second = run_sweep(good, settings_)
    assert [r.status for r in second.rows] == ["done", "done"] and second.speedups == []
    assert all(run_status(c, settings_.runs_dir) == "done" for c in good)


@pytest.mark.slow
def test_digits_sweep_interrupted_and_resumed_then_a_second_invocation_trains_nothing(tmp_path: Path) -> None:
    env = subprocess_env()
    runs = tmp_path / "runs"
    teacher = subprocess.run(
        [
            *DSKD,
            "train",
            "vanilla",
            "resnet8",
            "-d",
            "digits",
            "--epochs",
            "1",
            "--set",
            "epoch_passes=1",  # one pass per epoch: this test is about interruption, not learning
            "--runs-dir",
            str(runs),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert teacher.returncode == 0, teacher.stderr
    sweep = [
        *DSKD,
        "sweep",
        "kd",
        "resnet8",
        "resnet8",
        "-d",
        "digits",
        "--seeds",
        "0",
        "--scales-grid",
        "1",
        "--epochs",
        "2",
        "--set",
        "epoch_passes=1",
        "--teacher-ckpt",
        str(runs / "digits/resnet8/vanilla/seed0"),
        "--runs-dir",
        str(runs),
    ]
    proc = subprocess.Popen(sweep, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = runs / "digits" / "resnet8-resnet8" / "kd" / "seed0" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and '"event": "epoch"' in log.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # interrupted after at least one committed epoch
    proc.wait()
    resumed = subprocess.run(sweep, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished" in resumed.stdout
    for name in ("kd", "kd+ls"):
        summary = json.loads((runs / "digits" / "resnet8-resnet8" / name / "seed0" / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["epochs_done"] == 2
    again = subprocess.run(sweep, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped (done)") == 2
    assert "starting" not in again.stderr and "resuming" not in again.stderr


def test_device_worker_runs_its_share_and_reports_failures(teacher_run: Path, tmp_path: Path) -> None:
    """What each process of --devices runs (called in-process here; the CLI spawns one per device)."""
    from dskd_core.sweep import _device_worker

    settings_ = make_settings(tmp_path)
    good = resolve_run_config(
        method="kd",
        teacher="resnet8",
        student="resnet8",
        dataset="synthetic",
        flags={"epochs": 1, "teacher_ckpt": str(teacher_run)},
    )
    bad = resolve_run_config(
        method="kd", teacher="resnet20", student="resnet8", dataset="synthetic", flags={"epochs": 1}
    )
    out = dict(
        _device_worker([good.model_dump_json(), bad.model_dump_json()], settings_.model_dump_json(), "cpu").outcomes
    )
    assert out[good.model_dump_json()]["status"] == "finished"  # type: ignore[index]
    assert "not found" in out[bad.model_dump_json()]  # type: ignore[operator]


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_sweep_aug_is_dskds_aug_on_every_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dskd_cli.app import app
    from dskd_core.sweep import SweepRequest

    cfgs = SweepRequest(method="kd", teacher="resnet8", student="resnet8", dataset="synthetic", aug=True).configs(
        tmp_path
    )
    assert cfgs and all(c.aug and c.aug_form == "dskd" for c in cfgs)
    planned = CliRunner().invoke(
        app, ["sweep", "kd", "resnet8", "resnet8", "-d", "synthetic", "--aug", "--dry-run", "--runs-dir", str(tmp_path)]
    )
    assert planned.exit_code == 0, planned.output
    refused = CliRunner().invoke(app, ["sweep", "mlkd", "resnet8", "resnet8", "-d", "synthetic", "--aug", "--dry-run"])
    assert refused.exit_code == 2 and "drop --aug, or train mlkd_noaug with --aug" in refused.output


# --------------------------------------------------------------------------- --launcher slurm: its options


def test_slurm_options_from_flags_and_the_plans_table(tmp_path: Path) -> None:
    from dskd_core.sweep.slurm import SlurmOptions, plan_slurm_table, slurm_options

    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[slurm]\npartition = "gpu"\ntime = 120\ngpus_per_job = 1\nsbatch = ["--qos=high", "exclusive"]\n'
        '[[grid]]\nmethod = ["kd"]\n'
    )
    options = slurm_options(plan_slurm_table(plan), time_min=30, cpus_per_job=8, account=None, sbatch=())
    assert options == SlurmOptions(
        partition="gpu", time_min=30, gpus_per_job=1, cpus_per_job=8, sbatch=("--qos=high", "exclusive")
    )  # a flag over the plan's value; a flag not given leaves it
    assert options.parameters() == {
        "job_name": "dskd-sweep",
        "time": 30,
        "signal_delay_s": 120,
        "partition": "gpu",
        "gpus_per_node": 1,
        "cpus_per_task": 8,
        "additional_parameters": {"qos": "high", "exclusive": True},
    }
    with pytest.raises(UsageError, match=r"unknown key 'gpus' in the plan's \[slurm\] table"):
        slurm_options({"gpus": 1})
    with pytest.raises(UsageError, match="invalid --sbatch"):
        SlurmOptions(sbatch=("--bad key=1",)).parameters()


def test_launcher_and_slurm_flags_are_checked_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    base = ["sweep", "kd", "resnet8", "resnet8", "-d", "synthetic", "--seeds", "0", "--scales-grid", "1"]
    base += ["--stand", "off", "--runs-dir", str(tmp_path)]
    bad = runner.invoke(app, [*base, "--launcher", "pbs"])
    assert bad.exit_code == 2 and "invalid --launcher 'pbs': use local or slurm" in bad.output
    both = runner.invoke(app, [*base, "--launcher", "slurm", "--devices", "cuda:0"])
    assert both.exit_code == 2 and "--gpus-per-job" in both.output
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    teacher = tmp_path / "teacher.safetensors"
    save_student(teacher, create_model("resnet8", 100), arch="resnet8", num_classes=100, extra={})
    nowhere = runner.invoke(app, [*base, "--teacher-ckpt", str(teacher), "--launcher", "slurm"])
    assert nowhere.exit_code == 2, nowhere.output
    assert "needs Slurm's sbatch on PATH" in nowhere.output or "needs submitit" in nowhere.output
    status = runner.invoke(app, [*base, "--status", "--format", "json"])  # a local sweep's status: the folders
    assert status.exit_code == 0, status.output
    assert [(r["folder"], r["job_id"], r["scheduler"]) for r in json.loads(status.stdout)] == [("new", None, None)]
