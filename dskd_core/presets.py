"""Paper presets: per (dataset, source, method, teacher, student, SDD on/off) values for the papers' pairs.

The DSKD README's 14 CIFAR-100 pairs and the two ImageNet pairs (ResNet34 → ResNet18,
ResNet50 → MobileNetV1). The values live in ``presets.toml`` (data, each entry with a note of
where its values come from); this module loads, validates and looks them up. A preset sits
between the method defaults and the user's file and flags.

Two preset sources (``--preset-source``): ``dskd`` (default), the DSKD repository's own config
files, where an ``sdd_*`` file may differ from the plain one (so an entry may hold for SDD runs
only, or plain runs only); and ``mdistiller``, the protocol mdistiller, LSKD and RLD published.
On CIFAR-100 the two agree and one entry serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from dskd_core._compat import tomllib
from dskd_core.config import common_keys
from dskd_core.data import get_dataset_spec
from dskd_core.errors import DskdError, UsageError
from dskd_core.methods import get_method
from dskd_core.models import list_models
from dskd_core.scales import validate_scales

PRESET_DATASET = "cifar100"
#: ``--preset-source``: DSKD's config files, or mdistiller's / LSKD's / RLD's published protocol.
PRESET_SOURCES = ("dskd", "mdistiller")
DEFAULT_SOURCE = "dskd"
_META_KEYS = {"method", "teacher", "student", "structure", "sdd_scales", "base_temp", "stand_kd_weight", "note"}
_OPTIONAL_META = {"dataset", "source", "sdd"}


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
    sources: tuple[str, ...] = PRESET_SOURCES  # the preset sources this entry belongs to
    sdd: bool | None = None  # True: runs with SDD scales only; False: plain runs only; None: both
    note: str = ""  # where the values come from

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.method, self.teacher, self.student)

    def applies(self, source: str, sdd: bool) -> bool:
        """Whether this entry is the preset of a run from ``source`` with SDD on (``sdd``) or off."""
        return source in self.sources and self.sdd in (None, sdd)


def _parse(entry: dict[str, Any]) -> Preset:
    dataset = entry.get("dataset", PRESET_DATASET)
    where = f"preset {dataset} {entry.get('method')} {entry.get('teacher')}->{entry.get('student')}"
    missing = _META_KEYS - set(entry)
    if missing:
        raise DskdError(f"{where} lacks {sorted(missing)}: fix presets.toml")
    method = get_method(entry["method"])
    zoo = get_dataset_spec(dataset).zoo
    for name in (entry["teacher"], entry["student"]):
        if name not in list_models(zoo):
            raise DskdError(f"{where} names an unknown model {name}: fix presets.toml")
    if entry["structure"] not in ("homogeneous", "heterogeneous"):
        raise DskdError(f"{where}: structure must be homogeneous or heterogeneous")
    source = entry.get("source")
    if source is not None and source not in PRESET_SOURCES:
        raise DskdError(f"{where}: source must be one of {', '.join(PRESET_SOURCES)}: fix presets.toml")
    if entry.get("sdd") not in (None, True, False):
        raise DskdError(f"{where}: sdd must be true or false: fix presets.toml")
    values = {k: v for k, v in entry.items() if k not in _META_KEYS | _OPTIONAL_META}
    unknown = set(values) - set(common_keys()) - set(method.Params.model_fields)
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
        sources=PRESET_SOURCES if source is None else (source,),
        sdd=entry.get("sdd"),
        note=str(entry["note"]),
    )


def check_source(value: str | None, flag: str = "--preset-source") -> None:
    """Refuse a preset source that is not one of :data:`PRESET_SOURCES`, naming ``flag``."""
    if value is not None and value not in PRESET_SOURCES:
        raise UsageError(f"invalid {flag} '{value}': use {' or '.join(PRESET_SOURCES)}")


@cache
def load_presets() -> tuple[Preset, ...]:
    """Every preset, validated; two entries for one (dataset, source, method, pair, SDD on/off) are an error."""
    text = resources.files("dskd_core").joinpath("presets.toml").read_text()
    presets = tuple(_parse(entry) for entry in tomllib.loads(text)["preset"])
    keys = [
        (p.dataset, source, *p.key, sdd)
        for p in presets
        for source in p.sources
        for sdd in ((False, True) if p.sdd is None else (p.sdd,))
    ]
    if len(keys) != len(set(keys)):
        raise DskdError("presets.toml holds a (dataset, source, method, teacher, student, sdd) twice: fix it")
    return presets


def find_preset(
    method: str,
    teacher: str | None,
    student: str,
    dataset: str,
    *,
    source: str = DEFAULT_SOURCE,
    sdd: bool = False,
) -> Preset | None:
    """The preset for this run, if the pair is one of the papers' on this dataset.

    ``sdd``: whether the run uses SDD scales beyond the global one (DSKD's ``sdd_*`` files).
    """
    if teacher is None:
        return None
    return next(
        (
            p
            for p in load_presets()
            if p.dataset == dataset and p.key == (method, teacher, student) and p.applies(source, sdd)
        ),
        None,
    )


def select(method: str | None = None, dataset: str | None = None, source: str | None = None) -> list[Preset]:
    """The presets of ``method``, ``dataset`` and ``source`` (None: any); a dataset or method without
    presets is refused, naming the ones that have some."""
    check_source(source, "--source")
    if dataset is not None and dataset not in {p.dataset for p in load_presets()}:
        raise UsageError(f"no presets for dataset '{dataset}': presets exist for cifar100 and imagenet")
    rows = [
        p
        for p in load_presets()
        if (method is None or p.method == method) and dataset in (None, p.dataset) and source in (None, *p.sources)
    ]
    if method is not None and not rows:
        with_presets = sorted({p.method for p in load_presets()})
        raise UsageError(f"no presets for method '{method}': presets exist for {', '.join(with_presets)}")
    return rows
