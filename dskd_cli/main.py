"""``dskd``: each command resolves settings, builds a config, calls one core function, renders."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dskd_cli import render
from dskd_cli.completions import SHELLS, generate
from dskd_cli.fetch_cmd import fetch_teachers
from dskd_cli.report_cmd import report
from dskd_cli.sweep_cmd import sweep
from dskd_core.errors import DskdError, UsageError


class DskdGroup(TyperGroup):
    """Every failure becomes one line on stderr and an exit code; no tracebacks unless DSKD_DEBUG=1."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        global _ARGV
        _ARGV = [str(a) for a in (sys.argv[1:] if args is None else args)]
        render.set_quiet(False)
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name or "dskd",
                complete_var=complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except DskdError as err:
            if os.environ.get("DSKD_DEBUG"):
                traceback.print_exc()
            if not _reported_elsewhere(err):
                render.error(str(err))
            sys.exit(err.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            render.error("interrupted: re-run the same command with --resume to continue")
            sys.exit(130)
        except Exception as err:
            if hasattr(err, "format_message") and hasattr(err, "exit_code"):  # click's usage errors
                ctx = getattr(err, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None and err.exit_code == 2 else ""
                render.error(" ".join(err.format_message().split()) + hint)
                sys.exit(err.exit_code)
            if os.environ.get("DSKD_DEBUG"):
                raise
            render.error(f"internal error {type(err).__name__}: {err} (set DSKD_DEBUG=1 for the traceback)")
            sys.exit(1)
        code = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


#: The arguments of this invocation (``dskd train --nproc N`` hands them to its processes).
_ARGV: list[str] = []


def _reported_elsewhere(err: DskdError) -> bool:
    """Under torchrun, rank 0 prints errors every rank meets (bad input, exit 2) or that it relayed."""
    if getattr(err, "quiet", False):
        return True
    if err.exit_code != 2 or "WORLD_SIZE" not in os.environ:
        return False
    from dskd_core.train.distributed import launched_rank

    return launched_rank() != 0


def _child_argv(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


app = typer.Typer(
    cls=DskdGroup,
    name="dskd",
    help="Knowledge distillation with scale decoupling (SDD) and logit standardization (DSKD).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of errors (also DSKD_DEBUG=1).")] = False,
) -> None:
    """Knowledge distillation with scale decoupling (SDD) and logit standardization (DSKD)."""
    if debug:
        os.environ["DSKD_DEBUG"] = "1"


def _settings(**given: Any) -> Any:
    from dskd_core.config import Settings

    return Settings(**{k: v for k, v in given.items() if v is not None})


def _complete_models(incomplete: str) -> list[str]:
    from dskd_core.models import list_models

    return [m for m in list_models(None) if m.startswith(incomplete)]


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Datasets folder (env DSKD_DATA_DIR; default data/).")]
Device = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N (env DSKD_DEVICE; default auto).")
]
RunsDir = Annotated[
    Path | None, typer.Option("--runs-dir", help="Where runs are written (env DSKD_RUNS_DIR; default runs/).")
]


