"""Resolution of a run config: the layers (recipe → method defaults → preset → ``--config`` →
flags → ``--set``), the checks against the method, dataset and model registries, and aliasing.

:mod:`dskd_core.config` is the schema and imports none of the registries; this module sits above
them, so a run config is validated against what is registered exactly here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dskd_core._compat import tomllib
from dskd_core.config import RunConfig, method_schema, param_keys, parse_scales, run_config_keys
from dskd_core.data import get_dataset_spec
from dskd_core.data.types import MethodRecipe
from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.methods import get_method, list_methods
from dskd_core.models import resolve_model_name
from dskd_core.presets import DEFAULT_SOURCE, find_preset

#: Students trained with LR 0.01 on CIFAR-100 (the DSKD trainer asserts it: mdistiller/engine/cfg.py).
LOW_LR_STUDENTS = frozenset({"ShuffleV1", "ShuffleV2", "MobileNetV2"})


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
        cfg = RunConfig(**saved_values(values))
    except ValidationError as err:
        raise UsageError(f"{path}: {describe_validation_error(err)}") from None
    try:
        return check_run_config(cfg)
    except UsageError as err:
        raise UsageError(f"{path}: {err}") from None


#: Keys dskd 0.1 accepted, recorded and ignored for the methods without them (it checked only the
#: feature methods' keys); a saved config that holds one of them for such a method still reads.
IGNORED_BEFORE = ("alpha", "beta", "alpha_temperature")


def saved_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config's values (``config.json``, a replayed ``--config``) as the run schema reads them:
    the :data:`IGNORED_BEFORE` keys of a method that has no such parameter are dropped (they changed
    nothing in the run), the rest is left to the schema."""
    out = dict(values)
    method = out.get("method")
    if isinstance(method, str) and method in list_methods():
        own = get_method(method).Params.model_fields
        for key in IGNORED_BEFORE:
            if key not in own:
                out.pop(key, None)
    return out


def dataset_recipe(dataset: str, student: str) -> dict[str, Any]:
    """The solver recipe of a dataset (CIFAR-100: mdistiller's engine/cfg.py and configs/cifar100; LR 0.01 for the
    ShuffleNet/MobileNet students, as every DSKD CIFAR config sets it)."""
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
    unknown = sorted(set(values) - set(run_config_keys()))
    if unknown:
        raise UsageError(f"config file {path} has unknown keys {', '.join(unknown)}: remove them (see --dry-run)")
    missing = [k for k in REPLAY_KEYS if k not in values]
    if missing:
        raise UsageError(
            f"config file {path} is JSON but not a whole run config (no {', '.join(missing)}): pass a run's "
            "config.json or --dry-run output, or write the keys you set as TOML (layered over the preset)"
        )
    return saved_values(values), True


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.1", "lr_decay_epochs=[5,8]"]`` → dict; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"invalid --set '{item}': use --set key=value, e.g. --set lr=0.1")
        if key not in run_config_keys():
            raise UnknownNameError("config key", key, run_config_keys())
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
    """Layer recipe → method defaults (then the dataset's values for the method) → preset → TOML file → flags →
    overrides; validate once.

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
    spec = get_method(method)
    student, teacher = canonical_model_name(student, dataset), teacher and canonical_model_name(teacher, dataset)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    layers = (overrides, given, file_values, replay)  # topmost first
    source = preset_source or next((x["preset_source"] for x in layers if x and x.get("preset_source")), DEFAULT_SOURCE)
    values: dict[str, Any] = {"method": method, "student": student, "teacher": teacher, "dataset": dataset}
    preset = None
    method_recipe = get_dataset_spec(dataset).method_recipes.get(method, MethodRecipe())
    if replay is not None:
        values = {**replay, **values, **replay_execution(replay)}
        stand_done = bool(replay.get("stand"))
    else:
        stand_done = False
        sdd = _wants_sdd(overrides, given, file_values)
        preset = find_preset(method, teacher, student, dataset, source=source, sdd=sdd) if use_preset else None
        values.update(dataset_recipe(dataset, student))
        values.update(spec.Params().model_dump())
        values.update(spec.defaults)
        values.update(method_recipe.values)
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
        chosen = {key for layer in (overrides, given, file_values, preset and preset.values) for key in (layer or {})}
        values.update({k: v for k, v in method_recipe.stand.items() if k not in chosen})
    if same_t:
        if values.get("alpha_temperature") is None:
            raise UsageError(f"--same-t sets RLD's alpha temperature; method '{method}' has none")
        values["alpha_temperature"] = values["temperature"]
    values.update(overrides or {})
    try:
        cfg = RunConfig(**values)
    except ValidationError as err:
        raise UsageError(describe_validation_error(err)) from None
    return check_run_config(cfg)


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
    """The registered name of ``name`` in the dataset's zoo (an alias's with a warning); refused when the zoo has no
    such model (another zoo's, as an ImageNet net on cifar100, or a typo), as building the model would refuse it."""
    zoo = get_dataset_spec(dataset).zoo
    canonical, note = resolve_model_name(name, zoo)
    if note:
        warnings.warn(note, UserWarning, stacklevel=3)
    return canonical


def describe_validation_error(err: ValidationError) -> str:
    """One line: the first failing field, as the flag or key a user would fix."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]).removeprefix("params.")  # method parameters are flat keys
    msg = first["msg"].removeprefix("Value error, ")
    if loc in FLAG_KEYS:
        return f"invalid {loc.replace('_', '-')!s}: {msg} (fix --{loc.replace('_', '-')} or --set {loc}=...)"
    if loc:
        example = _set_example(loc)
        form = f"--set {loc}=..., e.g. --set {loc}={example}," if example else f"--set {loc}=..."
        return f"invalid {loc}: {msg} (fix {form} or the --config file)"
    return f"invalid run config: {msg}"


def _set_example(key: str) -> str | None:
    """The key's default in the form ``--set`` reads it (JSON, no spaces), or None when it has none."""
    field = RunConfig.model_fields.get(key) if key != "params" else None
    if field is None:
        methods = param_keys().get(key)
        field = method_schema(methods[0]).params.model_fields[key] if methods else None
    if field is None or field.is_required():
        return None
    default = field.get_default(call_default_factory=True)
    if default is None:
        return None
    if isinstance(default, str):
        return default  # parse_overrides reads a bare word as a string
    try:
        return json.dumps(default, separators=(",", ":"))
    except TypeError:
        return None


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


def check_run_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` checked against the registries beyond what :class:`RunConfig` checks itself: the dataset's
    crop size, the method's ``feature_form`` and the method's own rules (``Distiller.check_config``)."""
    try:
        _check(cfg)
    except ValueError as err:
        raise UsageError(f"invalid run config: {err}") from None
    return cfg


def _check(cfg: RunConfig) -> None:
    spec = get_method(cfg.method)
    data = get_dataset_spec(cfg.dataset)
    if data.resizable and cfg.image_size is None:
        raise ValueError(f"{cfg.dataset} needs a crop size: --image-size 224 (its recipe)")
    if not data.resizable and cfg.image_size is not None:
        raise ValueError(f"{cfg.dataset} images have a fixed size: drop --image-size (it applies to imagenet)")
    if cfg.feature_form != "dskd" and not spec.mdistiller_form:
        raise ValueError(f"feature_form applies to vid, pkt and sp, not to '{cfg.method}': drop --set feature_form")
    spec.check_config(cfg)
