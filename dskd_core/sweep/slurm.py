"""Sweeps on a Slurm cluster: each run, or each lockstep group, one task of one job array, through submitit.

submitit (the optional ``slurm`` extra) is what FAIR's and many academic codebases drive Slurm with: it
writes the sbatch script, pickles the task, and on the preemption/time-limit signal (``USR2``, sent
``signal_delay_s`` before the kill) calls the task's ``checkpoint`` and requeues the job. A dskd run
commits its train state every epoch, so the requeued task resumes its runs from their folders and loses
at most the epoch in progress. The runs folder must be on a filesystem every node sees; the run locks are
as on one machine. A submission first reads every folder: finished runs are not submitted, so a second
submission of a finished sweep submits nothing.

The submitted job ids are kept in ``<runs>/.slurm/jobs.json`` (run folder → job id), so ``dskd sweep
--status`` can show each run's state from its folder and the scheduler's: ``squeue`` (which works without
slurmdbd, where ``sacct`` and so submitit's own job states do not).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dskd_core.checkpoint import atomic_write_text
from dskd_core.config import RunConfig, Settings
from dskd_core.errors import DskdError, UsageError
from dskd_core.runs.store import RunDir
from dskd_core.sweep.run import conflict_message, inspect_for, run_sweep
from dskd_core.train.lockstep import stream_key

#: Under the runs dir: submitit's job folders and the record of submitted jobs.
SLURM_DIR = ".slurm"
JOBS_FILE = "jobs.json"
#: How many time limits a task may meet and still requeue itself (each time resuming its runs).
MAX_REQUEUES = 1000
#: What ``--launcher`` takes.
LAUNCHERS = ("local", "slurm")


@dataclass(frozen=True)
class SlurmOptions:
    """The sbatch options of a sweep's jobs (``--partition`` …, or the plan's ``[slurm]`` table)."""

    partition: str | None = None
    time_min: int = 60  # each job's time limit; a run longer than it is requeued and resumes
    gpus_per_job: int | None = None
    cpus_per_job: int | None = None
    account: str | None = None
    sbatch: tuple[str, ...] = ()  # extra #SBATCH options: "--qos=high", "constraint=a100"
    max_running: int | None = None  # the array's concurrency cap (%N)
    signal_delay_s: int = 120  # USR2 this long before the time limit: the job checkpoints and requeues

    def parameters(self) -> dict[str, Any]:
        """submitit's ``SlurmExecutor`` parameters."""
        params: dict[str, Any] = {
            "job_name": "dskd-sweep",
            "time": self.time_min,
            "signal_delay_s": self.signal_delay_s,
        }
        for key, value in (
            ("partition", self.partition),
            ("gpus_per_node", self.gpus_per_job),
            ("cpus_per_task", self.cpus_per_job),
            ("account", self.account),
            ("array_parallelism", self.max_running),
        ):
            if value is not None:
                params[key] = value
        extra = dict(_sbatch_option(o) for o in self.sbatch)
        if extra:
            params["additional_parameters"] = extra
        return params


def _sbatch_option(option: str) -> tuple[str, Any]:
    """``--qos=high`` / ``qos=high`` / ``--exclusive`` as submitit's additional parameter."""
    text = option.strip().removeprefix("--").removeprefix("#SBATCH").strip().removeprefix("--")
    key, sep, value = text.partition("=")
    if not key or " " in key:
        raise UsageError(f"invalid --sbatch '{option}': pass one sbatch option as --sbatch=--key=value")
    return key.replace("_", "-"), (value if sep else True)


