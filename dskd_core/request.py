"""What ``dskd train`` is asked for, as given: a :class:`TrainRequest`, resolved into a run config.

A field holds a value only when its flag was given (:meth:`TrainRequest.given` leaves the rest
unset), so which flags were given is ``model_fields_set``: the flags that contradict ``--resume
RUN_DIR`` are the given fields outside :data:`RESUMABLE`. :meth:`TrainRequest.run_config` layers
the request as the command line always has (``--config`` file, names, preset, flags, ``--set``)
through :func:`dskd_core.resolve.resolve_run_config`; what it has to tell goes to ``notify``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from dskd_core.config import STAND_KEYS, RunConfig, Settings, parse_scales, settings_from
from dskd_core.data import get_dataset_spec
from dskd_core.errors import UsageError
from dskd_core.methods import get_method, list_methods
from dskd_core.models import resolve_model_name
from dskd_core.presets import Preset, check_source, find_preset
from dskd_core.resolve import load_config_file, load_run_config, parse_overrides, resolve_run_config
from dskd_core.trackers import check_available, parse_log
from dskd_core.train.distributed import launched_rank, launched_world_size

Notify = Callable[[str], None]

#: Fields a ``--resume RUN_DIR`` may come with: the rest of the config comes from the run folder.
RESUMABLE = frozenset(
    {
        "method",
        "models",
        "epochs",
        "device",
        "data_dir",
        "teachers_dir",
        "runs_dir",
        "workers",
        "threads",
        "log",
        "resume",
        "overwrite",
        "allow_weak_teacher",
        "nproc",
        "dry_run",
    }
)

#: The flag of a field whose flag is not ``--`` + its name with dashes.
_FLAGS = {"overrides": "--set", "fast": "--fast/--no-fast", "compile": "--compile/--no-compile"}

#: Flags that resolve a new run, refused with a ``--config`` that is a resolved run config (replayed).
_RESOLVING = ("scales", "stand", "base_temp", "kd_weight", "same_t", "preset_source", "no_preset")


def _silent(message: str) -> None:
    del message


def flag_name(field: str) -> str:
    """The ``dskd train`` flag of a :class:`TrainRequest` field: ``base_temp`` → ``--base-temp``."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


