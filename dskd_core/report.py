"""Reports: run records on disk → groups → mean ± std rows, paired Δ and the DSKD README grids.

A pure function of files (design §2): :func:`discover` finds dskd run folders
(``config.json``/``summary.json``/``log.jsonl``) and legacy logs — mdistiller/DSKD ``worklog.txt``
epoch blocks and the logit-standardization repo's ``TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT[,BETA].txt``
files — and :func:`build_report` groups them by (dataset, teacher, student, method, variant).
Nothing here prints; ``dskd_cli/render.py`` turns the returned data into tables.

Policy: a run that did not finish (status other than finished, fewer epochs than configured, a
legacy log without its closing ``best_acc`` line) is never averaged: it is excluded from n, mean
and std and listed under the group's ``excluded`` with a flag. A run whose ``summary.json`` or
``config.json`` cannot be read (corrupt JSON, not an object, an unreadable file) is excluded the
same way and also listed in :attr:`Report.unreadable`, which the CLI turns into exit code 1. A
group whose complete runs disagree (mixed epoch counts, epoch passes or configs, a seed twice)
is averaged over those runs but flagged inconsistent in every view (``ok`` false, a ``!`` in the
grids).

A Δ pairs a variant with its plain method only as far as their configs agree on every key but
the variant's own (:data:`VARIANT_KEYS`, plus :data:`STAND_KEYS` when one side has ``--stand``):
otherwise it is flagged inconsistent with the differing keys named. Legacy logs record little
of their config; a Δ that involves one compares what is known (epochs, epoch passes, the keys
both record) and says ``config unknown`` instead of passing or flagging it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

from dskd_core.errors import UsageError

Metric = Literal["best", "last"]
METRICS: tuple[Metric, ...] = ("best", "last")
UNKNOWN = "unknown"

#: mdistiller/DSKD short model names (their ``verify_dict``) → the names dskd and the field use.
MODEL_ALIASES = {
    "res8x4": "resnet8x4",
    "res32x4": "resnet32x4",
    "res20": "resnet20",
    "res32": "resnet32",
    "res56": "resnet56",
    "res110": "resnet110",
    "res18": "ResNet18",
    "res34": "ResNet34",
    "res50": "ResNet50",
    "shuv1": "ShuffleV1",
    "shuv2": "ShuffleV2",
    "mv1": "MobileNetV1",
    "mv2": "MobileNetV2",
    "wrn40_2": "wrn_40_2",
    "wrn40_1": "wrn_40_1",
    "wrn16_2": "wrn_16_2",
}

#: Distiller types of mdistiller, the LSKD, RLD and DSKD repositories (lower case, ``sdd_`` stripped).
LEGACY_METHODS = frozenset(
    {
        "vanilla",
        "kd",
        "dkd",
        "rld",
        "mlkd",
        "mlkd_noaug",
        "at",
        "crd",
        "fitnet",
        "reviewkd",
        "nst",
        "ofd",
        "pkt",
        "rkd",
        "sp",
        "vid",
        "kdsvd",
        "dot",
        "ctkd",
        "rc",
        "swap",
        "revision",
    }
)

_LSKD_NAME = re.compile(
    r"^(?P<type>[A-Za-z][A-Za-z0-9_]*),(?P<teacher>[^,]+),(?P<student>[^,]+),"
    r"(?P<temp>\d+(?:\.\d+)?),(?P<weight>\d+(?:\.\d+)?)(?:,(?P<beta>\d+(?:\.\d+)?))?\.txt$"
)
_SDD_TAG = re.compile(r"sdd,\s*\[([\d,\s]+)\]")
#: ``kd``, ``kd+sdd[1,2]+ls``; a feature method names the KD term SDD/LS add: ``crd+kd+sdd[1,2]+ls``; an SDD
#: reduction other than the method's own follows the scales: ``dkd+sdd[1,2]+region+ls``.
_VARIANT = re.compile(
    r"^(?P<method>[A-Za-z0-9_]+)(?:\+(?P<added>kd)(?=\+(?:sdd\[|ls$)))?"
    r"(?:\+sdd\[(?P<scales>[\d,]+)\](?:\+(?P<weighting>region|mean))?)?(?P<ls>\+ls)?$"
)
_DATASET_PREFIXES = ("cifar100", "tiny_imagenet", "imagenet", "digits", "synthetic")
_SKIP_DIRS = frozenset({"checkpoints", "train.events", "__pycache__"})
#: Config keys that may differ between the seeds of one group (epochs and epoch_passes get their own
#: flags). The teacher is compared by name, not by checkpoint path: paths differ between machines.
_CONFIG_IGNORED = frozenset({"seed", "teacher_ckpt", "epochs", "epoch_passes", "name", "deterministic"})
#: What ``--scales``/``--stand`` set: a variant may differ from its plain method in these and still pair.
VARIANT_KEYS = frozenset({"scales", "stand", "base_temp", "sdd_weighting", "sdd_complementary"})
#: What ``--stand`` rewrites (KD: T ← base_temp, kd_weight ← w; DKD/RLD: α, β × w, T and RLD's α_T ←
#: base_temp); part of the variant's own keys only when ``stand`` differs between the two sides.
STAND_KEYS = frozenset({"temperature", "kd_weight", "alpha", "beta", "alpha_temperature"})
#: A Δ's config check: every run pair compared in full and equal / a key differs / some run's config unknown.
ConfigCheck = Literal["consistent", "inconsistent", "unknown"]
UNREADABLE = "unreadable"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Hints:
    """What to assume for legacy logs whose path says nothing (CLI ``--dataset`` etc.); never overrides."""

    dataset: str | None = None
    teacher: str | None = None
    student: str | None = None
    method: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run, whatever wrote it: ``source`` is ``dskd``, ``mdistiller`` (worklog.txt) or ``lskd``."""

    source: str
    path: str
    dataset: str
    teacher: str | None
    student: str
    method: str
    variant: str
    seed: int | None
    status: str  # finished | running | failed | interrupted | unfinished
    epochs: int | None  # configured; None when the log does not say
    epochs_done: int
    best_acc: float | None
    last_acc: float | None
    curve: tuple[float, ...] = ()  # test top-1 per epoch, epoch 1 first
    config: dict[str, Any] | None = None  # what must agree within a group (seed excluded)
    error: str | None = None
    epoch_passes: int | None = None  # shuffled passes per epoch; legacy trainers make one

    @property
    def epochs_run(self) -> int:
        """The configured epochs, else the epochs logged (what a group's epoch count compares)."""
        return self.epochs if self.epochs is not None else self.epochs_done

    @property
    def full_config(self) -> bool:
        """A dskd ``config.json`` was read: every run-config key is known (missing ones had defaults)."""
        return self.source == "dskd" and self.config is not None

    @property
    def complete(self) -> bool:
        """Finished, every configured epoch done, and a best accuracy to report."""
        enough = self.epochs is None or self.epochs_done >= self.epochs
        return self.status == "finished" and enough and self.best_acc is not None

    @property
    def metadata_known(self) -> bool:
        return UNKNOWN not in (self.dataset, self.student, self.method, self.variant, self.teacher)

    def incomplete_reason(self) -> str:
        if self.status == UNREADABLE:
            return f"unreadable: {self.error}"
        done = f"{self.epochs_done}/{self.epochs}" if self.epochs else f"{self.epochs_done}"
        if self.source != "dskd" and self.status == "unfinished":
            return f"no closing best_acc line ({done} epochs logged)"
        reason = f"{self.status} after {done} epochs"
        return f"{reason}: {self.error}" if self.error else reason

    def metric(self, metric: Metric) -> float | None:
        return self.best_acc if metric == "best" else self.last_acc

    def as_dict(self, used: bool) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "seed": self.seed,
            "status": self.status,
            "epochs": self.epochs,
            "epoch_passes": self.epoch_passes,
            "epochs_done": self.epochs_done,
            "best_acc": self.best_acc,
            "last_acc": self.last_acc,
            "used": used,
        }


