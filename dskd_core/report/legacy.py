"""Legacy logs: mdistiller/DSKD ``worklog.txt`` epoch blocks (with their yacs ``config.txt``) and the
logit-standardization (LSKD) repo's ``TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT[,BETA].txt`` files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dskd_core.report.naming import LEGACY_METHODS, model_name, variant_name
from dskd_core.report.records import UNKNOWN, Hints, RunRecord, int_or_none

LSKD_NAME = re.compile(
    r"^(?P<type>[A-Za-z][A-Za-z0-9_]*),(?P<teacher>[^,]+),(?P<student>[^,]+),"
    r"(?P<temp>\d+(?:\.\d+)?),(?P<weight>\d+(?:\.\d+)?)(?:,(?P<beta>\d+(?:\.\d+)?))?\.txt$"
)
_SDD_TAG = re.compile(r"sdd,\s*\[([\d,\s]+)\]")

_DATASET_PREFIXES = ("cifar100", "tiny_imagenet", "imagenet", "digits", "synthetic")


@dataclass(frozen=True)
class Worklog:
    """The numbers of an mdistiller-format log: per-epoch ``test_acc`` and the closing ``best_acc``."""

    test_acc: list[float]
    best_acc: float | None


def parse_worklog(text: str) -> Worklog:
    """Epoch blocks (``epoch: N`` … ``test_acc: X``) between dashed lines, then ``best_acc<TAB>X``.

    A resumed mdistiller run appends blocks again from the resumed epoch: the last block of an
    epoch wins.
    """
    by_epoch: dict[int, float] = {}
    epoch: int | None = None
    best: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("best_acc"):
            best = float(line.split()[-1])
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        if key.strip() == "epoch":
            epoch = int(value)
        elif key.strip() == "test_acc" and epoch is not None:
            by_epoch[epoch] = float(value)
    return Worklog([by_epoch[e] for e in sorted(by_epoch)], best)


def _legacy_record(source: str, path: Path, log: Worklog, meta: dict[str, Any]) -> RunRecord | None:
    if not log.test_acc:
        return None
    epochs = meta.get("epochs")
    finished = log.best_acc is not None
    return RunRecord(
        source=source,
        path=str(path),
        dataset=meta["dataset"],
        teacher=meta["teacher"],
        student=meta["student"],
        method=meta["method"],
        variant=meta["variant"],
        seed=meta.get("seed"),
        status="finished" if finished else "unfinished",
        epochs=epochs if epochs is not None else (len(log.test_acc) if finished else None),
        epochs_done=len(log.test_acc),
        best_acc=log.best_acc if finished else max(log.test_acc),
        last_acc=log.test_acc[-1],
        curve=tuple(log.test_acc),
        config=meta.get("config"),
        epoch_passes=1,  # mdistiller-style trainers make one pass over the training set per epoch
    )


def read_lskd_log(path: Path) -> RunRecord | None:
    """``TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT[,BETA].txt``: the LSKD repo's CIFAR-100 +LS runs."""
    match = LSKD_NAME.match(path.name)
    if match is None:
        return None
    method = match["type"].lower()
    config = {"base_temp": float(match["temp"]), "kd_weight": float(match["weight"])}
    if match["beta"]:
        config["beta"] = float(match["beta"])
    meta = {
        "dataset": "cifar100",
        "teacher": model_name(match["teacher"]),
        "student": model_name(match["student"]),
        "method": method,
        "variant": variant_name(method, [1], stand=True),
        "seed": _seed_from_path(path),
        "config": config,
    }
    return _legacy_record("lskd", path, parse_worklog(path.read_text(errors="replace")), meta)


def read_worklog(path: Path, hints: Hints) -> RunRecord | None:
    """An mdistiller/DSKD ``worklog.txt``; what ran comes from ``config.txt``, the path, or ``hints``."""
    meta = _worklog_meta(path, hints)
    return _legacy_record("mdistiller", path, parse_worklog(path.read_text(errors="replace")), meta)


