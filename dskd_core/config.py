"""Configuration, two kinds: :class:`Settings` says *where* things live, :class:`RunConfig` *what* runs.

A run config is resolved in layers: the dataset's recipe (and the method's defaults) → a TOML
file → command-line flags → ``--set key=value`` overrides. The result is validated once and
written next to every result, so nothing is hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dskd_core.errors import UsageError
from dskd_core.sdd import validate_scales

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
