"""Configuration, two kinds: :class:`Settings` says *where* things live, :class:`RunConfig` *what* runs.

A run config is resolved in layers: the dataset's recipe (and the method's defaults) → a TOML
file → command-line flags → ``--set key=value`` overrides. The result is validated once and
written next to every result, so nothing is hidden.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dskd_core.errors import UsageError
from dskd_core.sdd import validate_scales

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: Students trained with LR 0.01 on CIFAR-100 (method-spec §4.3; asserted by the DSKD trainer).
LOW_LR_STUDENTS = frozenset({"ShuffleV1", "ShuffleV2", "MobileNetV2"})
#: Method hyperparameters that are set exactly for the methods whose ``defaults`` name them.
METHOD_PARAMS = (
    "feat_weight",
    "at_p",
    "hint_layer",
    "crd_feat_dim",
    "crd_nce_k",
    "crd_momentum",
    "crd_temperature",
    "crd_mode",
    "rkd_distance_weight",
    "rkd_angle_weight",
    "vid_init_var",
    "kdsvd_k",
)


class Settings(BaseSettings):
    """Where data, teachers and runs live, and what to run on (env prefix ``DSKD_``)."""

    model_config = SettingsConfigDict(env_prefix="DSKD_", extra="ignore")

    data_dir: Path = Path("data")
    teachers_dir: Path = Path("teachers")
    runs_dir: Path = Path("runs")
    device: str = "auto"
    download: bool = True
    progress: bool = True
    workers: int | None = Field(default=None, ge=0)  # ImageNet decoding processes per training process; None = auto
    pin_memory: bool = True  # pinned host memory for ImageNet batches bound for CUDA


class RunConfig(BaseModel):
    """Everything that determines a run's result. Field names are the ``--set`` keys."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    method: str
    student: str
    teacher: str | None = None
    dataset: str = "cifar100"
    seed: int = Field(0, ge=0)
    # solver
    epochs: int = Field(240, gt=0)
    batch_size: int = Field(64, gt=0)
    test_batch_size: int = Field(64, gt=0)
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    lr_decay_epochs: list[int] = Field(default_factory=lambda: [150, 180, 210])
    lr_decay_rate: float = Field(0.1, gt=0, le=1)
    #: step: ×lr_decay_rate after each of lr_decay_epochs (the papers'); cosine: per step from lr to 0 over the run
    lr_schedule: Literal["step", "cosine"] = "step"
    # distillation
    ce_weight: float = Field(1.0, ge=0)
    kd_weight: float = Field(0.0, ge=0)
    temperature: float = Field(4.0, gt=0)
    scales: list[int] = Field(default_factory=lambda: [1])
    stand: bool = False
    base_temp: float = Field(2.0, gt=0)
    # DKD/RLD (None where the method has no such parameter)
    alpha: float | None = Field(None, ge=0)
    beta: float | None = Field(None, ge=0)
    alpha_temperature: float | None = Field(None, gt=0)
    warmup: int = Field(0, ge=0)  # epochs of linear warm-up of the distillation term, min(epoch / warmup, 1)
    sdd_complementary: float = Field(2.0, gt=0)
    sdd_weighting: Literal["region", "mean"] = "region"
    clip_grad: float | None = Field(None, gt=0)  # max global grad norm; None = no clipping
    aug: bool = False  # RandAugment(n=2, m=10) after the flip
    epoch_passes: int = Field(1, ge=1)  # shuffled passes over the training set per epoch (digits: 8)
    # execution (README "Fast path"); None/auto = decided by the device, the effective value is recorded
    fast: bool | None = None  # device-side step: autocast, channels_last, no host syncs; auto = on CUDA
    #: tf32: fp32 with TF32 convolutions and matmuls (the reference's RTX 3090 + torch 1.9 run); fp32: strict
    #: IEEE fp32; bf16: fast-path autocast (a deviation). auto = tf32 on CUDA, fp32 elsewhere (the effective
    #: value is recorded). Evaluation is always strict fp32.
    precision: Literal["auto", "tf32", "fp32", "bf16"] = "auto"
    compile: bool | None = None  # torch.compile the fast step (CUDA graphs on CUDA); auto = on CUDA
    # feature methods (None where the method has no such parameter; README "Feature methods")
    feat_weight: float | None = Field(None, ge=0)  # weight of the method's own feature term (loss_feat)
    at_p: float | None = Field(None, gt=0)  # AT: attention map = mean over channels of f^p
    hint_layer: int | None = Field(None, ge=0)  # FitNet: the feats index whose maps are matched
    crd_feat_dim: int | None = Field(None, gt=0)  # CRD: embedding size (memory-bank row size)
    crd_nce_k: int | None = Field(None, gt=0)  # CRD: negatives per sample
    crd_momentum: float | None = Field(None, ge=0, lt=1)  # CRD: memory-bank update momentum
    crd_temperature: float | None = Field(None, gt=0)  # CRD: NCE temperature
    crd_mode: Literal["exact", "relax"] | None = None  # CRD: positive = the sample itself / any same-class sample
    rkd_distance_weight: float | None = Field(None, ge=0)
    rkd_angle_weight: float | None = Field(None, ge=0)
    vid_init_var: float | None = Field(None, gt=1e-5)  # VID: initial predicted variance
    kdsvd_k: int | None = Field(None, gt=0)  # KDSVD: singular vectors kept of the teacher
    #: mdistiller: its feature losses as it computes them where dskd differs (VID's variances kept at their
    #: initial value, out of the optimizer; PKT and SP without the rescaling of a shorter last batch).
    feature_form: Literal["dskd", "mdistiller"] = "dskd"
    deterministic: bool = False  # deterministic kernels only (bit-identical resumes on CPU)
    # data and processes (README "ImageNet and several GPUs")
    image_size: int | None = Field(None, ge=16)  # crop size of resizable datasets (ImageNet: 224); None elsewhere
    num_classes: int | None = Field(None, ge=2)  # expected class count; None = the dataset's (ImageNet: its folders)
    world_size: int = Field(1, ge=1)  # training processes (torchrun / --nproc); batch sizes are per process
    lr_scaling: Literal["none", "linear"] = "none"  # linear: the LR is multiplied by world_size
    sync_bn: bool = False  # batch statistics over all processes (SyncBatchNorm) instead of per process
    name: str | None = None  # run folder name instead of the canonical variant
    teacher_ckpt: str | None = None  # stored as an absolute path, so another spelling finds the same file
    #: Where the paper preset's values come from (README "Presets"); provenance only, the values are the keys above.
    preset_source: Literal["dskd", "mdistiller"] = "dskd"

    @field_validator("scales", mode="before")
    @classmethod
    def _scales(cls, value: Any) -> list[int]:
        if isinstance(value, str):
            return parse_scales(value)
        plain_ints = isinstance(value, (list, tuple)) and all(type(v) is int for v in value)
        if not plain_ints:
            raise ValueError("scales must be a subset of 1,2,4 that contains 1, e.g. [1, 2]")
        return list(validate_scales(value))

    @field_validator("teacher_ckpt")
    @classmethod
    def _teacher_ckpt(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().resolve())

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.strip() or any(c in value for c in "/\\\0") or ".." in value or value.startswith(".")
        ):
            raise ValueError(f"'{value}' is not a plain folder name (no path separators, no '..', no leading '.')")
        return value

    @field_validator("lr_decay_epochs")
    @classmethod
    def _decay(cls, value: list[int]) -> list[int]:
        if any(v <= 0 for v in value) or value != sorted(value):
            raise ValueError("lr_decay_epochs must be positive and increasing, e.g. [150, 180, 210]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        from dskd_core.methods import get_method

        spec = get_method(self.method)
        if spec.needs_teacher and not self.teacher:
            raise ValueError(f"method '{self.method}' needs a teacher: dskd train {self.method} TEACHER STUDENT")
        if not spec.needs_teacher and self.teacher:
            raise ValueError(f"method '{self.method}' trains one model: dskd train {self.method} MODEL")
        if not spec.needs_teacher and (self.scales != [1] or self.stand):
            raise ValueError(f"--scales/--stand apply to distillation, not to '{self.method}'")
        self._check_data()
        if self.feature_form != "dskd" and not spec.mdistiller_form:
            raise ValueError(
                f"feature_form applies to vid, pkt and sp, not to '{self.method}': drop --set feature_form"
            )
        for key in METHOD_PARAMS:
            used, value = key in spec.defaults, getattr(self, key)
            if value is not None and not used:
                raise ValueError(f"{key} does not apply to method '{self.method}': drop --set {key}")
            if value is None and used:
                raise ValueError(f"method '{self.method}' needs {key}: --set {key}=VALUE")
        return self

    def _check_data(self) -> None:
        from dskd_core.data import get_dataset_spec

        data = get_dataset_spec(self.dataset)
        if data.resizable and self.image_size is None:
            raise ValueError(f"{self.dataset} needs a crop size: --image-size 224 (its recipe)")
        if not data.resizable and self.image_size is not None:
            raise ValueError(f"{self.dataset} images have a fixed size: drop --image-size (it applies to imagenet)")

    @property
    def lr_factor(self) -> float:
        """What ``lr_scaling`` multiplies the LR by: the process count (``linear``) or 1."""
        return float(self.world_size) if self.lr_scaling == "linear" else 1.0

    @property
    def variant(self) -> str:
        """Canonical, sortable variant name: ``kd``, ``kd+ls``, ``kd+sdd[1,2]``, ``kd+sdd[1,2]+ls``.

        A feature method names the KD term that ``--scales``/``--stand`` add: ``crd``,
        ``crd+kd+ls``, ``crd+kd+sdd[1,2,4]+ls``. An SDD reduction other than the method's own
        (DKD: ``mean``, DSKD's SD-DKD; the others: ``region``) is named after the scales:
        ``dkd+sdd[1,2]+region+ls``, ``kd+sdd[1,2]+mean``.
        """
        from dskd_core.methods import get_method

        spec = get_method(self.method)
        name = self.method
        added = spec.enhanced_by
        if added and (self.scales != [1] or self.stand):
            name += "+" + added
        if self.scales != [1]:
            name += "+sdd[" + ",".join(map(str, self.scales)) + "]"
            if self.sdd_weighting != spec.defaults.get("sdd_weighting", "region"):
                name += "+" + self.sdd_weighting
        if self.stand:
            name += "+ls"
        return name

    @property
    def run_name(self) -> str:
        """The run folder's name: ``name`` when given, else the canonical variant."""
        return self.name or self.variant

    @property
    def pair(self) -> str:
        """``teacher-student`` for distillation, the model name for a from-scratch run."""
        return f"{self.teacher}-{self.student}" if self.teacher else self.student

    def run_dir(self, runs_dir: Path) -> Path:
        """``runs/<dataset>/<teacher>-<student>/<variant>/seed<k>/`` (deterministic, so runs resume)."""
        return runs_dir / self.dataset / self.pair / self.run_name / f"seed{self.seed}"

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False)


