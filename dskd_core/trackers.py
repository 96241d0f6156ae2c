"""Experiment trackers: TensorBoard event files and Weights & Biases runs, fed the run's own events.

Off unless asked (``--log tensorboard,wandb`` or ``DSKD_LOG``), so nothing here makes a network
call by default; each is an optional extra (``pip install 'dskd[tensorboard]'``, ``'dskd[wandb]'``).
A :class:`Trackers` belongs to one run (one :class:`~dskd_core.train.engine.Trainer`): every
lockstep student has its own, and only rank 0 of a distributed run opens one.

What is logged, under the same names in both (the x axis is the training step, ``epoch × steps``):

* ``train/loss`` (the sum of the weighted terms) and each term (``train/loss_ce``, ``train/loss_kd``, …),
  ``train/acc_top1``, ``train/lr``, ``time/epoch_s`` per epoch;
* ``train/loss_curve``: the epoch's mean training loss per tenth of the epoch, at the step that tenth ends;
* ``test/acc_top1``, ``test/acc_top5``, ``test/loss``, ``test/best_acc_top1`` per epoch, ``teacher/acc_top1`` once;
* the resolved run config: TensorBoard hparams (and a ``config`` text), the W&B run config.

TensorBoard writes under ``<run>/tensorboard/``; a resumed run purges what a killed one logged after
its last committed epoch. W&B writes under ``<run>/wandb/``, names the run after the run folder
(``<dataset>/<pair>/<variant>/seed<k>``), groups it with its other seeds (``<dataset>/<pair>/<variant>``)
and keeps its id in ``<run>/trackers.json``, so a resumed run continues the same W&B run.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib
import importlib.util
import json
import math
import netrc
import os
import secrets
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from dskd_core.checkpoint import atomic_write_text
from dskd_core.config import RunConfig
from dskd_core.errors import DskdError, UsageError
from dskd_core.runs.layout import TENSORBOARD_DIR, TRACKERS_FILE
from dskd_core.runs.records import EpochEvent, StartEvent

#: The trackers ``--log`` accepts, in the order they are opened.
TRACKERS = ("tensorboard", "wandb")
#: What each needs imported, and the extra that installs it.
_NEEDS = {"tensorboard": ("tensorboard", "dskd[tensorboard]"), "wandb": ("wandb", "dskd[wandb]")}


def parse_log(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The tracker names of ``--log``/``DSKD_LOG`` (comma-separated, repeatable); refused by name when unknown."""
    items = [value] if isinstance(value, str) else list(value or ())
    names: list[str] = []
    for item in items:
        for name in (n.strip().lower() for n in item.split(",")):
            if not name or name in names:
                continue
            if name not in TRACKERS:
                raise UsageError(f"unknown tracker '{name}' in --log: use {' or '.join(TRACKERS)} (comma-separated)")
            names.append(name)
    return tuple(n for n in TRACKERS if n in names)


def check_available(names: Sequence[str]) -> None:
    """Refuse (exit 2) a tracker whose package is not installed, naming the ``pip install`` that adds it, and
    W&B online without a login (``wandb.init`` would stop the run at an interactive prompt)."""
    for name in names:
        module, extra = _NEEDS[name]
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"--log {name} needs the {module} package: pip install '{extra}'")
    if "wandb" in names:
        _check_wandb_login()


#: W&B modes that need no login.
_WANDB_LOCAL = ("offline", "disabled", "dryrun")


def _wandb_settings() -> dict[str, str]:
    """The ``[default]`` values of W&B's settings files (``wandb offline``/``wandb login`` write them): this
    folder's ``wandb/settings`` over the global one."""
    found: dict[str, str] = {}
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb")
    for path in (config_dir / "settings", Path("wandb") / "settings"):
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path)
        if parser.has_section("default"):
            found |= dict(parser.items("default"))
    return found