@app.command()
def train(
    method: Annotated[
        str | None,
        typer.Argument(
            help="Distillation method (kd, dkd, rld; at, fitnet, reviewkd, crd, nst, pkt, rkd, sp, vid, kdsvd, ofd), "
            "or vanilla to train MODEL from scratch; omitted with a --config that names it."
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TEACHER STUDENT | MODEL",
            help="Model names (see dskd models).",
            autocompletion=_complete_models,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="cifar100 (default, or the --config file's), imagenet (ImageFolder), digits (embedded, offline) "
            "or synthetic.",
        ),
    ] = None,
    scales: Annotated[
        str | None,
        typer.Option(
            "--scales",
            "--M",
            help="SDD scales, a subset of 1,2,4 with 1: 1,2 or [1,2,4]; 1 alone = plain global loss; "
            "auto = the preset's recommendation.",
        ),
    ] = None,
    stand: Annotated[
        bool,
        typer.Option("--stand", "--logit-stand", help="Logit standardization; enables --base-temp/--kd-weight."),
    ] = False,
    base_temp: Annotated[
        float | None,
        typer.Option(
            help="Temperature under --stand (default 2, or the preset's). "
            "Ignored without --stand, as in the DSKD README."
        ),
    ] = None,
    kd_weight: Annotated[
        float | None,
        typer.Option(
            help="KD weight under --stand (default 9, or the preset's); DKD/RLD multiply alpha and beta by it. "
            "Ignored without --stand, as in the DSKD README."
        ),
    ] = None,
    same_t: Annotated[bool, typer.Option("--same-t", help="RLD: alpha temperature = temperature.")] = False,
    sdd_weighting: Annotated[
        str | None,
        typer.Option(
            help="SDD reduction: mean (mean loss x mean weight: DSKD's SD-DKD, the dkd default) or region "
            "(weight x loss per region: the SDD paper's form, the kd/rld default)."
        ),
    ] = None,
    sdd_complementary: Annotated[
        float | None, typer.Option(help="SDD weight of regions whose teacher verdict flips (default 2).")
    ] = None,
    clip_grad: Annotated[float | None, typer.Option(help="Clip the global gradient norm to this value (off).")] = None,
    aug: Annotated[bool, typer.Option("--aug", help="RandAugment (n=2, m=10) after the flip.")] = False,
    no_preset: Annotated[bool, typer.Option("--no-preset", help="Ignore the paper preset for this pair.")] = False,
    preset_source: Annotated[
        str | None,
        typer.Option(
            help="Paper preset values from dskd (default: DSKD's config files) or mdistiller "
            "(mdistiller's/LSKD's published ImageNet protocol; on cifar100 the two agree)."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs (recipe: 240 on cifar100, 100 on imagenet, 1 of 8 passes on digits).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size (recipe: 64).")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Base LR (recipe: 0.05; 0.01 for ShuffleNet/MobileNet students on cifar100)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed; each seed is its own run folder (default 0).")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    teachers_dir: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Teacher checkpoints: <dir>/<dataset>/<TEACHER>.safetensors (env DSKD_TEACHERS_DIR; default teachers/)."
            )
        ),
    ] = None,
    teacher_ckpt: Annotated[
        Path | None,
        typer.Option(help="Teacher checkpoint file (.safetensors or legacy .pth) or a dskd run folder."),
    ] = None,
    runs_dir: RunsDir = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of run-config keys (over the preset, under flags), or a run's config.json / --dry-run "
            "JSON, replayed as it is (flags still apply on top).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any run-config key, e.g. --set lr=0.1 (repeatable; values are JSON)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run folder name instead of the variant (no path separators).")
    ] = None,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic kernels: bit-identical resumes on CPU.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run from its last completed epoch; `dskd train --resume RUN_DIR` resumes a run folder."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Retrain over an existing run folder.")] = False,
    allow_weak_teacher: Annotated[
        bool,
        typer.Option(
            "--allow-weak-teacher", help="Use a teacher that fetch-teachers --check measured >1 point below published."
        ),
    ] = False,
    image_size: Annotated[
        int | None,
        typer.Option(help="imagenet: crop size (recipe 224); evaluation resizes the short side to size x 256/224."),
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(help="Expected class count (imagenet: default its class folders; refused when they differ)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="imagenet: decoding processes per training process (env DSKD_WORKERS; default auto)."),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this node (DDP via torchrun's launcher): one per GPU (NCCL), "
            "or on CPU (Gloo). --batch-size is per process.",
        ),
    ] = None,
    sync_bn: Annotated[
        bool, typer.Option("--sync-bn", help="With several processes: BatchNorm statistics over all of them.")
    ] = False,
    lr_scaling: Annotated[
        str | None,
        typer.Option(help="With several processes: none (default, the LR as given) or linear (LR x processes)."),
    ] = None,
    fast: Annotated[
        bool | None,
        typer.Option(
            "--fast/--no-fast",
            help="Fast path: device-side step (autocast, channels_last, no per-step host reads). Default: on CUDA.",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="tf32 (fp32 with TF32 convolutions/matmuls: the reference's, the default on CUDA), fp32 (strict) "
            "or bf16 (fast-path autocast, a deviation). Evaluation is always strict fp32."
        ),
    ] = None,
    compile_: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help="torch.compile the fast step, CUDA graphs on CUDA (default: on CUDA)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved run config as JSON and exit.")] = False,
) -> None:
    """Train a student by distillation (METHOD TEACHER STUDENT) or a model from scratch (vanilla MODEL)."""
    from dskd_core.train import fit
    from dskd_core.train.distributed import launched_rank, launched_world_size

    models = models or []
    run_dir = _run_dir_argument(method) if resume and not models and method is not None else None
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other: pass one")
    launched = launched_world_size()
    if nproc is not None and launched > 1:
        raise UsageError("--nproc starts its own processes: drop it when launching with torchrun")
    # Rank 0 reports for all (under --nproc, the launched rank 0 does).
    render.set_quiet((launched > 1 and launched_rank() != 0) or (nproc is not None and nproc > 1 and not dry_run))
    world = nproc if nproc is not None else launched
    if run_dir is not None:
        given = {
            "--dataset": dataset,
            "--preset-source": preset_source,
            "--scales": scales,
            "--stand": stand,
            "--base-temp": base_temp,
            "--kd-weight": kd_weight,
            "--lr": lr,
            "--batch-size": batch_size,
            "--seed": seed,
            "--set": set_,
            "--config": config,
            "--name": name,
            "--teacher-ckpt": teacher_ckpt,
            "--aug": aug,
            "--clip-grad": clip_grad,
            "--same-t": same_t,
            "--sdd-weighting": sdd_weighting,
            "--sdd-complementary": sdd_complementary,
            "--no-preset": no_preset,
            "--deterministic": deterministic,
            "--image-size": image_size,
            "--num-classes": num_classes,
            "--sync-bn": sync_bn,
            "--lr-scaling": lr_scaling,
            "--fast/--no-fast": fast is not None,
            "--precision": precision,
            "--compile/--no-compile": compile_ is not None,
        }
        extra = [flag for flag, value in given.items() if value not in (None, False, [])]
        if extra:
            raise UsageError(f"with --resume RUN_DIR the config comes from the run folder: drop {', '.join(extra)}")
        cfg = _saved_config(run_dir, epochs)
    else:
        cfg = _new_config(
            method,
            models,
            dataset=dataset,
            scales=scales,
            stand=stand,
            base_temp=base_temp,
            kd_weight=kd_weight,
            same_t=same_t,
            sdd_weighting=sdd_weighting,
            sdd_complementary=sdd_complementary,
            clip_grad=clip_grad,
            aug=aug,
            no_preset=no_preset,
            preset_source=preset_source,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            teacher_ckpt=teacher_ckpt,
            config=config,
            set_=set_,
            name=name,
            deterministic=deterministic,
            image_size=image_size,
            num_classes=num_classes,
            sync_bn=sync_bn or None,
            lr_scaling=lr_scaling,
            world_size=world if world > 1 else None,
            fast=fast,
            precision=precision,
            compile=compile_,
        )
    settings = _settings(
        device=device, data_dir=data_dir, teachers_dir=teachers_dir, runs_dir=runs_dir, workers=workers
    )
    if dry_run:  # as config.json would record it here: fast/precision/compile resolved for the device
        from dskd_core.device import resolve_device
        from dskd_core.train.fast import resolve_execution

        execution = resolve_execution(cfg, resolve_device(settings.device), cfg.world_size)
        render.json_out(cfg.model_copy(update=execution.as_config()).model_dump(mode="json"))
        return
    if nproc is not None and nproc > 1:
        from dskd_core.train.launch import launch, preflight

        preflight(
            cfg,
            settings,
            nproc=nproc,
            resume=resume,
            overwrite=overwrite,
            run_dir=run_dir,
            allow_weak_teacher=allow_weak_teacher,
        )
        raise typer.Exit(launch(nproc, _child_argv(_ARGV)))
    with render.training_progress(render.progress_enabled(settings.progress)) as observer:
        result = fit(
            cfg,
            settings,
            resume=resume,
            overwrite=overwrite,
            run_dir=run_dir,
            observer=observer,
            allow_weak_teacher=allow_weak_teacher,
        )
    render.run_summary(result.summary, str(result.run_dir))


