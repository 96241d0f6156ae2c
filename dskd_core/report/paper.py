"""The DSKD README's two CIFAR-100 result grids, filled from whatever runs exist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from dskd_core.presets import find_preset, load_presets
from dskd_core.report.build import Report
from dskd_core.report.deltas import Delta, paired_delta
from dskd_core.report.groups import Group
from dskd_core.report.naming import is_dskd_variant, own_reduction, variant_name
from dskd_core.report.records import Metric
from dskd_core.report.stats import Stat

PAPER_DATASET = "cifar100"
#: The DSKD README's two result tables: name (the presets' ``structure``) and title.
PAPER_TITLES = (
    ("homogeneous", "Teacher and student have identical structures"),
    ("heterogeneous", "Teacher and student have distinct structures"),
)
#: How the README writes the models of its tables.
MODEL_LABELS = {
    "resnet32x4": "ResNet32x4",
    "resnet8x4": "ResNet8x4",
    "vgg13": "VGG13",
    "vgg8": "VGG8",
    "wrn_40_2": "WRN-40-2",
    "wrn_40_1": "WRN-40-1",
    "wrn_16_2": "WRN-16-2",
    "resnet56": "ResNet56",
    "resnet20": "ResNet20",
    "resnet110": "ResNet110",
    "resnet32": "ResNet32",
    "ShuffleV2": "ShuffleNet-V2",
    "MobileNetV2": "MobileNet-V2",
    "ResNet50": "ResNet50",
}
PaperColumn = tuple[str, str, str, str]  # teacher, student, teacher label, student label


@cache
def paper_tables() -> tuple[tuple[str, str, tuple[PaperColumn, ...]], ...]:
    """The README's result tables: (name, title, columns), each column a pair of ``presets.toml``'s
    CIFAR-100 KD entries with that ``structure``, in the file's order (DKD's and RLD's are the same pairs)."""
    kd = [p for p in load_presets() if p.method == "kd" and p.dataset == PAPER_DATASET]
    return tuple(
        (
            name,
            title,
            tuple(
                (p.teacher, p.student, MODEL_LABELS.get(p.teacher, p.teacher), MODEL_LABELS.get(p.student, p.student))
                for p in kd
                if p.structure == name
            ),
        )
        for name, title in PAPER_TITLES
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
    tables = [_paper_table(name, title, columns, report, notes) for name, title, columns in paper_tables()]
    return Paper(report.metric, tables, notes)