def _check_wandb_login() -> None:
    """Online W&B needs credentials; without them ``wandb.init`` stops the run at an interactive login menu
    (or fails after the run folder is written). Looked up where W&B looks, without importing it: the mode
    (``WANDB_MODE``, the settings files), then ``WANDB_API_KEY``/``WANDB_IDENTITY_TOKEN_FILE``, the netrc entry
    of the W&B host (``wandb login``'s), or an ``api_key`` in the settings."""
    settings = _wandb_settings()
    if (os.environ.get("WANDB_MODE") or settings.get("mode", "online")).lower() in _WANDB_LOCAL:
        return
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE") or settings.get("api_key"):
        return
    host = urllib.parse.urlparse(
        os.environ.get("WANDB_BASE_URL") or settings.get("base_url") or "https://api.wandb.ai"
    ).hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    with contextlib.suppress(OSError, netrc.NetrcParseError):
        if host and netrc.netrc(str(path)).authenticators(host):
            return
    raise UsageError(
        "--log wandb: no W&B login on this machine: run `wandb login` (or set WANDB_API_KEY), or set "
        "WANDB_MODE=offline to log locally"
    )


class Tracker(Protocol):
    def start(self, event: StartEvent, steps_per_epoch: int) -> None: ...
    def epoch(self, event: EpochEvent, step: int, curve_steps: Sequence[int]) -> None: ...
    def close(self, status: str, best_acc: float) -> None: ...


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config as flat scalar values (hparams take numbers, strings and booleans only)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= _flat(value, f"{name}.")
        elif isinstance(value, bool | int | float | str):
            out[name] = value
        else:  # None, lists
            out[name] = json.dumps(value)
    return out


def _scalars(event: EpochEvent) -> dict[str, float]:
    return {
        "train/loss": event.train_loss,
        **{f"train/{term}": value for term, value in event.terms.items()},
        "train/acc_top1": event.train_acc,
        "train/lr": event.lr,
        "test/acc_top1": event.test_acc,
        "test/acc_top5": event.test_acc_top5,
        "test/loss": event.test_loss,
        "test/best_acc_top1": event.best_acc,
        "time/epoch_s": event.epoch_time_s,
    }


class TensorBoardTracker:
    """Event files under ``<run>/tensorboard/``: scalars per epoch, the loss curve, the config as hparams."""

    def __init__(self, run_dir: Path, cfg: RunConfig, *, resumed_epoch: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # here: the extra is needed only when asked for

        self._cfg, self._resumed_epoch, self._run_dir = cfg, resumed_epoch, run_dir
        self._writer: Any = None
        self._writer_cls = SummaryWriter

    def start(self, event: StartEvent, steps_per_epoch: int) -> None:
        from torch.utils.tensorboard.summary import hparams

        # A resume drops what a killed run logged past its last committed epoch (TensorBoard's purge_step).
        purge = None if self._resumed_epoch is None else self._resumed_epoch * steps_per_epoch + 1
        folder = self._run_dir / TENSORBOARD_DIR
        first = not any(folder.glob("events.out.tfevents.*"))  # also a resume that adds --log tensorboard
        self._writer = self._writer_cls(log_dir=str(folder), purge_step=purge)
        config = json.loads(self._cfg.to_json())
        if first:
            experiment, session_start, _ = hparams(_flat(config), {"test/acc_top1": 0.0, "test/best_acc_top1": 0.0})
            self._writer.file_writer.add_summary(experiment)
            self._writer.file_writer.add_summary(session_start)
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)
            if event.teacher_acc is not None:
                self._writer.add_scalar("teacher/acc_top1", event.teacher_acc, 0)
        self._writer.flush()

    def epoch(self, event: EpochEvent, step: int, curve_steps: Sequence[int]) -> None:
        for point, value in zip(curve_steps, event.train_loss_curve, strict=False):
            self._writer.add_scalar("train/loss_curve", value, point)
        for tag, value in _scalars(event).items():
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self, status: str, best_acc: float) -> None:
        if self._writer is None:
            return
        if status == "finished":
            from torch.utils.tensorboard.summary import hparams

            _, _, session_end = hparams({}, {})
            self._writer.file_writer.add_summary(session_end)
        self._writer.close()
        self._writer = None