@dataclass(frozen=True)
class Discovery:
    records: list[RunRecord]
    skipped: list[tuple[str, str]]  # (path, why it is not a run): no epoch blocks, no method/student
    #: (path, reason) of every run whose files could not be read; those whose folder names say which
    #: group they belong to are also records with status ``unreadable`` (excluded from their group).
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def variant_name(method: str, scales: Sequence[int], stand: bool) -> str:
    """The canonical variant name (``RunConfig.variant``): ``kd``, ``kd+sdd[1,2]``, ``kd+sdd[1,2]+ls``;
    ``crd+kd+sdd[1,2]+ls`` for a feature method, whose SDD/LS come as an added KD term."""
    from dskd_core.errors import UnknownNameError
    from dskd_core.methods import get_method

    name = method
    sdd = list(scales) not in ([], [1])
    try:
        added = get_method(method).enhanced_by
    except UnknownNameError:  # a method of a legacy log that dskd does not have
        added = None
    if added and (sdd or stand):
        name += "+" + added
    if sdd:
        name += "+sdd[" + ",".join(str(s) for s in scales) + "]"
    return name + ("+ls" if stand else "")


def parse_variant(variant: str) -> tuple[str, list[int], bool] | None:
    """``kd+sdd[1,2]+ls`` → ("kd", [1, 2], True); None for names that are not canonical."""
    match = _VARIANT.match(variant)
    if match is None:
        return None
    scales = [int(s) for s in match["scales"].split(",")] if match["scales"] else [1]
    return match["method"], scales, bool(match["ls"])


def own_reduction(variant: str) -> bool:
    """Whether a variant uses its method's own SDD reduction (no ``+region``/``+mean`` token in its name)."""
    match = _VARIANT.match(variant)
    return match is not None and match["weighting"] is None


def is_dskd_variant(variant: str) -> bool:
    """SDD (more than the global scale) and logit standardization together: the README's "Ours"."""
    parsed = parse_variant(variant)
    return parsed is not None and parsed[1] != [1] and parsed[2]


def model_name(short: str) -> str:
    """mdistiller/DSKD short names (``res32x4``, ``shuv2``, ``*_sdd``) → model names."""
    name = short.strip().removesuffix("_sdd")
    return MODEL_ALIASES.get(name, name)


# --------------------------------------------------------------------------- discovery


class UnreadableRun(ValueError):
    """A run's files cannot be read (corrupt JSON, not an object, an I/O error); the message says which."""


def discover(paths: Sequence[Path], hints: Hints | None = None) -> Discovery:
    """Every run under ``paths`` (folders are walked, a run folder may be given itself; files are read
    as logs), in path order. Unreadable runs are collected, never raised: see :class:`Discovery`."""
    hints = hints or Hints()
    records: list[RunRecord] = []
    skipped: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise UsageError(f"{root} not found: pass folders holding dskd runs or legacy logs")
        for kind, path in _candidates(root):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                record = _read(kind, path, hints)
            except UnreadableRun as err:
                unreadable.append((str(path), str(err)))
                continue
            except (OSError, ValueError) as err:
                unreadable.append((str(path), f"{path.name} cannot be read ({_reason(err)})"))
                continue
            if record is None:
                why = "no method/student in summary.json or config.json" if kind == "dskd" else "no epoch blocks"
                skipped.append((str(path), why))
                continue
            records.append(record)
            if record.status == UNREADABLE:
                unreadable.append((record.path, record.error or UNREADABLE))
    return Discovery(records, skipped, unreadable)