def slurm_options(plan: Mapping[str, Any], **flags: Any) -> SlurmOptions:
    """The plan's ``[slurm]`` table (``partition``, ``time``, ``gpus_per_job``, ``cpus_per_job``, ``account``,
    ``sbatch``, ``max_running``, ``signal_delay_s``) under the flags given (None: not given)."""
    known = {
        "partition": "partition",
        "time": "time_min",
        "gpus_per_job": "gpus_per_job",
        "cpus_per_job": "cpus_per_job",
        "account": "account",
        "sbatch": "sbatch",
        "max_running": "max_running",
        "signal_delay_s": "signal_delay_s",
    }
    values: dict[str, Any] = {}
    for key, value in plan.items():
        if key not in known:
            raise UsageError(f"unknown key '{key}' in the plan's [slurm] table: use {', '.join(known)}")
        values[known[key]] = value
    values |= {k: v for k, v in flags.items() if v is not None and v != ()}
    if "sbatch" in values:
        values["sbatch"] = tuple(values["sbatch"])
    try:
        return SlurmOptions(**values)
    except TypeError as err:
        raise UsageError(f"invalid Slurm options ({err}): check the [slurm] table") from None


def plan_slurm_table(path: Path | None) -> dict[str, Any]:
    """The ``[slurm]`` table of a TOML plan (empty without a plan or a table)."""
    if path is None:
        return {}
    from dskd_core._compat import tomllib

    table = tomllib.loads(path.read_text()).get("slurm", {})
    if not isinstance(table, dict):
        raise UsageError(f"plan file {path}: [slurm] must be a table")
    return table


def check_submitit() -> None:
    """Refuse ``--launcher slurm`` without submitit, or where Slurm's ``sbatch`` is not on PATH."""
    if importlib.util.find_spec("submitit") is None:
        raise UsageError("--launcher slurm needs submitit: pip install 'dskd[slurm]'")
    if shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm needs Slurm's sbatch on PATH: run it on the cluster's login node")


class SweepTask:
    """One array task: its configs trained (resumed, skipped when finished) in lockstep where they share,
    as one fused step where they can (``fuse``)."""

    fuse: bool = True  # (a task pickled before fusing existed has no attribute of its own)

    def __init__(self, fuse: bool = True) -> None:
        self.fuse = fuse

    def __call__(self, cfg_jsons: list[str], settings_json: str) -> list[dict[str, Any]]:
        settings = Settings.model_validate_json(settings_json)
        cfgs = [RunConfig.model_validate_json(c) for c in cfg_jsons]
        result = run_sweep(cfgs, settings, lockstep=True, fuse=self.fuse)
        return [{"run_dir": str(r.run_dir), "status": r.status, "error": r.error} for r in result.rows]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On preemption or the time limit: the same task again; its runs resume from their train state."""
        helpers = importlib.import_module("submitit.helpers")
        return helpers.DelayedSubmission(self, *args, **kwargs)


@dataclass
class Submission:
    job_ids: list[str]  # one per array task, in the order of ``groups``
    groups: list[list[RunConfig]]
    skipped: list[RunConfig] = field(default_factory=list)  # finished runs of this config: not submitted

    @property
    def array_id(self) -> str | None:
        return self.job_ids[0].split("_")[0] if self.job_ids else None


def task_groups(cfgs: Sequence[RunConfig], lockstep: bool) -> list[list[RunConfig]]:
    """The array's tasks: runs sharing a data stream and teacher together (``lockstep``), else one each."""
    if not lockstep:
        return [[c] for c in cfgs]
    groups: dict[Any, list[RunConfig]] = {}
    for cfg in cfgs:
        groups.setdefault(stream_key(cfg), []).append(cfg)
    return list(groups.values())


