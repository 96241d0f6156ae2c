"""The training loop: one function a reader can hold in their head.

Per epoch: set the step LR, train (the distiller returns named loss terms, the engine weights
and sums them), evaluate on the test split, append to ``log.jsonl``, write checkpoints and
``summary.json``. The engine never branches on a method's name.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import dskd_core
from dskd_core.checkpoint import atomic_write_text, save_student
from dskd_core.config import RunConfig, Settings
from dskd_core.data import BatchLoader, get_dataset_spec, load_dataset
from dskd_core.errors import NonFiniteLoss, UsageError
from dskd_core.methods import Distiller, get_method
from dskd_core.models import create_model
from dskd_core.train.build import (
    STUDENT_BEST,
    STUDENT_LAST,
    TRAIN_STATE,
    load_model,
    resolve_device,
    teacher_checkpoint,
)
from dskd_core.train.evaluate import evaluate
from dskd_core.train.state import Progress, load_train_state, save_train_state

Observer = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def lr_at(cfg: RunConfig, epoch: int) -> float:
    """Step schedule, set at the start of each epoch: decayed once per stage with ``epoch > stage``."""
    return cfg.lr * cfg.lr_decay_rate ** sum(epoch > stage for stage in cfg.lr_decay_epochs)


class RunLog:
    """``log.jsonl``: one JSON object per event, flushed per line."""

    def __init__(self, path: Path, keep_epochs_upto: int | None) -> None:
        """``keep_epochs_upto=None`` starts a fresh log (a run that never checkpointed restarts)."""
        self.path = path
        if keep_epochs_upto is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            # After a resume, drop what a killed process logged past the restored epoch.
            kept = []
            for line in path.read_text().splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if event.get("event") != "epoch" or event.get("epoch", 0) <= keep_epochs_upto:
                    kept.append(line)
            atomic_write_text(path, "".join(k + "\n" for k in kept))

    def write(self, event: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()


def _prepare_run_dir(cfg: RunConfig, run_dir: Path, resume: bool) -> bool:
    """Create or check the run folder; True when there is a train state to resume from."""
    state = run_dir / "checkpoints" / TRAIN_STATE
    if state.exists() and not resume:
        raise UsageError(
            f"{run_dir} already holds this run: pass --resume to continue it, or another --runs-dir/--seed"
        )
    saved = run_dir / "config.json"
    if resume and saved.exists():
        before = json.loads(saved.read_text())
        now = cfg.model_dump(mode="json")
        changed = sorted(k for k in now if k != "epochs" and before.get(k) != now[k])
        if changed:
            raise UsageError(
                f"--resume with a different config ({', '.join(changed)} changed): drop those flags or "
                "start a new run with another --runs-dir/--seed"
            )
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved, cfg.to_json() + "\n")
    return resume and state.exists()


def build_distiller(cfg: RunConfig, settings: Settings, num_classes: int, device: torch.device) -> Distiller:
    torch.manual_seed(cfg.seed)
    student = create_model(cfg.student, num_classes=num_classes).to(device)
    teacher = None
    if cfg.teacher:
        teacher = load_model(cfg.teacher, teacher_checkpoint(cfg, settings.teachers_dir), num_classes, device)
    return get_method(cfg.method)(student, teacher, cfg).to(device)


class _RunFiles:
    """The files of one run folder: checkpoints, ``summary.json`` and ``log.jsonl``."""

    def __init__(self, cfg: RunConfig, run_dir: Path, device: torch.device, num_classes: int) -> None:
        self.cfg, self.run_dir, self.device, self.num_classes = cfg, run_dir, device, num_classes
        self.ckpt_dir = run_dir / "checkpoints"

    def summary(self, progress: Progress, status: str, last: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        summary = {**_summary(self.cfg, progress, self.device, status, last), **extra}
        atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def checkpoint(
        self, distiller: Distiller, optimizer: torch.optim.Optimizer, progress: Progress, last: dict[str, Any]
    ) -> None:
        """Student-only files (last, and best when this epoch is the best), then the train state."""
        meta = {
            "epoch": progress.epoch,
            "dataset": self.cfg.dataset,
            "top1": last["test_acc"],
            "top5": last["test_acc_top5"],
            "test_batch_size": self.cfg.test_batch_size,
        }
        names = [STUDENT_LAST] + ([STUDENT_BEST] if progress.best_epoch == progress.epoch else [])
        for name in names:
            save_student(
                self.ckpt_dir / name, distiller.student, arch=self.cfg.student, num_classes=self.num_classes, extra=meta
            )
        save_train_state(self.ckpt_dir / TRAIN_STATE, distiller, optimizer, progress, self.cfg.to_json())


def fit(cfg: RunConfig, settings: Settings, *, resume: bool = False, observer: Observer | None = None) -> RunResult:
    """Train ``cfg`` into ``cfg.run_dir(settings.runs_dir)``; resume from its train state if asked."""
    notify = observer or (lambda event: None)
    device = resolve_device(settings.device)
    spec = get_dataset_spec(cfg.dataset)
    train_data, test_data = load_dataset(cfg.dataset, settings.data_dir, settings.download)
    distiller = build_distiller(cfg, settings, spec.num_classes, device)
    optimizer = torch.optim.SGD(
        list(distiller.trainable_parameters()), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    files = _RunFiles(cfg, cfg.run_dir(settings.runs_dir), device, spec.num_classes)
    has_state = _prepare_run_dir(cfg, files.run_dir, resume)
    progress = load_train_state(files.ckpt_dir / TRAIN_STATE, distiller, optimizer) if has_state else Progress()
    log = RunLog(files.run_dir / "log.jsonl", progress.epoch if has_state else None)
    last = _last_epoch_event(log.path) if has_state else None

    train_loader = BatchLoader(
        train_data, spec, cfg.batch_size, train=True, device=device, seed=cfg.seed, randaugment=cfg.aug
    )
    test_loader = BatchLoader(test_data, spec, cfg.test_batch_size, train=False, device=device)
    start: dict[str, Any] = {
        "event": "resume" if has_state else "start",
        "epoch": progress.epoch,
        "run_dir": str(files.run_dir),
        "device": str(device),
        "train_samples": len(train_data),
        "test_samples": len(test_data),
        "steps_per_epoch": len(train_loader),
        "epochs": cfg.epochs,
    }
    if distiller.teacher is not None and not has_state:
        start["teacher_acc"] = evaluate(distiller.teacher, test_loader).top1
    log.write(start)
    notify(start)
    files.summary(progress, "running", last)
    try:
        for epoch in range(progress.epoch + 1, cfg.epochs + 1):
            tick = time.perf_counter()
            lr = lr_at(cfg, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loader.set_epoch(epoch)
            train_stats = _train_epoch(distiller, optimizer, train_loader, epoch, notify)
            result = evaluate(distiller.student, test_loader)
            progress.epoch = epoch
            progress.wall_time_s += time.perf_counter() - tick
            if result.top1 > progress.best_acc or progress.best_epoch == 0:
                progress.best_acc, progress.best_epoch = result.top1, epoch
            last = {
                "event": "epoch",
                "epoch": epoch,
                "lr": lr,
                **train_stats,
                "test_acc": result.top1,
                "test_acc_top5": result.top5,
                "test_loss": result.loss,
                "best_acc": progress.best_acc,
                "epoch_time_s": time.perf_counter() - tick,
            }
            files.checkpoint(distiller, optimizer, progress, last)
            log.write(last)
            files.summary(progress, "running", last)
            notify(last)
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        message = str(err) or type(err).__name__
        files.summary(progress, status, last, error=message)
        log.write({"event": status, "epoch": progress.epoch, "error": message})
        raise
    summary = files.summary(progress, "finished", last)
    end = {"event": "end", **{k: summary[k] for k in ("best_acc", "best_epoch", "last_acc", "wall_time_s")}}
    log.write(end)
    notify(end)
    return RunResult(files.run_dir, summary)


def _train_epoch(
    distiller: Distiller, optimizer: torch.optim.Optimizer, loader: BatchLoader, epoch: int, notify: Observer
) -> dict[str, float]:
    distiller.train()
    factors = distiller.term_weights(epoch)
    sums: dict[str, torch.Tensor] = {}
    correct = seen = 0
    for step, batch in enumerate(loader, start=1):
        logits, terms = distiller(batch, epoch)
        weighted = {name: value * factors.get(name, 1.0) for name, value in terms.items()}
        loss = torch.stack(list(weighted.values())).sum()
        if not torch.isfinite(loss):
            bad = next(n for n, v in weighted.items() if not torch.isfinite(v))
            raise NonFiniteLoss(
                f"loss term {bad} is {float(weighted[bad])} at epoch {epoch} step {step}: lower --lr or check "
                f"the data; checkpoints of epoch {epoch - 1} are intact (resume with --resume)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if distiller.cfg.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(list(distiller.trainable_parameters()), distiller.cfg.clip_grad)
        optimizer.step()
        for name, value in weighted.items():
            sums[name] = sums.get(name, 0.0) + value.detach() * len(batch["target"])
        correct += int((logits.argmax(-1) == batch["target"]).sum())
        seen += len(batch["target"])
        notify(
            {
                "event": "step",
                "epoch": epoch,
                "step": step,
                "steps": len(loader),
                "loss": float(loss.detach()),
            }
        )
    stats = {name: float(total) / seen for name, total in sums.items()}
    stats["train_loss"] = sum(stats.values())
    stats["train_acc"] = 100.0 * correct / seen
    return stats


def _last_epoch_event(path: Path) -> dict[str, Any] | None:
    last = None
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "epoch":
            last = event
    return last


def _summary(
    cfg: RunConfig, progress: Progress, device: torch.device, status: str, last: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "status": status,
        "method": cfg.method,
        "variant": cfg.variant,
        "teacher": cfg.teacher,
        "student": cfg.student,
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "epochs_done": progress.epoch,
        "best_acc": progress.best_acc,
        "best_epoch": progress.best_epoch,
        "last_acc": last["test_acc"] if last else None,
        "last_acc_top5": last["test_acc_top5"] if last else None,
        "wall_time_s": round(progress.wall_time_s, 3),
        "device": str(device),
        "dskd_version": dskd_core.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