def _reason(err: Exception) -> str:
    return (err.strerror if isinstance(err, OSError) else None) or str(err)


def _candidates(root: Path) -> Iterator[tuple[str, Path]]:
    """("dskd", run folder) | ("worklog", file) | ("lskd", file), walking folders in sorted order."""
    if root.is_file():
        if root.name in ("summary.json", "config.json", "log.jsonl"):
            yield "dskd", root.parent
        elif root.name == "worklog.txt":
            yield "worklog", root
        elif _LSKD_NAME.match(root.name):
            yield "lskd", root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        here = Path(folder)
        if "summary.json" in files or ("config.json" in files and "log.jsonl" in files):
            dirs[:] = []  # a run folder holds nothing else to report
            yield "dskd", here
            continue
        for name in sorted(files):
            if name == "worklog.txt":
                yield "worklog", here / name
            elif _LSKD_NAME.match(name):
                yield "lskd", here / name


def _read(kind: str, path: Path, hints: Hints) -> RunRecord | None:
    if kind == "dskd":
        return read_dskd_run(path)
    if kind == "lskd":
        return read_lskd_log(path)
    return read_worklog(path, hints)


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when there is no such file; :class:`UnreadableRun` otherwise."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableRun(f"{path.name} cannot be read ({_reason(err)})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnreadableRun(f"{path.name} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        kind = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
        raise UnreadableRun(f"{path.name} holds {kind}, not a JSON object")
    return value


def read_jsonl_curve(path: Path) -> tuple[list[float], bool]:
    """Test top-1 per epoch from ``log.jsonl`` (the last entry of an epoch wins) and whether it ended.

    A line that does not parse, or an event with odd values, is skipped (a line cut by a kill).
    """
    by_epoch: dict[int, float] = {}
    ended = False
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
            if event.get("event") == "epoch" and "test_acc" in event:
                by_epoch[int(event["epoch"])] = float(event["test_acc"])
            elif event.get("event") == "end":
                ended = True
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            continue
    return [by_epoch[e] for e in sorted(by_epoch)], ended


def _dskd_layout(run_dir: Path) -> dict[str, Any]:
    """``<dataset>/<teacher>-<student>/<variant>/seed<k>`` read back from the path, for what the files lack."""
    parts = run_dir.resolve().parts  # "." or "../seed0" name the folder too
    if len(parts) < 4 or not re.fullmatch(r"seed\d+", parts[-1]):
        return {}
    teacher, sep, student = parts[-3].partition("-")
    meta: dict[str, Any] = {"seed": int(parts[-1][4:]), "dataset": parts[-4]}
    meta |= {"teacher": teacher, "student": student} if sep else {"teacher": None, "student": teacher}
    parsed = parse_variant(parts[-2])
    if parsed is not None:
        meta |= {"method": parsed[0], "variant": parts[-2]}
    return meta


def _dskd_progress(summary: dict[str, Any], curve: list[float], ended: bool, epochs: int | None) -> tuple[str, int]:
    """(status, epochs done): the summary's, else what the log says."""
    done = _int_or_none(summary.get("epochs_done"))
    if done is None:
        done = len(curve) or (epochs or 0 if summary.get("best_acc") is not None else 0)
    status = summary.get("status")
    if not status:
        status = "finished" if ended or (epochs is not None and 0 < epochs <= done) else "running"
    return str(status), done


def _read_part(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        return _read_json(path)
    except UnreadableRun as err:
        problems.append(str(err))
        return {}


def read_dskd_run(run_dir: Path) -> RunRecord | None:
    """A dskd run folder: ``summary.json`` first, then ``config.json``, ``log.jsonl`` and the folder names.

    A file that cannot be read makes the run a record with status ``unreadable`` (never averaged)
    when the rest says which group it is, else raises :class:`UnreadableRun`.
    """
    problems: list[str] = []
    summary = _read_part(run_dir / "summary.json", problems)
    config = _read_part(run_dir / "config.json", problems)
    try:
        curve, ended = read_jsonl_curve(run_dir / "log.jsonl")
    except OSError as err:
        problems.append(f"log.jsonl cannot be read ({_reason(err)})")
        curve, ended = [], False
    info = {**_dskd_layout(run_dir), **config, **{k: v for k, v in summary.items() if v is not None}}
    if "method" not in info or "student" not in info:
        if problems:
            raise UnreadableRun("; ".join(problems))
        return None
    if not problems:
        try:
            return _dskd_record(run_dir, summary, config, info, curve, ended)
        except (TypeError, ValueError) as err:
            problems.append(f"summary.json or config.json holds a value of the wrong type ({err})")
    return _unreadable_record(run_dir, summary, config, info, "; ".join(problems))


def _unreadable_record(
    run_dir: Path, summary: dict[str, Any], config: dict[str, Any], info: dict[str, Any], why: str
) -> RunRecord:
    """A run that is listed (excluded, with ``why``) under the group its readable parts name."""
    method = str(info["method"])
    try:
        variant = _dskd_variant(method, summary, config, info)
    except (TypeError, ValueError):
        variant = str(info.get("variant", method))
    return RunRecord(
        source="dskd",
        path=str(run_dir),
        dataset=str(info.get("dataset", UNKNOWN)),
        teacher=None if info.get("teacher") is None else str(info["teacher"]),
        student=str(info["student"]),
        method=method,
        variant=variant,
        seed=_int_or_none(info.get("seed")),
        status=UNREADABLE,
        epochs=_int_or_none(info.get("epochs")),
        epochs_done=0,
        best_acc=None,
        last_acc=None,
        error=why,
    )


def _dskd_variant(method: str, summary: dict[str, Any], config: dict[str, Any], info: dict[str, Any]) -> str:
    """The variant of the config, named as dskd names it now (a run trained before the SDD
    reduction was part of the name is named by its config, not by its summary), else as recorded."""
    if config:
        from pydantic import ValidationError

        from dskd_core.config import RunConfig
        from dskd_core.errors import DskdError

        try:
            return RunConfig(**{k: v for k, v in config.items() if k in RunConfig.model_fields}).variant
        except (ValidationError, DskdError, TypeError):
            scales, stand = config.get("scales", [1]), bool(config.get("stand"))
            return variant_name(method, scales, stand)
    return str(summary.get("variant") or info.get("variant"))


def _dskd_record(
    run_dir: Path,
    summary: dict[str, Any],
    config: dict[str, Any],
    info: dict[str, Any],
    curve: list[float],
    ended: bool,
) -> RunRecord:
    method = str(info["method"])
    variant = _dskd_variant(method, summary, config, info)
    epochs = _int_or_none(info.get("epochs"))
    status, epochs_done = _dskd_progress(summary, curve, ended, epochs)
    best = summary.get("best_acc") if epochs_done > 0 else None
    last = summary.get("last_acc")
    full = _with_defaults(config)
    return RunRecord(
        source="dskd",
        path=str(run_dir),
        dataset=str(info.get("dataset", UNKNOWN)),
        teacher=info.get("teacher"),
        student=str(info["student"]),
        method=method,
        variant=variant,
        seed=_int_or_none(info.get("seed")),
        status=status,
        epochs=epochs,
        epochs_done=epochs_done,
        best_acc=float(best) if best is not None else (max(curve) if curve else None),
        last_acc=float(last) if last is not None else (curve[-1] if curve else None),
        curve=tuple(curve),
        config={k: v for k, v in full.items() if k not in _CONFIG_IGNORED} or None,
        error=summary.get("error"),
        epoch_passes=_int_or_none(full.get("epoch_passes")) if config else None,
    )


def _with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config with the keys an older dskd did not write, at the defaults that applied then."""
    if not config:
        return config
    from dskd_core.config import RunConfig

    missing = {
        name: spec.get_default(call_default_factory=True)
        for name, spec in RunConfig.model_fields.items()
        if name not in config and not spec.is_required()
    }
    return {**missing, **config} if missing else config


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
    match = _LSKD_NAME.match(path.name)
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
        meta["epochs"] = _int_or_none(cfg["SOLVER.EPOCHS"])
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


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stat:
    """n, mean and sample standard deviation (n − 1; None below two values)."""

    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "min": self.min, "max": self.max}


def summarize(values: Sequence[float]) -> Stat:
    """Mean and sample std (Bessel's n − 1, as papers report "mean ± std over seeds")."""
    n = len(values)
    if n == 0:
        return Stat(0, None, None, None, None)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Stat(n, mean, std, min(values), max(values))


# --------------------------------------------------------------------------- groups

GroupKey = tuple[str, str | None, str, str, str]  # dataset, teacher, student, method, variant


@dataclass(frozen=True)
class Group:
    """The runs of one (dataset, teacher, student, method, variant), aggregated."""

    dataset: str
    teacher: str | None
    student: str
    method: str
    variant: str
    runs: list[RunRecord]
    used: list[RunRecord]
    flags: list[str] = field(default_factory=list)  # problems: excluded runs, inconsistencies
    notes: list[str] = field(default_factory=list)  # information that is not a problem
    best: Stat = field(default_factory=lambda: summarize([]))
    last: Stat = field(default_factory=lambda: summarize([]))
    epochs: int | None = None  # None when mixed (flagged) or no complete run
    epoch_passes: int | None = None  # None when mixed (flagged) or unknown (a dskd run without config.json)

    @property
    def epochs_label(self) -> str:
        """``240×1`` (epochs × passes per epoch), ``240`` when passes are unknown, ``mixed``, or ``—``."""
        if not self.used:
            return "—"
        passes = {r.epoch_passes for r in self.used if r.epoch_passes is not None}
        if self.epochs is None or len(passes) > 1:
            return "mixed"
        return f"{self.epochs}×{self.epoch_passes}" if self.epoch_passes is not None else str(self.epochs)

    @property
    def key(self) -> GroupKey:
        return (self.dataset, self.teacher, self.student, self.method, self.variant)

    @property
    def n(self) -> int:
        return len(self.used)

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def metadata_known(self) -> bool:
        return self.runs[0].metadata_known

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.used if r.seed is not None)

    @property
    def excluded(self) -> list[RunRecord]:
        return [r for r in self.runs if r not in self.used]

    def stat(self, metric: Metric) -> Stat:
        return self.best if metric == "best" else self.last

    def by_seed(self, metric: Metric) -> dict[int, float]:
        """Seed → value of the used runs that have a seed (legacy logs have none); empty when a seed repeats."""
        seeds = self.seeds
        if len(set(seeds)) != len(seeds):
            return {}
        return {r.seed: v for r in self.used if r.seed is not None and (v := r.metric(metric)) is not None}

    def as_dict(self, metric: Metric) -> dict[str, Any]:
        chosen = self.stat(metric)
        return {
            "dataset": self.dataset,
            "teacher": self.teacher,
            "student": self.student,
            "method": self.method,
            "variant": self.variant,
            "n": self.n,
            "seeds": self.seeds,
            "mean": chosen.mean,
            "std": chosen.std,
            "best": self.best.as_dict(),
            "last": self.last.as_dict(),
            "epochs": self.epochs,
            "epoch_passes": self.epoch_passes,
            "ok": self.ok,
            "flags": self.flags,
            "notes": self.notes,
            "excluded": [{"path": r.path, "reason": r.incomplete_reason()} for r in self.excluded],
            "runs": [r.as_dict(used=r in self.used) for r in self.runs],
        }


def _group_key(record: RunRecord) -> tuple[Any, ...]:
    key: tuple[Any, ...] = (record.dataset, record.teacher, record.student, record.method, record.variant)
    # Runs whose identity is unknown are never pooled with each other: one group per log.
    return key if record.metadata_known else (*key, record.path)


def _variant_sort(variant: str) -> tuple[Any, ...]:
    parsed = parse_variant(variant)
    if parsed is None:
        return (1, variant)
    return (0, len(parsed[1]), parsed[1], parsed[2])


def _sort_key(group: Group) -> tuple[Any, ...]:
    return (group.dataset, group.teacher or "", group.student, group.method, _variant_sort(group.variant))


def config_mismatch(a: RunRecord, b: RunRecord, ignore: Iterable[str] = ()) -> tuple[dict[str, tuple[Any, Any]], bool]:
    """The config keys in which two runs differ, with (a's, b's) value, and whether both configs were known.

    Two dskd configs are compared in full by :func:`dskd_core.config.config_differences` (keys an
    older ``config.json`` lacks had their defaults; execution keys left to the device match);
    two logs of one legacy format by the keys either records; a log and a dskd run by the keys
    both record. ``_CONFIG_IGNORED`` and ``ignore`` are skipped; epochs are compared elsewhere.
    """
    from dskd_core.config import config_differences

    skipped = _CONFIG_IGNORED | set(ignore)
    if a.config is None or b.config is None:
        return {}, False
    ca, cb = a.config, b.config
    if a.full_config and b.full_config:
        # Both were completed with the defaults when read (_dskd_record), so .get sees every key.
        return {k: (ca.get(k), cb.get(k)) for k in config_differences(ca, cb, ignore=skipped)}, True
    shared = (ca.keys() | cb.keys()) if a.source == b.source else (ca.keys() & cb.keys())
    return {k: (ca.get(k), cb.get(k)) for k in sorted(shared - skipped) if ca.get(k) != cb.get(k)}, False


def _consistency_flags(used: Sequence[RunRecord]) -> list[str]:
    flags = []
    epochs = sorted({r.epochs_run for r in used})
    if len(epochs) > 1:
        flags.append("inconsistent: mixed epochs " + ", ".join(map(str, epochs)))
    passes = sorted({r.epoch_passes for r in used if r.epoch_passes is not None})
    if len(passes) > 1:
        flags.append("inconsistent: mixed epoch_passes " + ", ".join(map(str, passes)))
    for source in sorted({r.source for r in used}):
        same = [r for r in used if r.source == source and r.config is not None]
        differing = sorted({k for i, r in enumerate(same) for o in same[i + 1 :] for k in config_mismatch(r, o)[0]})
        if differing:
            flags.append(f"inconsistent: mixed configs ({', '.join(differing)} differ)")
    seeds = [r.seed for r in used if r.seed is not None]
    for seed in sorted({s for s in seeds if seeds.count(s) > 1}):
        flags.append(f"inconsistent: seed {seed} appears {seeds.count(seed)} times")
    return flags


def make_group(runs: Sequence[RunRecord]) -> Group:
    """Aggregate the runs of one group: incomplete and unreadable runs are excluded and flagged, never averaged."""
    first = runs[0]
    used = [r for r in runs if r.complete]
    flags = []
    unreadable = sum(r.status == UNREADABLE for r in runs)
    excluded = len(runs) - len(used) - unreadable
    if excluded:
        flags.append(f"incomplete: {excluded} run{'s' if excluded > 1 else ''} excluded")
    if unreadable:
        flags.append(f"unreadable: {unreadable} run{'s' if unreadable > 1 else ''} excluded")
    flags += _consistency_flags(used)
    if not first.metadata_known:
        flags.append("unknown metadata: pass --dataset/--teacher/--student/--method for this log")
    notes = []
    sources = sorted({r.source for r in used})
    if len(sources) > 1:
        notes.append("sources: " + ", ".join(sources))
    epochs = {r.epochs_run for r in used}
    passes = {r.epoch_passes for r in used if r.epoch_passes is not None}
    return Group(
        dataset=first.dataset,
        teacher=first.teacher,
        student=first.student,
        method=first.method,
        variant=first.variant,
        runs=list(runs),
        used=used,
        flags=flags,
        notes=notes,
        best=summarize([r.best_acc for r in used if r.best_acc is not None]),
        last=summarize([r.last_acc for r in used if r.last_acc is not None]),
        epochs=epochs.pop() if len(epochs) == 1 else None,
        epoch_passes=passes.pop() if len(passes) == 1 else None,
    )


def group_records(records: Iterable[RunRecord]) -> list[Group]:
    """Groups by (dataset, teacher, student, method, variant), in a stable, readable order."""
    buckets: dict[tuple[Any, ...], list[RunRecord]] = {}
    for record in records:
        buckets.setdefault(_group_key(record), []).append(record)
    groups = [
        make_group(sorted(runs, key=lambda r: (r.seed is None, r.seed or 0, r.path))) for runs in buckets.values()
    ]
    return sorted(groups, key=_sort_key)


# --------------------------------------------------------------------------- paired Δ


@dataclass(frozen=True)
class Delta:
    """``variant`` − ``base`` (its method without SDD or LS) on one pair: means, and per seed when seeds match.

    ``config`` says whether the two sides ran the same recipe but for the variant's own keys:
    ``inconsistent`` (``differing`` names the keys; the Δ is shown but flagged, never ``ok``),
    ``consistent``, or ``unknown`` when a side's config is not on record (legacy logs: see ``notes``).
    """

    base: Group
    other: Group
    metric: Metric
    diff: float | None  # difference of the means
    paired: Stat  # per-seed differences over the seeds both groups hold
    paired_seeds: list[int]
    config: ConfigCheck = "consistent"
    differing: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # the inconsistency, keys and values named
    notes: list[str] = field(default_factory=list)  # "config unknown …"

    @property
    def dskd(self) -> bool:
        return is_dskd_variant(self.other.variant)

    @property
    def consistent(self) -> bool:
        """The two configs agree as far as they are known (``unknown`` is not a disagreement)."""
        return self.config != "inconsistent"

    @property
    def ok(self) -> bool:
        return self.base.ok and self.other.ok and self.consistent

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.base.dataset,
            "teacher": self.base.teacher,
            "student": self.base.student,
            "method": self.base.method,
            "base_variant": self.base.variant,
            "variant": self.other.variant,
            "dskd": self.dskd,
            "metric": self.metric,
            "base_mean": self.base.stat(self.metric).mean,
            "variant_mean": self.other.stat(self.metric).mean,
            "diff": self.diff,
            "paired": None
            if not self.paired_seeds
            else {"n": self.paired.n, "mean": self.paired.mean, "std": self.paired.std, "seeds": self.paired_seeds},
            "ok": self.ok,
            "config": self.config,
            "differing": self.differing,
            "flags": self.flags,
            "notes": self.notes,
        }


def variant_keys(base: Group, other: Group) -> frozenset[str]:
    """The keys a variant may set apart from its base: ``--scales``/``--stand``'s, and what ``--stand`` rewrites."""
    stands = {p[2] if (p := parse_variant(g.variant)) is not None else None for g in (base, other)}
    return VARIANT_KEYS | STAND_KEYS if len(stands) > 1 else VARIANT_KEYS


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _unknown_label(record: RunRecord) -> str:
    return f"{record.source} logs" if record.source != "dskd" else "dskd runs without config.json"


def compare_groups(base: Group, other: Group) -> tuple[ConfigCheck, dict[str, tuple[Any, Any]], list[str]]:
    """Every used run of ``base`` against every used run of ``other``: epochs, epoch passes and the config
    but for :func:`variant_keys`. Returns the verdict, the differing keys with (base, other) values of
    the first pair that differs, and which runs' configs are unknown."""
    ignore = variant_keys(base, other)
    differing: dict[str, tuple[Any, Any]] = {}
    unknown: set[str] = set()
    for b in base.used:
        for o in other.used:
            if b.epochs_run != o.epochs_run:
                differing.setdefault("epochs", (b.epochs_run, o.epochs_run))
            if None not in (b.epoch_passes, o.epoch_passes) and b.epoch_passes != o.epoch_passes:
                differing.setdefault("epoch_passes", (b.epoch_passes, o.epoch_passes))
            found, known = config_mismatch(b, o, ignore)
            for key, values in found.items():
                differing.setdefault(key, values)
            if STAND_KEYS <= ignore and (ratios := _beta_alpha(b, o)) is not None and ratios[0] != ratios[1]:
                differing.setdefault("beta/alpha", ratios)  # --stand multiplies α and β alike: their ratio stays
            if not known:
                unknown |= {_unknown_label(r) for r in (b, o) if not r.full_config}
    compared = bool(base.used and other.used)
    verdict: ConfigCheck = "inconsistent" if differing else ("unknown" if unknown or not compared else "consistent")
    return verdict, differing, sorted(unknown)


def _beta_alpha(a: RunRecord, b: RunRecord) -> tuple[float, float] | None:
    """β/α of two DKD/RLD runs (``--stand`` scales both by its weight, so a differing ratio is a real
    difference, e.g. a β from another config file); None where either is unknown."""
    values = []
    for record in (a, b):
        config = record.config or {}
        alpha, beta = config.get("alpha"), config.get("beta")
        if not isinstance(alpha, (int, float)) or not isinstance(beta, (int, float)) or alpha == 0:
            return None
        values.append(round(beta / alpha, 9))
    return values[0], values[1]


def paired_delta(base: Group, other: Group, metric: Metric) -> Delta:
    """Difference of means, plus the mean ± std of per-seed differences over the shared seeds, and
    whether the two configs agree (:func:`compare_groups`); a disagreement is flagged, not hidden."""
    b, o = base.stat(metric).mean, other.stat(metric).mean
    base_seeds, other_seeds = base.by_seed(metric), other.by_seed(metric)
    shared = sorted(set(base_seeds) & set(other_seeds))
    verdict, differing, unknown = compare_groups(base, other)
    flags, notes = [], []
    if differing:
        pairs = ", ".join(f"{k} ({_value_text(x)} vs {_value_text(y)})" for k, (x, y) in differing.items())
        flags.append(f"inconsistent: {base.variant} and {other.variant} differ in {pairs}")
    if unknown:
        notes.append(f"config unknown for {' and '.join(unknown)}: only the epochs and keys they record compared")
    return Delta(
        base=base,
        other=other,
        metric=metric,
        diff=None if b is None or o is None else o - b,
        paired=summarize([other_seeds[s] - base_seeds[s] for s in shared]),
        paired_seeds=shared,
        config=verdict,
        differing=list(differing),
        flags=flags,
        notes=notes,
    )


def deltas(groups: Sequence[Group], metric: Metric) -> list[Delta]:
    """Every variant against its plain method on the same dataset and pair (``kd+sdd[1,2]+ls`` vs ``kd``)."""
    plain = {g.key: g for g in groups if g.variant == g.method}
    out = []
    for group in groups:
        base = plain.get((group.dataset, group.teacher, group.student, group.method, group.method))
        if base is not None and base is not group and group.metadata_known:
            out.append(paired_delta(base, group, metric))
    return out


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Report:
    metric: Metric
    groups: list[Group]
    deltas: list[Delta]
    skipped: list[tuple[str, str]]
    #: (path, reason) of every run excluded because its files could not be read (the CLI exits 1).
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def delta_for(self, group: Group) -> Delta | None:
        return next((d for d in self.deltas if d.other is group), None)

    @property
    def ungrouped_unreadable(self) -> list[tuple[str, str]]:
        """Unreadable runs that no group lists (nothing readable said which run they are)."""
        grouped = {r.path for g in self.groups for r in g.excluded}
        return [(p, r) for p, r in self.unreadable if p not in grouped]

    def as_dict(self) -> dict[str, Any]:
        """The ``--format json`` document."""
        return {
            "metric": self.metric,
            "groups": [g.as_dict(self.metric) for g in self.groups],
            "deltas": [d.as_dict() for d in self.deltas],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable],
        }


