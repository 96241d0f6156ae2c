"""``dskd sweep --launcher slurm`` against a real single-node Slurm (``.ci/slurm-up.sh``; ``.ci/run`` starts it).

A digits sweep is submitted as one job array; one task is preempted the way a cluster does it
(``scancel --signal=USR2``: submitit checkpoints and requeues), resumes from its train state and finishes
with every epoch logged once; ``--status`` reads the folders and ``squeue``; a second submission trains
nothing. Every wait has a hard timeout. Skipped where no Slurm answers (a developer machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.config import Settings
from dskd_core.resolve import resolve_run_config
from dskd_core.sweep.slurm import recorded_jobs, scheduler_states
from dskd_core.train.engine import fit


def _slurm_up() -> bool:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in done.stdout.split())


#: Set by .ci/run, which starts the cluster: there a missing Slurm fails the test instead of skipping it.
REQUIRED = os.environ.get("DSKD_REQUIRE_SLURM") == "1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not REQUIRED and not _slurm_up(), reason="no Slurm cluster answers here (.ci/run starts one: .ci/slurm-up.sh)"
    ),
    pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit is not installed"),
]


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if done():
            return
        time.sleep(1)
    queue = subprocess.run(["squeue", "-h", "-r"], capture_output=True, text=True, timeout=10).stdout
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; squeue:\n{queue}")


def _events(run: Path) -> list[dict[str, Any]]:
    path = run / "log.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return out


def _finished(run: Path) -> bool:
    try:
        return json.loads((run / "summary.json").read_text())["status"] == "finished"
    except (OSError, ValueError, KeyError):
        return False


def test_a_digits_sweep_runs_as_a_job_array_resumes_after_preemption_and_is_not_resubmitted(tmp_path: Path) -> None:
    assert _slurm_up(), "DSKD_REQUIRE_SLURM=1 but no Slurm cluster answers (.ci/slurm-up.sh starts one)"
    runs = tmp_path / "runs"
    settings = Settings(runs_dir=runs, device="cpu", progress=False, download=False)
    teacher_cfg = resolve_run_config(
        method="vanilla", student="resnet8", dataset="digits", overrides={"epoch_passes": 1}
    )
    teacher = fit(teacher_cfg, settings).run_dir
    sweep = ["sweep", "kd", "resnet8", "resnet8", "-d", "digits", "--teacher-ckpt", str(teacher)]
    sweep += ["--seeds", "0,1", "--scales-grid", "1", "--stand", "off", "--epochs", "6", "--set", "epoch_passes=1"]
    sweep += ["--runs-dir", str(runs)]
    slurm = ["--launcher", "slurm", "--time", "15", "--cpus-per-job", "1", "--max-running", "2"]
    runner = CliRunner()

    first = runner.invoke(app, [*sweep, *slurm])
    assert first.exit_code == 0, first.output
    assert "submitted 2 runs as Slurm job array" in " ".join(first.stdout.split()), first.output
    jobs = recorded_jobs(runs.resolve())
    folders = [runs.resolve() / "digits" / "resnet8-resnet8" / "kd" / f"seed{k}" for k in (0, 1)]
    assert sorted(jobs) == sorted(map(str, folders))
    assert len(set(jobs.values())) == 2 and len({j.split("_")[0] for j in jobs.values()}) == 1  # one array

    # Preempt seed 1's task once it has committed an epoch, as a cluster's preemption or time limit does.
    preempted = folders[1]
    _wait(lambda: any(e["event"] == "epoch" for e in _events(preempted)), 300, "seed 1's first epoch")
    subprocess.run(["scancel", "--signal=USR2", jobs[str(preempted)]], check=True, timeout=30)
    _wait(lambda: all(_finished(f) for f in folders), 600, "both runs to finish")

    events = _events(preempted)
    kinds = [e["event"] for e in events]
    assert "interrupted" in kinds and "resume" in kinds, kinds  # stopped at the signal, resumed when requeued
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3, 4, 5, 6]  # each epoch once
    resumed_at = next(e["epoch"] for e in events if e["event"] == "resume")
    assert resumed_at >= 1  # it continued from its train state, not from scratch
    assert [e["epoch"] for e in _events(folders[0]) if e["event"] == "epoch"] == [1, 2, 3, 4, 5, 6]

    status = runner.invoke(app, [*sweep, "--status", "--format", "json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.stdout)
    assert [(r["folder"], r["job_id"]) for r in rows] == [("finished", jobs[str(f)]) for f in folders]

    _wait(lambda: not scheduler_states(list(jobs.values())), 120, "the finished tasks to leave the queue")
    again = runner.invoke(app, [*sweep, *slurm])
    assert again.exit_code == 0, again.output
    assert "nothing to submit: the 2 runs of this sweep are finished" in " ".join(again.stdout.split())
    assert recorded_jobs(runs.resolve()) == jobs  # no new job recorded
    mine = subprocess.run(
        ["squeue", "-h", "-r", "-n", "dskd-sweep", "-o", "%i"], capture_output=True, text=True, timeout=30
    )
    assert mine.stdout.split() == []  # and none queued
