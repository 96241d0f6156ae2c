"""Configuration, two kinds: :class:`Settings` says *where* things live, :class:`RunConfig` *what* runs.

A run config is resolved in layers: the dataset's recipe (and the method's defaults) → a TOML
file → command-line flags → ``--set key=value`` overrides. The result is validated once and
written next to every result, so nothing is hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.scales import validate_scales
from dskd_core.variants import variant_name


class MethodParams(BaseModel):
    """A method's own hyperparameters, declared next to its loss (mdistiller's ``cfg.DKD.*`` namespace, typed).

    Each distiller subclasses this as ``Params`` with defaults; a method without parameters keeps
    this empty class. Field names are ``--set`` keys and stay flat in ``config.json``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class MethodSchema:
    """What the run schema needs to know of a registered method (filled in by ``register_method``)."""

    name: str
    params: type[MethodParams]
    #: The logit loss that ``--scales``/``--stand`` add beside the method's own term (named in the variant).
    enhanced_by: str | None
    #: The method's own SDD reduction; another one is named in the variant.
    sdd_weighting: str
    #: Whether the method distils from a teacher (``vanilla`` trains one model).
    needs_teacher: bool = True
    #: Whether the method trains on a weak and a strong view of each image (MLKD).
    strong_view: bool = False


_SCHEMAS: dict[str, MethodSchema] = {}


def register_schema(schema: MethodSchema) -> None:
    """Make ``schema.name`` a method a :class:`RunConfig` can name (duplicates are refused)."""
    if schema.name in _SCHEMAS:
        raise UsageError(f"method '{schema.name}' is already registered")
    _SCHEMAS[schema.name] = schema


def method_schema(name: str) -> MethodSchema:
    if not _SCHEMAS:
        raise UsageError(
            f"no methods are registered, so method '{name}' is unknown: import dskd_core.methods first "
            "(dskd_core.resolve and ``from dskd_core import RunConfig`` do)"
        )
    try:
        return _SCHEMAS[name]
    except KeyError:
        raise UnknownNameError("method", name, _SCHEMAS) from None


def param_keys() -> dict[str, tuple[str, ...]]:
    """Every method parameter key, with the methods that have it."""
    out: dict[str, list[str]] = {}
    for schema in _SCHEMAS.values():
        for key in schema.params.model_fields:
            out.setdefault(key, []).append(schema.name)
    return {k: tuple(v) for k, v in out.items()}


def common_keys() -> tuple[str, ...]:
    """The run-config keys every method has: the :class:`RunConfig` fields but ``params``."""
    return tuple(k for k in RunConfig.model_fields if k != "params")


def run_config_keys() -> tuple[str, ...]:
    """The keys of a flat run config (``--set``, ``--config``, ``config.json``): common fields, then every
    registered method's parameters."""
    common = common_keys()
    return common + tuple(k for k in param_keys() if k not in common)


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
    #: Experiment trackers, comma-separated: tensorboard, wandb (``--log``; env DSKD_LOG). Off by default.
    log: str = ""
    #: CPU threads of torch's intra-op pool (``--threads``); None = as the process has it (the CLI's default:
    #: ``device.default_threads``).
    threads: int | None = Field(default=None, ge=1)


