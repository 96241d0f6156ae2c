"""Paper presets: per (dataset, method, teacher, student) values for the papers' pairs.

The DSKD README's 14 CIFAR-100 pairs and the two ImageNet pairs (ResNet34 → ResNet18,
ResNet50 → MobileNetV1). The values live in ``presets.toml`` (data, with its sources); this
module loads, validates and looks them up. A preset sits between the method defaults and the
user's file and flags.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from dskd_core.errors import DskdError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESET_DATASET = "cifar100"
_META_KEYS = {"method", "teacher", "student", "structure", "sdd_scales", "base_temp", "stand_kd_weight"}
_OPTIONAL_META = {"dataset"}


@dataclass(frozen=True)
class Preset:
    method: str
    teacher: str
    student: str
    structure: Literal["homogeneous", "heterogeneous"]
    sdd_scales: list[int]
    base_temp: float  # --base-temp default under --stand
    stand_kd_weight: float  # --kd-weight default under --stand
    values: dict[str, Any] = field(default_factory=dict)  # run-config keys applied as they are
    dataset: str = PRESET_DATASET

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.method, self.teacher, self.student)


def _parse(entry: dict[str, Any]) -> Preset:
    from dskd_core.config import RunConfig
    from dskd_core.data import get_dataset_spec
    from dskd_core.methods import get_method
    from dskd_core.models import list_models
    from dskd_core.sdd import validate_scales

    dataset = entry.get("dataset", PRESET_DATASET)
    where = f"preset {dataset} {entry.get('method')} {entry.get('teacher')}->{entry.get('student')}"
    missing = _META_KEYS - set(entry)
    if missing:
        raise DskdError(f"{where} lacks {sorted(missing)}: fix presets.toml")
    get_method(entry["method"])
    zoo = get_dataset_spec(dataset).zoo
    for name in (entry["teacher"], entry["student"]):
        if name not in list_models(zoo):
            raise DskdError(f"{where} names an unknown model {name}: fix presets.toml")
    if entry["structure"] not in ("homogeneous", "heterogeneous"):
        raise DskdError(f"{where}: structure must be homogeneous or heterogeneous")
    values = {k: v for k, v in entry.items() if k not in _META_KEYS | _OPTIONAL_META}
    unknown = set(values) - set(RunConfig.model_fields)
    if unknown:
        raise DskdError(f"{where} sets unknown run-config keys {sorted(unknown)}: fix presets.toml")
    return Preset(
        method=entry["method"],
        teacher=entry["teacher"],
        student=entry["student"],
        structure=entry["structure"],
        sdd_scales=list(validate_scales(entry["sdd_scales"])),
        base_temp=float(entry["base_temp"]),
        stand_kd_weight=float(entry["stand_kd_weight"]),
        values=values,
        dataset=dataset,
    )


@cache
def load_presets() -> tuple[Preset, ...]:
    """Every preset, validated; duplicates are an error."""
    text = resources.files("dskd_core").joinpath("presets.toml").read_text()
    presets = tuple(_parse(entry) for entry in tomllib.loads(text)["preset"])
    keys = [(p.dataset, *p.key) for p in presets]
    if len(keys) != len(set(keys)):
        raise DskdError("presets.toml holds a (dataset, method, teacher, student) twice: fix it")
    return presets


def find_preset(method: str, teacher: str | None, student: str, dataset: str) -> Preset | None:
    """The preset for this run, if the pair is one of the papers' on this dataset."""
    if teacher is None:
        return None
    return next((p for p in load_presets() if p.dataset == dataset and p.key == (method, teacher, student)), None)