def check_metric(metric: str) -> Metric:
    if metric not in METRICS:
        raise UsageError(f"invalid --metric '{metric}': use best or last")
    return cast(Metric, metric)


def build_report(paths: Sequence[Path], metric: str = "best", hints: Hints | None = None) -> Report:
    """Discover, group and aggregate; a folder with nothing reportable (not even an unreadable run) is a
    usage error."""
    chosen = check_metric(metric)
    found = discover(paths, hints)
    if not found.records and not found.unreadable:
        where = ", ".join(str(p) for p in paths)
        raise UsageError(
            f"no runs found under {where}: point report at dskd run folders (runs/...) or legacy logs "
            "(worklog.txt, TYPE,TEACHER,STUDENT,BASE_TEMP,KD_WEIGHT.txt)"
        )
    groups = group_records(found.records)
    return Report(chosen, groups, deltas(groups, chosen), found.skipped, found.unreadable)


# --------------------------------------------------------------------------- the DSKD README grids

PAPER_DATASET = "cifar100"
#: The DSKD README's result tables: (name, title, columns as (teacher, student, teacher label, student label)).
PAPER_TABLES: tuple[tuple[str, str, tuple[tuple[str, str, str, str], ...]], ...] = (
    (
        "homogeneous",
        "Teacher and student have identical structures",
        (
            ("resnet32x4", "resnet8x4", "ResNet32x4", "ResNet8x4"),
            ("vgg13", "vgg8", "VGG13", "VGG8"),
            ("wrn_40_2", "wrn_40_1", "WRN-40-2", "WRN-40-1"),
            ("wrn_40_2", "wrn_16_2", "WRN-40-2", "WRN-16-2"),
            ("resnet56", "resnet20", "ResNet56", "ResNet20"),
            ("resnet110", "resnet32", "ResNet110", "ResNet32"),
            ("resnet110", "resnet20", "ResNet110", "ResNet20"),
        ),
    ),
    (
        "heterogeneous",
        "Teacher and student have distinct structures",
        (
            ("resnet32x4", "ShuffleV2", "ResNet32x4", "ShuffleNet-V2"),
            ("resnet32x4", "wrn_16_2", "ResNet32x4", "WRN-16-2"),
            ("resnet32x4", "wrn_40_2", "ResNet32x4", "WRN-40-2"),
            ("wrn_40_2", "resnet8x4", "WRN-40-2", "ResNet8x4"),
            ("wrn_40_2", "MobileNetV2", "WRN-40-2", "MobileNet-V2"),
            ("vgg13", "MobileNetV2", "VGG13", "MobileNet-V2"),
            ("ResNet50", "MobileNetV2", "ResNet50", "MobileNet-V2"),
        ),
    ),
)
PAPER_METHODS = (("kd", "KD"), ("dkd", "DKD"), ("rld", "RLD"))