def _run_dir_argument(text: str) -> Path | None:
    """``dskd train --resume RUN_DIR``: the run folder, or None when ``text`` is a method name."""
    from dskd_core.methods import list_methods
    from dskd_core.runs.store import is_run_dir

    if text in list_methods():
        return None
    path = Path(text)
    if is_run_dir(path):
        return path
    if path.exists() or "/" in text or "\\" in text:
        raise UsageError(f"{text} is not a dskd run folder (no config.json): pass the folder that holds config.json")
    return None


def _saved_config(run_dir: Path, epochs: int | None) -> Any:
    from dskd_core.resolve import load_run_config

    cfg = load_run_config(run_dir)
    return cfg if epochs is None else load_run_config(run_dir, epochs=epochs)


def _new_config(
    method: str | None,
    models: list[str],
    *,
    scales: str | None,
    stand: bool,
    base_temp: float | None,
    kd_weight: float | None,
    same_t: bool,
    aug: bool,
    no_preset: bool,
    preset_source: str | None,
    teacher_ckpt: Path | None,
    config: Path | None,
    set_: list[str] | None,
    dataset: str | None,
    deterministic: bool,
    **flag_values: Any,
) -> Any:
    """The run config of a new run from the command line: names checked, layers resolved, preset noted."""
    from dskd_core.config import parse_scales
    from dskd_core.data import get_dataset_spec
    from dskd_core.methods import get_method
    from dskd_core.models import resolve_model_name
    from dskd_core.presets import check_source, find_preset
    from dskd_core.resolve import load_config_file, parse_overrides, resolve_run_config

    check_source(preset_source)
    file_values, replay = load_config_file(config) if config else ({}, False)
    named = {k: file_values.pop(k, None) for k in ("method", "teacher", "student", "dataset")}
    if replay:
        resolving = {
            "--scales": scales,
            "--stand": stand,
            "--base-temp": base_temp,
            "--kd-weight": kd_weight,
            "--same-t": same_t,
            "--preset-source": preset_source,
            "--no-preset": no_preset,
            "--dataset": dataset not in (None, named["dataset"]),
        }
        if drop := [flag for flag, value in resolving.items() if value not in (None, False)]:
            raise UsageError(
                f"--config {config} is a resolved run config, replayed as it is: drop {', '.join(drop)}, or "
                f"resolve a new run with dskd train METHOD TEACHER STUDENT {drop[0]} …"
            )
    dataset = dataset or named["dataset"] or "cifar100"
    if method is None:
        if named["method"] is None:
            where = f"{config} names no method" if config else "no METHOD given"
            raise UsageError(f"{where}: dskd train METHOD TEACHER STUDENT, or --config a run's config.json")
        method = str(named["method"])
    if not models:  # the names a --config file gives (a contradicting method is refused below)
        models = [str(m) for m in (named["teacher"], named["student"]) if m]
    spec = get_method(method)
    wanted = 2 if spec.needs_teacher else 1
    if len(models) != wanted:
        form = f"dskd train {method} TEACHER STUDENT" if wanted == 2 else f"dskd train {method} MODEL"
        raise UsageError(f"{method} takes {wanted} model name{'s' if wanted > 1 else ''}: {form}")
    models = list(models)
    zoo = get_dataset_spec(dataset).zoo
    for i, name in enumerate(models):
        models[i], alias = resolve_model_name(name, zoo)
        if alias:
            render.note(alias)
    teacher, student = (models[0], models[1]) if wanted == 2 else (None, models[0])
    _refuse_contradictions(config, named, {"method": method, "teacher": teacher, "student": student}, zoo)
    if not stand and (base_temp is not None or kd_weight is not None):
        render.note("--base-temp/--kd-weight take effect only with --stand (DSKD README semantics); ignored")
    flags = {
        **flag_values,
        "scales": None if scales is None else "auto" if scales.strip() == "auto" else parse_scales(scales),
        "stand": stand or None,
        "aug": aug or None,
        "deterministic": deterministic or None,
        "teacher_ckpt": str(teacher_ckpt) if teacher_ckpt else None,
    }
    cfg = resolve_run_config(
        method=method,
        student=student,
        teacher=teacher,
        dataset=dataset,
        file_values=None if replay else file_values,
        replay=file_values if replay else None,
        flags=flags,
        stand_base_temp=base_temp,
        stand_kd_weight=kd_weight,
        same_t=same_t,
        use_preset=not no_preset,
        preset_source=preset_source,
        overrides=parse_overrides(set_ or []),
    )
    if replay:
        render.note(
            f"replaying {config} as it is (fast/compile, and a fp32/tf32 precision, left to this device); "
            "flags and --set given now apply on top"
        )
        return cfg
    preset = (
        None
        if no_preset
        else find_preset(method, teacher, student, dataset, source=cfg.preset_source, sdd=cfg.scales != [1])
    )
    if preset is not None:
        shown = ", ".join(f"{k} {v}" for k, v in preset.values.items())
        render.note(
            f"using the {dataset} preset for {method} {teacher}->{student} from {cfg.preset_source} "
            f"({preset.note}): {shown}; flags override it"
        )
    return cfg


