"""Paired Δ: a variant against its plain method on the same dataset and pair, and a method's plain variant
against the same student trained from scratch (vanilla), each with a config check and a noise verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dskd_core.config import STAND_KEYS, param_keys
from dskd_core.report.groups import Group, config_mismatch
from dskd_core.report.naming import is_dskd_variant, parse_variant
from dskd_core.report.records import Metric, RunRecord
from dskd_core.report.stats import Stat, summarize

#: What ``--scales``/``--stand`` set: a variant may differ from its plain method in these and still pair.
VARIANT_KEYS = frozenset({"scales", "stand", "base_temp", "sdd_weighting", "sdd_complementary"})
#: ``config.STAND_KEYS``, what ``--stand`` rewrites, are part of the variant's own keys only when ``stand``
#: differs between the two sides.
#: What distilling sets apart from training the same student alone (``vanilla``): the method, its teacher and
#: the distillation's values; with :func:`dskd_core.config.param_keys`, every method's own parameters.
DISTILL_KEYS = (
    frozenset({"method", "teacher", "teacher_ckpt", "ce_weight", "kd_weight", "temperature", "warmup"}) | VARIANT_KEYS
)
#: The plain method of a student trained from scratch.
SCRATCH = "vanilla"
#: A Δ's noise verdict: whether the paired 95% interval holds 0 (within) or not (beyond); None below two seeds.
Noise = Literal["within", "beyond"]
#: A Δ's config check: every run pair compared in full and equal / a key differs / some run's config unknown.
ConfigCheck = Literal["consistent", "inconsistent", "unknown"]


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

    @property
    def ci95(self) -> tuple[float, float] | None:
        """The 95% interval of the mean per-seed difference (Student t, n − 1 df); None below two paired seeds."""
        return self.paired.ci95 if self.paired_seeds else None

    @property
    def noise(self) -> Noise | None:
        """``within`` when the paired 95% interval holds 0: the difference is not told apart from seed noise."""
        if (ci := self.ci95) is None:
            return None
        return "within" if ci[0] <= 0.0 <= ci[1] else "beyond"

    @property
    def vs_scratch(self) -> bool:
        """The base is the student trained from scratch (the Δ is the distillation's own effect)."""
        return self.base.method == SCRATCH and self.other.method != SCRATCH

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
            else {
                "n": self.paired.n,
                "mean": self.paired.mean,
                "std": self.paired.std,
                "seeds": self.paired_seeds,
                "ci95": None if (ci := self.ci95) is None else list(ci),
                "noise": self.noise,
            },
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


def scratch_keys() -> frozenset[str]:
    """The keys a distillation run may set apart from its student trained from scratch."""
    return DISTILL_KEYS | frozenset(param_keys())


def compare_groups(
    base: Group, other: Group, ignore: frozenset[str] | None = None
) -> tuple[ConfigCheck, dict[str, tuple[Any, Any]], list[str]]:
    """Every used run of ``base`` against every used run of ``other``: epochs, epoch passes and the config
    but for ``ignore`` (default :func:`variant_keys`). Returns the verdict, the differing keys with (base,
    other) values of the first pair that differs, and which runs' configs are unknown."""
    ignore = variant_keys(base, other) if ignore is None else ignore
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
    scratch = base.method == SCRATCH and other.method != SCRATCH
    verdict, differing, unknown = compare_groups(base, other, scratch_keys() if scratch else None)
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
    """Every variant against its plain method on the same dataset and pair (``kd+sdd[1,2]+ls`` vs ``kd``), and
    every plain distillation method against its student trained from scratch on the same dataset (``kd`` vs
    ``vanilla``), where that group is there."""
    plain = {g.key: g for g in groups if g.variant == g.method}
    out = []
    for group in groups:
        if not group.metadata_known:
            continue
        base = plain.get((group.dataset, group.teacher, group.student, group.method, group.method))
        if base is group and group.teacher is not None:
            scratch = plain.get((group.dataset, None, group.student, SCRATCH, SCRATCH))
            base = scratch if scratch is not None and scratch.metadata_known else None
        if base is not None and base is not group:
            out.append(paired_delta(base, group, metric))
    return out