#: Keys that do not change what a run computes: the folder's name and where the preset's values came from.
NON_RUN_KEYS = frozenset({"name", "preset_source"})
#: Keys of how steps execute; a request leaves them to the device with None / "auto", and config.json
#: records the effective value, so a left-open value matches whatever a run recorded.
EXECUTION_KEYS = ("fast", "precision", "compile")


def config_differences(saved: Mapping[str, Any], wanted: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> list[str]:
    """The run-config keys in which two configs (``model_dump(mode="json")`` dicts) train different runs.

    A key ``saved`` lacks (a ``config.json`` written by an older dskd) had its default;
    ``NON_RUN_KEYS`` and ``ignore`` are skipped; an execution key left open (None / "auto") on
    either side matches; teacher checkpoint paths are compared as resolved paths.
    """
    skipped = NON_RUN_KEYS | set(ignore)
    defaults = _json_defaults()
    out = []
    for key in RunConfig.model_fields:
        if key in skipped:
            continue
        a, b = saved.get(key, defaults.get(key)), wanted.get(key, defaults.get(key))
        if key in EXECUTION_KEYS and (a in (None, "auto") or b in (None, "auto")):
            continue
        if key == "teacher_ckpt" and a is not None and b is not None:
            a, b = str(Path(a).expanduser().resolve()), str(Path(b).expanduser().resolve())
        if a != b:
            out.append(key)
    return out


def _json_defaults() -> dict[str, Any]:
    """The run-config fields' defaults as ``config.json`` would hold them (required fields left out)."""
    fields = RunConfig.model_fields.items()
    return json.loads(
        json.dumps({k: f.get_default(call_default_factory=True) for k, f in fields if not f.is_required()})
    )


def load_run_config(run_dir: Path, *, epochs: int | None = None) -> RunConfig:
    """The config a run folder was trained with (``config.json``), optionally with more epochs."""
    path = run_dir / "config.json"
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{run_dir} is not a dskd run folder (no config.json): pass the run's folder") from None
    except (OSError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is unreadable ({err}): restore it or start the run afresh") from None
    if epochs is not None:
        values["epochs"] = epochs
    try:
        return RunConfig(**values)
    except ValidationError as err:
        raise UsageError(f"{path}: {describe_validation_error(err)}") from None


def parse_scales(text: str) -> list[int]:
    """Parse ``1,2`` / ``[1,2]`` / ``'[1, 2]'`` / ``"[1,2,4]"`` / ``1 2`` into a list of ints."""
    cleaned = text.strip().strip("'\"").strip().strip("[]()")
    parts = [p for p in cleaned.replace(",", " ").split() if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UsageError(
            f"invalid --scales '{text}': use a subset of 1,2,4 that contains 1, e.g. --scales 1,2"
        ) from None
    if len(values) != len(set(values)):
        raise UsageError(f"invalid --scales '{text}': a scale is repeated; e.g. --scales 1,2,4")
    try:
        return list(validate_scales(values))
    except UsageError:
        raise UsageError(
            f"invalid --scales '{text}': use a subset of 1,2,4 that contains 1, e.g. --scales 1,2"
        ) from None


def dataset_recipe(dataset: str, student: str) -> dict[str, Any]:
    """The solver recipe of a dataset (CIFAR-100: method-spec §4.3)."""
    from dskd_core.data import get_dataset_spec

    recipe = dict(get_dataset_spec(dataset).recipe)
    if dataset == "cifar100" and student in LOW_LR_STUDENTS:
        recipe["lr"] = 0.01
    return recipe


def load_toml(path: Path) -> dict[str, Any]:
    """Read a run-config TOML file (top-level keys are :class:`RunConfig` fields)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found: check the --config path") from None
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"config file {path} is not valid TOML ({err}): fix it or drop --config") from None


#: What every ``config.json`` dskd wrote holds: a JSON ``--config`` without them is not a resolved config.
REPLAY_KEYS = (
    "method",
    "student",
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "ce_weight",
    "kd_weight",
    "temperature",
    "scales",
    "stand",
    "warmup",
)


def load_config_file(path: Path) -> tuple[dict[str, Any], bool]:
    """A ``--config`` file: ``(values, resolved)``.

    JSON (a ``.json`` file, or text that starts with ``{``) is a resolved config, as a run's
    ``config.json`` or ``train --dry-run`` writes it: ``resolved`` is True and the values are
    replayed as they are. TOML holds run-config keys layered over the preset (``resolved`` False).
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"config file {path} not found: check the --config path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"config file {path} is unreadable ({err}): check the --config path") from None
    if path.suffix.lower() != ".json" and not text.lstrip().startswith("{"):
        return load_toml(path), False
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"config file {path} is not valid JSON ({err}): fix it or drop --config") from None
    if not isinstance(values, dict):
        raise UsageError(f"config file {path} is not a JSON object of run-config keys: pass a config.json")
    unknown = sorted(set(values) - set(RunConfig.model_fields))
    if unknown:
        raise UsageError(f"config file {path} has unknown keys {', '.join(unknown)}: remove them (see --dry-run)")
    missing = [k for k in REPLAY_KEYS if k not in values]
    if missing:
        raise UsageError(
            f"config file {path} is JSON but not a whole run config (no {', '.join(missing)}): pass a run's "
            "config.json or --dry-run output, or write the keys you set as TOML (layered over the preset)"
        )
    return values, True


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.1", "lr_decay_epochs=[5,8]"]`` → dict; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"invalid --set '{item}': use --set key=value, e.g. --set lr=0.1")
        if key not in RunConfig.model_fields:
            from dskd_core.errors import UnknownNameError

            raise UnknownNameError("config key", key, RunConfig.model_fields)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def resolve_run_config(
    *,
    method: str,
    student: str,
    teacher: str | None = None,
    dataset: str = "cifar100",
    file_values: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    stand_base_temp: float | None = None,
    stand_kd_weight: float | None = None,
    same_t: bool = False,
    use_preset: bool = True,
    preset_source: str | None = None,
    replay: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Layer recipe → method defaults → preset → TOML file → flags → overrides; validate once.

    ``flags`` holds explicitly given CLI values (``None`` means "not given"); ``scales="auto"``
    takes the preset's recommended SDD scales. The preset is the entry of ``preset_source``
    (default ``dskd``) for this pair with SDD on or off, as the layers above it ask. With
    ``stand`` on, the DSKD README's semantics apply through the method's ``apply_stand``, with
    ``stand_base_temp``/``stand_kd_weight`` (else the preset's, else 2 and 9); without
    ``stand`` both are ignored. ``same_t`` is RLD's ``--same-t`` (α_T = T).

    ``replay`` is a resolved config (a run's ``config.json`` or ``--dry-run`` output): it
    replaces recipe, defaults and preset, is taken as it is (its ``--stand`` values are already
    applied), and only flags and overrides given now go on top; how its steps execute is left to
    this device (:func:`replay_execution`).
    """
    from dskd_core.methods import get_method
    from dskd_core.presets import DEFAULT_SOURCE, find_preset

    spec = get_method(method)
    student, teacher = canonical_model_name(student, dataset), teacher and canonical_model_name(teacher, dataset)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    layers = (overrides, given, file_values, replay)  # topmost first
    source = preset_source or next((x["preset_source"] for x in layers if x and x.get("preset_source")), DEFAULT_SOURCE)
    values: dict[str, Any] = {"method": method, "student": student, "teacher": teacher, "dataset": dataset}
    preset = None
    if replay is not None:
        values = {**replay, **values, **replay_execution(replay)}
        stand_done = bool(replay.get("stand"))
    else:
        stand_done = False
        sdd = _wants_sdd(overrides, given, file_values)
        preset = find_preset(method, teacher, student, dataset, source=source, sdd=sdd) if use_preset else None
        values.update(dataset_recipe(dataset, student))
        values.update(spec.defaults)
        if preset is not None:
            values.update(preset.values)
    values["preset_source"] = source
    for layer in (file_values or {}, given):
        values.update(layer)
    if values.get("scales") == "auto":
        auto = preset or (
            find_preset(method, teacher, student, dataset, source=source, sdd=True) if use_preset else None
        )
        if auto is None:
            raise UsageError(
                f"--scales auto needs a preset for {method} {teacher} {student}: pass --scales 1,2 or 1,2,4"
            )
        values["scales"] = auto.sdd_scales
    if values.get("stand") and not stand_done:
        base = preset.base_temp if preset is not None else values.get("base_temp", 2.0)
        weight = preset.stand_kd_weight if preset is not None else 9.0
        values["base_temp"] = stand_base_temp if stand_base_temp is not None else base
        spec.apply_stand(values, stand_kd_weight if stand_kd_weight is not None else weight)
    if same_t:
        if values.get("alpha_temperature") is None:
            raise UsageError(f"--same-t sets RLD's alpha temperature; method '{method}' has none")
        values["alpha_temperature"] = values["temperature"]
    values.update(overrides or {})
    try:
        return RunConfig(**values)
    except ValidationError as err:
        raise UsageError(describe_validation_error(err)) from None


def replay_execution(replay: Mapping[str, Any]) -> dict[str, Any]:
    """What a replayed config leaves to the device it runs on: the path and compilation (they do not
    change the recipe), and the precision unless it was bf16 (the recorded fp32/tf32 is the reference's
    precision of the device it ran on, which this device's "auto" gives again)."""
    out: dict[str, Any] = {key: None for key in ("fast", "compile") if replay.get(key) in (None, True, False)}
    if replay.get("precision", "auto") in ("auto", "fp32", "tf32"):  # bf16 is kept; anything else is refused
        out["precision"] = "auto"
    return out


def _wants_sdd(*layers: Mapping[str, Any] | None) -> bool:
    """Whether the topmost layer that sets ``scales`` asks for SDD (scales beyond 1, or ``auto``)."""
    for layer in layers:
        value = (layer or {}).get("scales")
        if value is None:
            continue
        if value == "auto":
            return True
        if isinstance(value, str):
            return parse_scales(value) != [1]
        return isinstance(value, (list, tuple)) and any(v != 1 for v in value)
    return False


def canonical_model_name(name: str, dataset: str) -> str:
    """The registered name behind an alias of the dataset's zoo (with a warning), else ``name`` unchanged."""
    import warnings

    from dskd_core.data import get_dataset_spec
    from dskd_core.models import list_aliases, resolve_model_name

    zoo = get_dataset_spec(dataset).zoo
    if name not in list_aliases(zoo):
        return name
    canonical, note = resolve_model_name(name, zoo)
    if note:
        warnings.warn(note, UserWarning, stacklevel=3)
    return canonical


def describe_validation_error(err: ValidationError) -> str:
    """One line: the first failing field, as the flag or key a user would fix."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if loc in FLAG_KEYS:
        return f"invalid {loc.replace('_', '-')!s}: {msg} (fix --{loc.replace('_', '-')} or --set {loc}=...)"
    if loc:
        return f"invalid {loc.replace('_', '-')}: {msg} (fix --set {loc}=... or the --config file)"
    return f"invalid run config: {msg}"


#: Run-config keys that ``dskd train`` has a flag of the same name for (the others are set with --set or --config).
FLAG_KEYS = frozenset(
    {
        "dataset",
        "seed",
        "epochs",
        "batch_size",
        "lr",
        "scales",
        "stand",
        "base_temp",
        "kd_weight",
        "sdd_weighting",
        "sdd_complementary",
        "clip_grad",
        "aug",
        "deterministic",
        "image_size",
        "num_classes",
        "sync_bn",
        "lr_scaling",
        "fast",
        "precision",
        "compile",
        "name",
        "teacher_ckpt",
        "preset_source",
    }
)