@dataclass(frozen=True)
class PaperCell:
    group: Group
    metric: Metric
    best_in_column: bool = False
    vs_base: Delta | None = None  # a METHOD + DSKD cell's Δ to the METHOD cell above it

    @property
    def stat(self) -> Stat:
        return self.group.stat(self.metric)

    @property
    def flags(self) -> list[str]:
        """The group's flags, and for a METHOD + DSKD cell a config that differs from the METHOD cell's."""
        return self.group.flags + (self.vs_base.flags if self.vs_base is not None else [])

    @property
    def ok(self) -> bool:
        return not self.flags

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.group.variant,
            "n": self.stat.n,
            "mean": self.stat.mean,
            "std": self.stat.std,
            "best_in_column": self.best_in_column,
            "ok": self.ok,
            "flags": self.flags,
        }


@dataclass(frozen=True)
class PaperRow:
    label: str  # "KD" or "KD + DSKD"
    method: str
    dskd: bool
    cells: list[PaperCell | None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "method": self.method,
            "dskd": self.dskd,
            "cells": [c.as_dict() if c else None for c in self.cells],
        }


@dataclass(frozen=True)
class PaperTable:
    name: str
    title: str
    columns: list[tuple[str, str, str, str]]
    rows: list[PaperRow]
    deltas: dict[str, list[Delta | None]]  # method → per column METHOD + DSKD − METHOD

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"teacher": t, "student": s, "label": f"{tl}/{sl}"} for t, s, tl, sl in self.columns],
            "rows": [r.as_dict() for r in self.rows],
            "deltas": [
                {"method": m, "cells": [d.as_dict() if d else None for d in cells]} for m, cells in self.deltas.items()
            ],
        }