def _refuse_contradictions(config: Path | None, named: dict[str, Any], given: dict[str, Any], zoo: str) -> None:
    """A --config file's method/teacher/student must agree with the names on the command line."""
    from dskd_core.models import resolve_model_name

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
            f"--config {config} contradicts the command ({'; '.join(differ)}): drop the names to use the file's, "
            "or fix them"
        )


@app.command("eval")
def eval_(
    model: Annotated[
        str,
        typer.Option("-m", "--model", help="Architecture of the checkpoint.", autocompletion=_complete_models),
    ],
    checkpoint: Annotated[
        Path,
        typer.Option(
            "-c",
            "--checkpoint",
            help="dskd .safetensors, legacy .pth ({'model': state_dict}) or a run folder (its best student).",
        ),
    ],
    dataset: Annotated[
        str, typer.Option("-d", "--dataset", help="cifar100, imagenet (its val/ split), digits or synthetic.")
    ] = "cifar100",
    batch_size: Annotated[
        int | None, typer.Option("-bs", "--batch-size", help="Test batch size (default: the run's, else 64).")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="imagenet: crop size (default: the run's, else 224).")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Evaluate a checkpoint on a dataset's test split: top-1 and top-5."""
    from dskd_core.evaluation import evaluate_checkpoint

    if fmt not in ("text", "json"):
        raise UsageError(f"invalid --format '{fmt}': use text or json")
    settings = _settings(device=device, data_dir=data_dir)
    result = evaluate_checkpoint(model, checkpoint, dataset, settings, batch_size=batch_size, image_size=image_size)
    render.eval_result(result, fmt)


@app.command()
def quickstart(
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (digits recipe: 1 epoch of 8 passes).")] = None,
    teacher: Annotated[
        str, typer.Option(help="Teacher trained from scratch.", autocompletion=_complete_models)
    ] = "resnet20",
    student: Annotated[
        str, typer.Option(help="Student distilled twice: KD and DSKD.", autocompletion=_complete_models)
    ] = "resnet8",
    seed: Annotated[int, typer.Option(help="Seed for all three runs.")] = 0,
    device: Device = None,
    runs_dir: RunsDir = None,
) -> None:
    """Offline demo on the embedded digits: a teacher, a KD student and a DSKD student, in a table."""
    from dskd_core.quickstart import run_quickstart

    settings = _settings(device=device, runs_dir=runs_dir)
    with render.training_progress(render.progress_enabled(settings.progress)) as observer:
        runs = run_quickstart(settings, teacher=teacher, student=student, epochs=epochs, seed=seed, observer=observer)
    render.quickstart_table(
        [
            {
                "label": r.label,
                "model": r.config.student,
                "run_dir": str(r.result.run_dir),
                **r.result.summary,
            }
            for r in runs
        ]
    )
    best = runs[-1].result.run_dir / "checkpoints" / "student_best.safetensors"
    render.text(f"check the DSKD student: dskd eval -m {student} -c '{best}' -d digits")


@app.command("presets")
def presets_(
    method: Annotated[str | None, typer.Option(help="Only this method's presets.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Only this dataset's presets.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Only the presets of this --preset-source: dskd or mdistiller.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List the paper presets: per (dataset, source, method, teacher, student, SDD on/off) values."""
    from dskd_core.presets import check_source, load_presets

    if fmt not in ("table", "json"):
        raise UsageError(f"invalid --format '{fmt}': use table or json")
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
    render.presets(rows, fmt)


@app.command("models")
def models_(
    params: Annotated[bool, typer.Option("--params", help="Also build each model and count its parameters.")] = False,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes, for --params (default: cifar 100, imagenet 1000).")
    ] = None,
    zoo: Annotated[
        str | None,
        typer.Option(help="cifar (32x32, CIFAR-100/digits) or imagenet (torchvision layouts); default both."),
    ] = None,
) -> None:
    """List the registered model names (the names the field uses), per zoo: the dataset picks the zoo."""
    from dskd_core.models import ZOOS, create_model, list_aliases, list_models

    if zoo is not None and zoo not in ZOOS:
        raise UsageError(f"unknown zoo '{zoo}': use {' or '.join(ZOOS)}")
    rows = []
    for z in ZOOS if zoo is None else (zoo,):
        aliases = list_aliases(z)
        for n in list_models(z):
            count = sum(p.numel() for p in create_model(n, num_classes, zoo=z).parameters()) if params else None
            rows.append((z, n, count, ", ".join(a for a, target in aliases.items() if target == n)))
    render.models_table(rows)


@app.command()
def completions(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script (the files under completions/ are these outputs)."""
    if shell not in SHELLS:
        raise UsageError(f"unknown shell '{shell}': use one of {', '.join(SHELLS)}")
    group = ctx.find_root().command
    assert isinstance(group, TyperGroup)  # dskd's root: the DskdGroup of every command
    sys.stdout.write(generate(shell, group))


app.command("report")(report)
app.command("sweep")(sweep)

app.command("fetch-teachers")(fetch_teachers)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