def submit_sweep(
    cfgs: Sequence[RunConfig],
    settings: Settings,
    options: SlurmOptions,
    *,
    lockstep: bool = True,
    fuse: bool = True,
    overwrite: bool = False,
) -> Submission:
    """Submit the sweep's unfinished runs as one job array; finished ones are skipped, a folder holding
    another config is refused as a local sweep refuses it (``overwrite`` is for a local sweep: a job array
    never deletes a run)."""
    check_submitit()
    if overwrite:
        raise UsageError("--overwrite with --launcher slurm: replace the folders with a local sweep first")
    # the job runs elsewhere: every folder absolute (on the shared filesystem), no progress bar
    absolute = {k: getattr(settings, k).resolve() for k in ("runs_dir", "data_dir", "teachers_dir")}
    settings = settings.model_copy(update={**absolute, "progress": False})
    # --device travels as given: "auto" is resolved in the job, to the GPU it was given
    folders = [inspect_for(c, c.run_dir(settings.runs_dir), None) for c in cfgs]
    plans = [f.plan(c.epochs) for f, c in zip(folders, cfgs, strict=True)]
    conflicts = [f for f, plan in zip(folders, plans, strict=True) if plan == "conflict"]
    if conflicts:
        raise UsageError(conflict_message(conflicts))
    todo = [c for c, plan in zip(cfgs, plans, strict=True) if plan != "done"]
    skipped = [c for c, plan in zip(cfgs, plans, strict=True) if plan == "done"]
    if not todo:
        return Submission([], [], skipped)
    submitit = importlib.import_module("submitit")
    # a run may need many time limits: each requeue resumes it (submitit stops requeueing after max_num_timeout)
    executor = submitit.SlurmExecutor(folder=str(settings.runs_dir / SLURM_DIR / "%j"), max_num_timeout=MAX_REQUEUES)
    try:
        executor.update_parameters(**options.parameters())
    except ValueError as err:
        raise UsageError(f"invalid Slurm options: {' '.join(str(err).split())[:200]}") from None
    groups = task_groups(todo, lockstep)
    payload = [[c.to_json() for c in g] for g in groups]
    try:
        jobs = executor.map_array(SweepTask(fuse), payload, [settings.model_dump_json()] * len(groups))
    except Exception as err:  # sbatch refused (no such partition, account, …)
        message = " ".join(str(err).split())
        raise DskdError(f"sbatch refused the sweep's job array: {message[-300:]}") from err
    ids = [str(j.job_id) for j in jobs]
    by_run = {str(c.run_dir(settings.runs_dir)): job for group, job in zip(groups, ids, strict=True) for c in group}
    _record_jobs(settings.runs_dir, by_run)
    return Submission(ids, groups, skipped)


def _jobs_path(runs_dir: Path) -> Path:
    return runs_dir / SLURM_DIR / JOBS_FILE


def _record_jobs(runs_dir: Path, jobs: Mapping[str, str]) -> None:
    path = _jobs_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**recorded_jobs(runs_dir), **jobs}, indent=2) + "\n")


def recorded_jobs(runs_dir: Path) -> dict[str, str]:
    """Run folder → the Slurm job id it was last submitted as."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(_jobs_path(runs_dir).read_text())
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    return {}


def scheduler_states(job_ids: Sequence[str]) -> dict[str, str]:
    """Job id (``123_4``) → its state in ``squeue`` (PENDING, RUNNING, …); jobs no longer queued are absent.
    ``squeue`` needs no accounting database (``sacct`` does)."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    arrays = sorted({i.split("_")[0] for i in job_ids})
    try:
        done = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in done.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            states[job] = state
    return states


@dataclass(frozen=True)
class RunState:
    run_dir: Path
    folder: str  # finished, resume N/M, new, conflict, failed: …
    job_id: str | None
    scheduler: str | None  # squeue's state; None when the job is not queued (or none was submitted)


def sweep_status(cfgs: Sequence[RunConfig], settings: Settings) -> list[RunState]:
    """Each run's state from its folder and, for a submitted one, the scheduler's."""
    runs_dir = settings.runs_dir.resolve()
    jobs = recorded_jobs(runs_dir)
    queued = scheduler_states(list(jobs.values()))
    out = []
    for cfg in cfgs:
        run_dir = cfg.run_dir(runs_dir)
        folder = inspect_for(cfg, run_dir, None)
        plan = folder.plan(cfg.epochs)
        summary = RunDir(run_dir).summary()
        if plan == "done":
            text = "finished"
        elif summary is not None and summary.status in ("failed", "interrupted"):
            text = f"{summary.status} after {summary.epochs_done}/{cfg.epochs}" + (
                f": {summary.error}" if summary.error and summary.status == "failed" else ""
            )
        elif plan == "resume":
            text = f"{summary.epochs_done if summary else '?'}/{cfg.epochs} epochs"
        else:
            text = plan
        job = jobs.get(str(run_dir))
        out.append(RunState(run_dir, text, job, queued.get(job) if job else None))
    return out