@dataclass(frozen=True)
class Paper:
    metric: Metric
    tables: list[PaperTable]
    notes: list[str]

    @property
    def empty(self) -> bool:
        return all(c is None or c.stat.mean is None for t in self.tables for r in t.rows for c in r.cells)

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "tables": [t.as_dict() for t in self.tables], "notes": self.notes}


def recommended_scales(method: str, teacher: str, student: str, structure: str) -> list[int]:
    """The preset's SDD scales (the README: [1,2] homogeneous, [1,2,4] heterogeneous)."""
    from dskd_core.presets import find_preset

    preset = find_preset(method, teacher, student, PAPER_DATASET)
    if preset is not None:
        return list(preset.sdd_scales)
    return [1, 2] if structure == "homogeneous" else [1, 2, 4]


def pick_dskd_group(candidates: Sequence[Group], recommended: Sequence[int]) -> tuple[Group | None, str | None]:
    """Among SDD+LS groups of one pair, the recommended scales, else the one with most runs; and a note."""
    if not candidates:
        return None, None
    want = variant_name(candidates[0].method, recommended, stand=True)
    chosen = next((g for g in candidates if g.variant == want and g.n > 0), None)
    if chosen is None:
        chosen = max(candidates, key=lambda g: (g.n, -candidates.index(g)))
    if len(candidates) == 1 and chosen.variant == want:
        return chosen, None
    others = [g.variant for g in candidates if g is not chosen]
    why = "the preset's scales" if chosen.variant == want else f"the preset's {want} has no complete runs"
    also = f"; also found {', '.join(others)}" if others else ""
    return chosen, f"{chosen.variant} ({why}{also})"