def settings_from(**given: Any) -> Settings:
    """:class:`Settings` from the values given (None: not given, so the environment or default applies)."""
    return Settings(**{k: v for k, v in given.items() if v is not None})


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
    #: The method's own hyperparameters (its ``Params``); flat keys in ``--set`` and ``config.json``.
    params: SerializeAsAny[MethodParams] = Field(default_factory=MethodParams)
    warmup: int = Field(0, ge=0)  # epochs of linear warm-up of the distillation term, min(epoch / warmup, 1)
    sdd_complementary: float = Field(2.0, gt=0)
    sdd_weighting: Literal["region", "mean"] = "region"
    clip_grad: float | None = Field(None, gt=0)  # max global grad norm; None = no clipping
    aug: bool = False  # DSKD's strong augmentation (dskd_core.data.strong) on the training view, after the flip
    #: Which augmentation ``aug`` applies, derived from it ("dskd"; None without --aug). Recorded so that a run
    #: folder whose --aug was dskd 0.1's torchvision RandAugment (no such key) is never resumed with, or
    #: averaged beside, runs of this one.
    aug_form: Literal["dskd"] | None = Field(None, validate_default=True)
    epoch_passes: int = Field(1, ge=1)  # shuffled passes over the training set per epoch (digits: 8)
    #: Train on this many labelled images per class (one fixed draw for every seed and method: the few-label
    #: setting of the quickstart); None = the whole training split. The test split is always whole.
    train_per_class: int | None = Field(None, ge=1)
    # execution (README "Fast path"); None/auto = decided by the device, the effective value is recorded
    fast: bool | None = None  # device-side step: autocast, channels_last, no host syncs; auto = on CUDA
    #: tf32: fp32 with TF32 convolutions and matmuls (the reference's RTX 3090 + torch 1.9 run); fp32: strict
    #: IEEE fp32; bf16: fast-path autocast (a deviation). auto = tf32 on CUDA, fp32 elsewhere (the effective
    #: value is recorded). Evaluation is always strict fp32.
    precision: Literal["auto", "tf32", "fp32", "bf16"] = "auto"
    compile: bool | None = None  # torch.compile the fast step (CUDA graphs on CUDA); auto = on CUDA
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

    @model_validator(mode="before")
    @classmethod
    def _gather_params(cls, data: Any) -> Any:
        """Flat method-parameter keys (as ``--set`` and ``config.json`` hold them) go into ``params``.

        A ``config.json`` written before parameters were per method holds every method's keys, None
        where they did not apply: those are dropped (read as today's format).
        """
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            return data
        method = data["method"]
        own = method_schema(method).params.model_fields
        data = dict(data)
        given = data.pop("params", None)
        values = given.model_dump() if isinstance(given, MethodParams) else dict(given or {})
        for key in param_keys():
            if key not in data or key in cls.model_fields:
                continue
            value = data.pop(key)
            if key in own:
                if value is None:
                    raise ValueError(f"method '{method}' needs {key}: --set {key}=VALUE")
                values[key] = value
            elif value is not None:
                raise ValueError(f"{key} does not apply to method '{method}': drop --set {key}")
        data["params"] = values
        return data

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any, info: ValidationInfo) -> MethodParams:
        method = info.data.get("method")
        schema = method_schema(method).params if isinstance(method, str) else MethodParams
        if isinstance(value, schema):
            return value
        if isinstance(value, MethodParams):
            value = value.model_dump()
        return schema.model_validate(value)

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The parameters are written flat, where ``params`` sits, so ``config.json`` keeps one level."""
        out: dict[str, Any] = {}
        for key, value in handler(self).items():
            if key == "params":
                out.update(value)
            else:
                out[key] = value
        return out

    if not TYPE_CHECKING:  # flat reads of the method's parameters (``cfg.beta``) for scripts and older callers

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                params = self.__dict__.get("params")
                if params is not None and name in type(params).model_fields:
                    return getattr(params, name)
                if name in param_keys():
                    return None  # another method's parameter: not set for this one
                raise

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        """What the method's schema rules out; the dataset's rules and ``feature_form`` are checked against
        the registries by ``resolve.check_run_config`` (which ``fit`` and the launcher call too)."""
        spec = method_schema(self.method)
        if spec.needs_teacher and not self.teacher:
            raise ValueError(f"method '{self.method}' needs a teacher: dskd train {self.method} TEACHER STUDENT")
        if not spec.needs_teacher and self.teacher:
            raise ValueError(f"method '{self.method}' trains one model: dskd train {self.method} MODEL")
        if not spec.needs_teacher and (self.scales != [1] or self.stand):
            raise ValueError(f"--scales/--stand apply to distillation, not to '{self.method}'")
        if spec.strong_view and self.aug:
            raise ValueError(
                f"'{self.method}' always augments its strong view and never its weak one (as DSKD, whose --aug "
                f"changes nothing for it): drop --aug, or train {self.method}_noaug with --aug"
                if f"{self.method}_noaug" in _SCHEMAS
                else f"'{self.method}' always augments its strong view and never its weak one: drop --aug"
            )
        return self

    @field_validator("aug_form", mode="before")
    @classmethod
    def _aug_form(cls, value: Any, info: ValidationInfo) -> str | None:
        return "dskd" if info.data.get("aug") else None

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
        spec = method_schema(self.method)
        return variant_name(
            self.method,
            self.scales,
            self.sdd_weighting,
            self.stand,
            enhanced_by=spec.enhanced_by,
            own_weighting=spec.sdd_weighting,
        )

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


#: What ``--stand`` rewrites of a method's values (KD: T ← base_temp, kd_weight ← w; DKD/RLD: α, β × w, T and
#: RLD's α_T ← base_temp).
STAND_KEYS = frozenset({"temperature", "kd_weight", "alpha", "beta", "alpha_temperature"})
#: Keys that do not change what a run computes: the folder's name and where the preset's values came from.
NON_RUN_KEYS = frozenset({"name", "preset_source"})
#: Run-config keys whose value follows from another key's (named in differences only when that one agrees).
DERIVED_KEYS = {"aug_form": "aug"}
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
    for key in run_config_keys():
        if key in skipped:
            continue
        a, b = saved.get(key, defaults.get(key)), wanted.get(key, defaults.get(key))
        if key in EXECUTION_KEYS and (a in (None, "auto") or b in (None, "auto")):
            continue
        if key == "teacher_ckpt" and a is not None and b is not None:
            a, b = str(Path(a).expanduser().resolve()), str(Path(b).expanduser().resolve())
        if a != b:
            out.append(key)
    # A key derived from another says nothing more when that one differs too.
    return [key for key in out if DERIVED_KEYS.get(key) not in out]


def _json_defaults() -> dict[str, Any]:
    """The run-config fields' defaults as ``config.json`` would hold them (required fields left out)."""
    fields = [(k, RunConfig.model_fields[k]) for k in common_keys()]
    defaults: dict[str, Any] = json.loads(
        json.dumps({k: f.get_default(call_default_factory=True) for k, f in fields if not f.is_required()})
    )
    return defaults


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