class WandbTracker:
    """A W&B run per run folder: named after it, grouped with its seeds, resumed under the id it keeps."""

    def __init__(self, run_dir: Path, cfg: RunConfig, *, resumed_epoch: int | None) -> None:
        self._wandb: Any = importlib.import_module("wandb")
        self._cfg, self._run_dir, self._resumed = cfg, run_dir, resumed_epoch is not None
        self._run: Any = None

    def _run_id(self) -> str:
        """The W&B id this folder keeps (a new one for a new run, written before the run starts)."""
        path = self._run_dir / TRACKERS_FILE
        kept: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            kept = json.loads(path.read_text())
        if self._resumed and isinstance(kept.get("wandb_id"), str):
            return str(kept["wandb_id"])
        run_id = secrets.token_hex(4)
        atomic_write_text(path, json.dumps({**kept, "wandb_id": run_id}, indent=2) + "\n")
        return run_id

    def start(self, event: StartEvent, steps_per_epoch: int) -> None:
        cfg = self._cfg
        group = f"{cfg.dataset}/{cfg.pair}/{cfg.run_name}"
        wandb = self._wandb
        try:
            self._run = wandb.init(
                project=None,  # WANDB_PROJECT, else W&B's default for the folder
                name=f"{group}/seed{cfg.seed}",
                group=group,
                job_type=cfg.method,
                id=self._run_id(),
                resume="allow",
                dir=str(self._run_dir),
                config=json.loads(cfg.to_json()),
                reinit="create_new",  # every lockstep student its own run, in one process
                settings=wandb.Settings(silent=True, console="off", save_code=False),
            )
        except Exception as err:  # W&B's errors (no API key, no network) become one line naming the fix
            message = " ".join(str(err).split()) or type(err).__name__
            raise DskdError(
                f"--log wandb could not start a W&B run ({message}): run `wandb login`, or set WANDB_MODE=offline"
            ) from err
        self._run.define_metric("*", step_metric="trainer/step")
        if event.teacher_acc is not None and not self._resumed:
            self._run.summary["teacher/acc_top1"] = event.teacher_acc

    def epoch(self, event: EpochEvent, step: int, curve_steps: Sequence[int]) -> None:
        for point, value in zip(curve_steps, event.train_loss_curve, strict=False):
            self._run.log({"trainer/step": point, "train/loss_curve": value})
        self._run.log({"trainer/step": step, "epoch": event.epoch, **_scalars(event)})

    def close(self, status: str, best_acc: float) -> None:
        if self._run is None:
            return
        self._run.summary["best_acc_top1"] = best_acc
        self._run.summary["status"] = status
        self._run.finish(exit_code=0 if status == "finished" else 1)
        self._run = None


def _open(name: str, run_dir: Path, cfg: RunConfig, resumed_epoch: int | None) -> Tracker:
    if name == "tensorboard":
        return TensorBoardTracker(run_dir, cfg, resumed_epoch=resumed_epoch)
    return WandbTracker(run_dir, cfg, resumed_epoch=resumed_epoch)


class Trackers:
    """The trackers of one run; the engine hands them its start, epoch and end events."""

    def __init__(self, names: Sequence[str], run_dir: Path, cfg: RunConfig, *, resumed_epoch: int | None) -> None:
        check_available(names)
        self.names = tuple(names)
        self._trackers: list[Tracker] = [_open(n, run_dir, cfg, resumed_epoch) for n in names]
        self._steps = 1

    def __bool__(self) -> bool:
        return bool(self._trackers)

    def start(self, event: StartEvent) -> None:
        """Start every tracker; if one fails, those already started are closed (as failed) and the error raised."""
        self._steps = max(event.steps_per_epoch, 1)
        for i, tracker in enumerate(self._trackers):
            try:
                tracker.start(event, self._steps)
            except BaseException:
                for started in self._trackers[:i]:
                    with contextlib.suppress(Exception):
                        started.close("failed", 0.0)
                self._trackers = []
                raise

    def epoch(self, event: EpochEvent) -> None:
        """The epoch's scalars at its last step; the loss curve's points where their tenth of the epoch ends."""
        steps, points = self._steps, len(event.train_loss_curve)
        first = (event.epoch - 1) * steps
        curve = [first + max(1, math.ceil((i + 1) * steps / points)) for i in range(points)]
        for tracker in self._trackers:
            tracker.epoch(event, first + steps, curve)

    def close(self, status: str, best_acc: float) -> None:
        """End every tracker's run; one that fails to close does not keep the others open."""
        errors: list[Exception] = []
        for tracker in self._trackers:
            try:
                tracker.close(status, best_acc)
            except Exception as err:
                errors.append(err)
        self._trackers = []
        if errors:
            raise errors[0]