class TrainRequest(BaseModel):
    """One field per ``dskd train`` argument and flag; a field not given keeps its default.

    Fields are in the order the ``--resume`` refusal lists them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # METHOD and TEACHER STUDENT | MODEL (or, with --resume, METHOD is the run folder)
    method: str | None = None
    models: list[str] = []
    # what the run is
    dataset: str | None = None
    preset_source: str | None = None
    scales: str | None = None
    stand: bool = False
    base_temp: float | None = None
    kd_weight: float | None = None
    lr: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    overrides: list[str] = []
    config: Path | None = None
    name: str | None = None
    teacher_ckpt: Path | None = None
    aug: bool = False
    clip_grad: float | None = None
    same_t: bool = False
    sdd_weighting: str | None = None
    sdd_complementary: float | None = None
    no_preset: bool = False
    deterministic: bool = False
    image_size: int | None = None
    num_classes: int | None = None
    sync_bn: bool = False
    lr_scaling: str | None = None
    fast: bool | None = None
    precision: str | None = None
    compile: bool | None = None
    # how and where it runs (compatible with --resume)
    epochs: int | None = None
    device: str | None = None
    data_dir: Path | None = None
    teachers_dir: Path | None = None
    runs_dir: Path | None = None
    workers: int | None = None
    threads: int | None = None
    log: list[str] = []
    resume: bool = False
    overwrite: bool = False
    allow_weak_teacher: bool = False
    nproc: int | None = None
    dry_run: bool = False

    @classmethod
    def given(cls, **values: Any) -> TrainRequest:
        """The request of the values given: None, an empty list and a flag's default mean "not given"."""
        fields = cls.model_fields
        return cls(
            **{
                k: v
                for k, v in values.items()
                if not (v is None or (k in fields and v == fields[k].default) or (isinstance(v, list) and not v))
            }
        )

    # ------------------------------------------------------------------ who runs, and where

    @property
    def launched(self) -> int:
        """The process count a launcher (torchrun) started this process among; 1 without one."""
        return launched_world_size()

    @property
    def world_size(self) -> int:
        """The processes of the run: ``--nproc``'s, else the launcher's."""
        return self.nproc if self.nproc is not None else self.launched

    @property
    def quiet(self) -> bool:
        """Whether this process leaves reporting to another: rank 0 reports for all (under ``--nproc``,
        the launched rank 0 does)."""
        return (self.launched > 1 and launched_rank() != 0) or (
            self.nproc is not None and self.nproc > 1 and not self.dry_run
        )

    @property
    def settings(self) -> Settings:
        """Where and how it runs; a ``--log`` tracker that is unknown or not installed is refused here."""
        settings = settings_from(
            device=self.device,
            data_dir=self.data_dir,
            teachers_dir=self.teachers_dir,
            runs_dir=self.runs_dir,
            workers=self.workers,
            threads=self.threads,
            log=",".join(self.log) if self.log else None,
        )
        check_available(parse_log(settings.log))
        return settings

    @property
    def resume_dir(self) -> Path | None:
        """``dskd train --resume RUN_DIR``: the run folder, or None when METHOD is a method name."""
        if not self.resume or self.models or self.method is None or self.method in list_methods():
            return None
        path = Path(self.method)
        if (path / "config.json").is_file():
            return path
        if path.exists() or "/" in self.method or "\\" in self.method:
            raise UsageError(
                f"{self.method} is not a dskd run folder (no config.json): pass the folder that holds config.json"
            )
        return None

    @property
    def resume_conflicts(self) -> list[str]:
        """The flags given that a ``--resume RUN_DIR`` takes from the run folder instead."""
        return [flag_name(f) for f in type(self).model_fields if f in self.model_fields_set and f not in RESUMABLE]

    # ------------------------------------------------------------------ the run config

    def run_config(self, notify: Notify = _silent) -> RunConfig:
        """The run config: a resumed folder's (``--epochs`` may extend it), else a new run's."""
        run_dir = self.resume_dir
        if run_dir is None:
            return self.new_config(notify)
        if conflicts := self.resume_conflicts:
            raise UsageError(f"with --resume RUN_DIR the config comes from the run folder: drop {', '.join(conflicts)}")
        cfg = load_run_config(run_dir)
        return cfg if self.epochs is None else load_run_config(run_dir, epochs=self.epochs)

    def new_config(self, notify: Notify = _silent) -> RunConfig:
        """The run config of a new run: names checked, layers resolved, the preset noted."""
        check_source(self.preset_source)
        file_values, replay = load_config_file(self.config) if self.config else ({}, False)
        named = {k: file_values.pop(k, None) for k in ("method", "teacher", "student", "dataset")}
        if replay:
            drop = [flag_name(f) for f in _RESOLVING if f in self.model_fields_set]
            if self.dataset not in (None, named["dataset"]):
                drop.append("--dataset")
            if drop:
                raise UsageError(
                    f"--config {self.config} is a resolved run config, replayed as it is: drop {', '.join(drop)}, or "
                    f"resolve a new run with dskd train METHOD TEACHER STUDENT {drop[0]} …"
                )
        dataset = self.dataset or named["dataset"] or "cifar100"
        method = self.method
        if method is None:
            if named["method"] is None:
                where = f"{self.config} names no method" if self.config else "no METHOD given"
                raise UsageError(f"{where}: dskd train METHOD TEACHER STUDENT, or --config a run's config.json")
            method = str(named["method"])
        # the names a --config file gives (a contradicting method is refused below)
        models = list(self.models) or [str(m) for m in (named["teacher"], named["student"]) if m]
        spec = get_method(method)
        wanted = 2 if spec.needs_teacher else 1
        if len(models) != wanted:
            form = f"dskd train {method} TEACHER STUDENT" if wanted == 2 else f"dskd train {method} MODEL"
            raise UsageError(f"{method} takes {wanted} model name{'s' if wanted > 1 else ''}: {form}")
        zoo = get_dataset_spec(dataset).zoo
        for i, model in enumerate(models):
            models[i], alias = resolve_model_name(model, zoo)
            if alias:
                notify(alias)
        teacher, student = (models[0], models[1]) if wanted == 2 else (None, models[0])
        self._refuse_contradictions(named, {"method": method, "teacher": teacher, "student": student}, zoo)
        if not self.stand and (self.base_temp is not None or self.kd_weight is not None):
            notify("--base-temp/--kd-weight take effect only with --stand (DSKD README semantics); ignored")
        cfg = resolve_run_config(
            method=method,
            student=student,
            teacher=teacher,
            dataset=dataset,
            file_values=None if replay else file_values,
            replay=file_values if replay else None,
            flags=self._flags(),
            stand_base_temp=self.base_temp,
            stand_kd_weight=self.kd_weight,
            same_t=self.same_t,
            use_preset=not self.no_preset,
            preset_source=self.preset_source,
            overrides=parse_overrides(self.overrides),
        )
        if replay:
            notify(
                f"replaying {self.config} as it is (fast/compile, and a fp32/tf32 precision, left to this device); "
                "flags and --set given now apply on top"
            )
            return cfg
        preset = (
            None
            if self.no_preset
            else find_preset(method, teacher, student, dataset, source=cfg.preset_source, sdd=cfg.scales != [1])
        )
        if preset is not None:
            notify(
                f"using the {dataset} preset for {method} {teacher}->{student} from {cfg.preset_source} "
                f"({preset.note}): {self._preset_values(preset, cfg, file_values)}"
            )
        return cfg

    def _preset_values(self, preset: Preset, cfg: RunConfig, file_values: Mapping[str, Any]) -> str:
        """Every value the preset gave the run (its keys, its ``--stand`` values, ``--scales auto``'s scales),
        then those of its keys that the run does not keep (a flag, ``--set``, the ``--config`` file or
        ``--stand`` set them), with the value it has instead."""
        resolved, overrides = cfg.model_dump(mode="json"), parse_overrides(self.overrides)
        kept = [f"{k} {v}" for k, v in preset.values.items() if resolved.get(k) == v]
        if self.stand or overrides.get("stand") or file_values.get("stand"):
            stand = [f"base_temp {preset.base_temp}"] if self.base_temp is None else []
            stand += [f"--kd-weight {preset.stand_kd_weight}"] if self.kd_weight is None else []
            kept += [f"{' and '.join(stand)} (--stand)"] if stand else []
        if "auto" in (self.scales and self.scales.strip(), overrides.get("scales"), file_values.get("scales")):
            kept.append(f"scales {preset.sdd_scales} (--scales auto)")
        rewritten = STAND_KEYS if cfg.stand else frozenset()  # --stand's own values, listed above
        changed = [
            f"{k} {v} → {resolved.get(k)}"
            for k, v in preset.values.items()
            if resolved.get(k) != v and k not in rewritten
        ]
        return ", ".join(kept or ["nothing"]) + (
            f"; overridden: {', '.join(changed)}" if changed else "; flags override it"
        )

    def _flags(self) -> dict[str, Any]:
        """The run-config keys the flags set (None: not given)."""
        scales = self.scales
        world = self.world_size
        return {
            "sdd_weighting": self.sdd_weighting,
            "sdd_complementary": self.sdd_complementary,
            "clip_grad": self.clip_grad,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "name": self.name,
            "image_size": self.image_size,
            "num_classes": self.num_classes,
            "sync_bn": self.sync_bn or None,
            "lr_scaling": self.lr_scaling,
            "world_size": world if world > 1 else None,
            "fast": self.fast,
            "precision": self.precision,
            "compile": self.compile,
            "scales": None if scales is None else "auto" if scales.strip() == "auto" else parse_scales(scales),
            "stand": self.stand or None,
            "aug": self.aug or None,
            "deterministic": self.deterministic or None,
            "teacher_ckpt": str(self.teacher_ckpt) if self.teacher_ckpt else None,
        }

    def _refuse_contradictions(self, named: Mapping[str, Any], given: Mapping[str, Any], zoo: str) -> None:
        """A --config file's method/teacher/student must agree with the names on the command line."""
        differ = []
        for key, value in given.items():
            saved = named.get(key)
            if saved is None:
                continue
            if key != "method":
                saved = resolve_model_name(str(saved), zoo)[0]
            if saved != value:
                differ.append(f"{key} {saved} in the file, {value or 'none'} on the command line")
        if differ:
            raise UsageError(
                f"--config {self.config} contradicts the command ({'; '.join(differ)}): drop the names to use the "
                "file's, or fix them"
            )
