"""Runs grouped by (dataset, teacher, student, method, variant) and aggregated: excluded runs and
inconsistencies flagged, never averaged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dskd_core.config import config_differences
from dskd_core.report.naming import parse_variant
from dskd_core.report.records import CONFIG_IGNORED, UNREADABLE, Metric, RunRecord
from dskd_core.report.stats import Stat, summarize

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
    both record. ``CONFIG_IGNORED`` and ``ignore`` are skipped; epochs are compared elsewhere.
    """
    skipped = CONFIG_IGNORED | set(ignore)
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