def _bold_best(cells: list[PaperCell | None]) -> list[PaperCell | None]:
    means = [c.stat.mean for c in cells if c is not None and c.stat.mean is not None]
    top = max(means) if means else None
    return [None if c is None else replace(c, best_in_column=top is not None and c.stat.mean == top) for c in cells]


def _paper_table(
    name: str, title: str, columns: Sequence[tuple[str, str, str, str]], report: Report, notes: list[str]
) -> PaperTable:
    index = {g.key: g for g in report.groups if g.dataset == PAPER_DATASET}
    grid: dict[tuple[str, bool], list[PaperCell | None]] = {}
    delta_cells: dict[str, list[Delta | None]] = {}
    for method, label in PAPER_METHODS:
        plain_cells: list[PaperCell | None] = []
        dskd_cells: list[PaperCell | None] = []
        delta_cells[method] = []
        for teacher, student, t_label, s_label in columns:
            plain = index.get((PAPER_DATASET, teacher, student, method, method))
            # Only the method's own SDD reduction is the paper's row (DKD: DSKD's mean form, never +region).
            candidates = [
                g
                for key, g in index.items()
                if key[1:4] == (teacher, student, method) and is_dskd_variant(g.variant) and own_reduction(g.variant)
            ]
            ours, note = pick_dskd_group(candidates, recommended_scales(method, teacher, student, name))
            if note:
                notes.append(f"{label} + DSKD, {t_label}/{s_label}: {note}")
            delta = None
            if plain is not None and ours is not None and plain.n and ours.n:
                delta = paired_delta(plain, ours, report.metric)
            plain_cells.append(PaperCell(plain, report.metric) if plain else None)
            dskd_cells.append(PaperCell(ours, report.metric, vs_base=delta) if ours else None)
            delta_cells[method].append(delta)
        grid[(method, False)], grid[(method, True)] = plain_cells, dskd_cells
    columns_best = list(zip(*grid.values(), strict=True))
    bolded = [_bold_best(list(col)) for col in columns_best]
    rows = []
    for r, (method, dskd) in enumerate(grid):
        label = dict(PAPER_METHODS)[method] + (" + DSKD" if dskd else "")
        rows.append(PaperRow(label, method, dskd, [col[r] for col in bolded]))
    return PaperTable(name, title, list(columns), rows, delta_cells)


def paper_grids(report: Report) -> Paper:
    """The DSKD README's two CIFAR-100 grids from whatever runs exist (rows METHOD and METHOD + DSKD)."""
    notes: list[str] = []
    tables = [_paper_table(name, title, columns, report, notes) for name, title, columns in PAPER_TABLES]
    return Paper(report.metric, tables, notes)


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Curve:
    """The mean test top-1 per epoch over a group's complete runs (truncated to the shortest)."""

    label: str
    epochs: list[int]
    mean: list[float]
    n: int


def group_curves(report: Report) -> list[Curve]:
    """One curve per group with complete runs that logged their epochs."""
    out = []
    for group in report.groups:
        curves = [r.curve for r in group.used if r.curve]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        mean = [math.fsum(c[i] for c in curves) / len(curves) for i in range(length)]
        pair = f"{group.teacher}→{group.student}" if group.teacher else group.student
        label = f"{group.variant} {pair} ({group.dataset}, n={len(curves)})"
        out.append(Curve(label, list(range(1, length + 1)), mean, len(curves)))
    return out