def parse_yacs_dump(text: str) -> dict[str, str]:
    """A yacs ``config.txt`` (nested ``KEY: value`` YAML) flattened to ``{"SOLVER.EPOCHS": "240"}``."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith(("#", "-")):
            continue
        indent = len(raw) - len(raw.lstrip())
        key, sep, value = raw.strip().partition(":")
        if not sep:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key.strip()])
        if value.strip():
            out[dotted] = value.strip().strip("'\"")
        else:
            stack.append((indent, key.strip()))
    return out


def _seed_from_path(path: Path) -> int | None:
    for part in reversed(path.parts):
        match = re.fullmatch(r"seed[_-]?(\d+)", part)
        if match:
            return int(match[1])
    return None


def _tags_meta(method_type: str, teacher: str, student: str, rest: str) -> dict[str, Any]:
    """A run named by mdistiller/DSKD tags: method type (``sdd_kd``), models and the remaining tags."""
    method = method_type.lower().removeprefix("sdd_")
    sdd = _SDD_TAG.search(rest)
    scales = [int(s) for s in re.findall(r"\d+", sdd[1])] if sdd else [1]
    stand = "stand" in re.split(r"[,/]", rest)
    return {
        "teacher": None if method == "vanilla" else model_name(teacher),
        "student": model_name(student),
        "method": method,
        "variant": variant_name(method, scales, stand),
    }


def _path_meta(parts: Sequence[str]) -> dict[str, Any] | None:
    """DSKD's ``<t>,<s>/<method>/[stand/]<tags>`` or mdistiller's ``<method>,<t>,<s>[,tags]``, deepest first."""
    for i in range(len(parts) - 1, -1, -1):
        fields = parts[i].split(",")
        nxt = parts[i + 1].lower() if i + 1 < len(parts) else ""
        if len(fields) == 2 and all(fields) and nxt.removeprefix("sdd_") in LEGACY_METHODS:
            return _tags_meta(nxt, fields[0], fields[1], "/".join(parts[i + 2 :]))
        if len(fields) >= 3 and fields[0].lower().removeprefix("sdd_") in LEGACY_METHODS and fields[1] and fields[2]:
            return _tags_meta(fields[0], fields[1], fields[2], ",".join(fields[3:]))
    return None


def _dataset_from_parts(parts: Sequence[str]) -> str | None:
    for part in reversed(parts):
        low = part.lower()
        for prefix in _DATASET_PREFIXES:
            if low.startswith(prefix):
                return prefix
    return None


def _config_txt_meta(path: Path) -> dict[str, Any]:
    """What a DSKD/RLD ``config.txt`` next to the worklog says (dataset, epochs, tags, models)."""
    cfg_path = path.parent / "config.txt"
    if not cfg_path.exists():
        return {}
    cfg = parse_yacs_dump(cfg_path.read_text(errors="replace"))
    meta: dict[str, Any] = {}
    if "DATASET.TYPE" in cfg:
        meta["dataset"] = cfg["DATASET.TYPE"].lower()
    if "SOLVER.EPOCHS" in cfg:
        meta["epochs"] = int_or_none(cfg["SOLVER.EPOCHS"])
    kind, teacher, student = (cfg.get(f"DISTILLER.{k}") for k in ("TYPE", "TEACHER", "STUDENT"))
    if kind and student:
        tag = cfg.get("EXPERIMENT.TAG", "")
        rest = ",".join(tag.split(",")[3:])
        if cfg.get("EXPERIMENT.LOGIT_STAND", "").lower() == "true" and "stand" not in rest.split(","):
            rest += ",stand"
        kind = "vanilla" if kind.upper() == "NONE" else kind
        meta.update(_tags_meta(kind, teacher or "", student, rest))
    return meta


def _worklog_meta(path: Path, hints: Hints) -> dict[str, Any]:
    """config.txt > path conventions > hints > unknown; conventions imply mdistiller's default cifar100."""
    parts = path.resolve().parent.parts
    meta = _path_meta(parts) or {}
    meta.update(_config_txt_meta(path))
    follows_convention = "method" in meta
    dataset = meta.get("dataset") or _dataset_from_parts(parts) or hints.dataset
    meta["dataset"] = dataset or ("cifar100" if follows_convention else UNKNOWN)
    meta.setdefault("teacher", hints.teacher or UNKNOWN)
    meta.setdefault("student", hints.student or UNKNOWN)
    meta.setdefault("method", hints.method or UNKNOWN)
    meta.setdefault("variant", hints.variant or meta["method"])
    meta["seed"] = _seed_from_path(path)
    return meta
