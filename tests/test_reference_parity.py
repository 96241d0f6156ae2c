"""Every DSKD reference command, and its dskd counterpart's resolved config (``dskd train … --dry-run``).

The expected values are the reference's effective ones, worked out from its config files and
``tools/train.py``, not read from dskd's presets: a preset that drifts from the reference fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.sweep import grid_configs

README = Path(__file__).resolve().parents[1] / "README.md"
#: The reference commands' teachers are in place, as their dry runs check (a missing one is refused, as in the run).
pytestmark = pytest.mark.usefixtures("fetched_teachers")

CIFAR_SOLVER = {
    "dataset": "cifar100",
    "epochs": 240,
    "batch_size": 64,
    "test_batch_size": 64,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "lr_decay_epochs": [150, 180, 210],
    "lr_decay_rate": 0.1,
    "lr_schedule": "step",
    "epoch_passes": 1,
    "aug": False,
    "clip_grad": None,  # DSKD's trainer does not clip (the SDD trainer's 40 is not in it)
    "sdd_complementary": 2.0,
}
IMAGENET_SOLVER = {
    "dataset": "imagenet",
    "epochs": 100,
    "test_batch_size": 128,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "lr_decay_epochs": [30, 60, 90],
    "lr_decay_rate": 0.1,
    "lr_schedule": "step",
    "image_size": 224,
    "clip_grad": None,
}
# mdistiller's CIFAR KD block (DSKD's configs/cifar100/{kd,sdd_kd}/*.yaml leave it to the cfg defaults).
KD = {"ce_weight": 0.1, "kd_weight": 0.9, "temperature": 4.0, "warmup": 0}
# --logit-stand: KD.TEMPERATURE = base_temp (2), KD_WEIGHT = kd_weight (9); CE untouched.
KD_STAND = {"ce_weight": 0.1, "kd_weight": 9.0, "temperature": 2.0, "stand": True}
# The DKD β of DSKD's configs/cifar100/dkd/<pair>.yaml (= mdistiller's).
DKD_BETA = {("wrn_40_2", "wrn_16_2"): 6.0, ("resnet32x4", "ShuffleV2"): 8.0, ("resnet56", "resnet20"): 2.0}


def dry(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["train", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_values(cfg: dict[str, Any], expected: dict[str, Any]) -> None:
    wrong = {k: (cfg.get(k), v) for k, v in expected.items() if cfg.get(k) != v}
    assert not wrong, f"(dskd, reference) differ: {wrong}"


def dkd(pair: tuple[str, str], *, stand: bool, w: float = 9.0, t: float = 2.0) -> dict[str, Any]:
    beta = DKD_BETA[pair]
    if stand:  # DKD.ALPHA *= kd_weight, DKD.BETA *= kd_weight, DKD.T = base_temp
        return {"ce_weight": 1.0, "kd_weight": 1.0, "alpha": w, "beta": beta * w, "temperature": t, "warmup": 20}
    return {"ce_weight": 1.0, "kd_weight": 1.0, "alpha": 1.0, "beta": beta, "temperature": 4.0, "warmup": 20}


def rld(*, stand: bool, w: float, t: float) -> dict[str, Any]:
    if stand:  # α, β × kd_weight; T = α_T = base_temp
        return {"ce_weight": 1.0, "alpha": w, "beta": 8.0 * w, "temperature": t, "alpha_temperature": t, "warmup": 20}
    # without --logit-stand, --base-temp/--kd-weight are ignored; no --same-t ⇒ α_T stays 1
    return {"ce_weight": 1.0, "alpha": 1.0, "beta": 8.0, "temperature": 4.0, "alpha_temperature": 1.0, "warmup": 20}


# --------------------------------------------------------------------------------------------
# The README's "Coming from the DSKD README" table: every dskd command in it, with the values
# of the reference command beside it.

README_ROWS: dict[str, dict[str, Any]] = {
    "dskd train kd resnet32x4 resnet8x4": {**KD, "scales": [1], "stand": False, "lr": 0.05},
    "dskd train kd resnet32x4 resnet8x4 --stand": {**KD_STAND, "scales": [1], "lr": 0.05},
    "dskd train kd resnet32x4 resnet8x4 --scales 1,2": {**KD, "scales": [1, 2], "sdd_weighting": "region"},
    "dskd train kd resnet32x4 resnet8x4 --scales 1,2 --stand": {
        **KD_STAND,
        "scales": [1, 2],
        "sdd_weighting": "region",
    },
    "dskd train dkd wrn_40_2 wrn_16_2": {**dkd(("wrn_40_2", "wrn_16_2"), stand=False), "scales": [1], "lr": 0.05},
    "dskd train dkd wrn_40_2 wrn_16_2 --scales 1,2,4 --stand": {
        **dkd(("wrn_40_2", "wrn_16_2"), stand=True),
        "scales": [1, 2, 4],
        "sdd_weighting": "mean",  # DSKD's SDD_DKD.py: mean loss × mean region weight
    },
    # DSKD's configs/cifar100/mlkd/*.yaml: 480 epochs (960 for ShuffleV2), LR as written, no KD block.
    "dskd train mlkd resnet32x4 resnet8x4": {**KD, "scales": [1], "stand": False, "lr": 0.025, "epochs": 480},
    "dskd train mlkd resnet32x4 resnet8x4 --stand": {**KD_STAND, "scales": [1], "lr": 0.025, "epochs": 480},
    "dskd train mlkd resnet32x4 ShuffleV2": {**KD, "scales": [1], "stand": False, "lr": 0.01, "epochs": 960},
    # mlkd_noaug/*.yaml: 240 epochs, LR 0.05; --aug sets EXPERIMENT.AUG.
    "dskd train mlkd_noaug resnet32x4 resnet8x4 --aug": {**KD, "scales": [1], "lr": 0.05, "aug": True},
    "dskd train rld resnet56 resnet20 --scales 1,2 --stand": {
        **rld(stand=True, w=6.0, t=5.0),  # the README's homogeneous --base-temp 5 --kd-weight 6
        "scales": [1, 2],
        "sdd_weighting": "region",
    },
}


def _readme_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Coming from the DSKD README") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"\| `(dskd train [^`]+)`", section)


def test_every_train_row_of_the_readme_table_is_checked_here() -> None:
    assert sorted(_readme_commands()) == sorted(README_ROWS)


@pytest.mark.parametrize("command", sorted(README_ROWS))
def test_readme_table_row_runs_the_reference_run(command: str) -> None:
    cfg = dry(*command.split()[2:])
    assert_values(cfg, {**CIFAR_SOLVER, **README_ROWS[command]})


# --------------------------------------------------------------------------------------------
# The DSKD README's CIFAR-100 commands ("Manual Training Examples"), the reference form beside each.

HOMO_RLD = rld(stand=True, w=6.0, t=5.0)
SEED_CIFAR = [
    # KD, configs/cifar100/{kd,sdd_kd}/resnet32x4_resnet8x4.yaml
    ("--M [1]", ["kd", "resnet32x4", "resnet8x4"], {**KD, "scales": [1]}),
    ("--M [1] --logit-stand", ["kd", "resnet32x4", "resnet8x4", "--stand"], {**KD_STAND, "scales": [1]}),
    ("sdd_kd --M [1,2]", ["kd", "resnet32x4", "resnet8x4", "--M", "[1,2]"], {**KD, "scales": [1, 2]}),
    (
        "sdd_kd --M [1,2] --logit-stand",
        ["kd", "resnet32x4", "resnet8x4", "--M", "[1,2]", "--logit-stand"],
        {**KD_STAND, "scales": [1, 2], "sdd_weighting": "region"},
    ),
    # DKD, configs/cifar100/{dkd,sdd_dkd}/wrn_40_2_wrn_16_2.yaml
    ("dkd --M [1]", ["dkd", "wrn_40_2", "wrn_16_2"], dkd(("wrn_40_2", "wrn_16_2"), stand=False)),
    (
        "dkd --M [1] --logit-stand",
        ["dkd", "wrn_40_2", "wrn_16_2", "--stand"],
        dkd(("wrn_40_2", "wrn_16_2"), stand=True),
    ),
    (
        "sdd_dkd --M [1,2,4]",
        ["dkd", "wrn_40_2", "wrn_16_2", "--M", "[1,2,4]"],
        {**dkd(("wrn_40_2", "wrn_16_2"), stand=False), "scales": [1, 2, 4], "sdd_weighting": "mean"},
    ),
    (
        "sdd_dkd --M [1,2,4] --logit-stand",
        ["dkd", "wrn_40_2", "wrn_16_2", "--M", "[1,2,4]", "--logit-stand"],
        {**dkd(("wrn_40_2", "wrn_16_2"), stand=True), "scales": [1, 2, 4], "sdd_weighting": "mean"},
    ),
    # RLD: the README's wrn_40_2_resnet20 files do not exist; its pair runs on the RLD defaults.
    (
        "rld --M [1] --base-temp 2 --kd-weight 9",
        ["rld", "wrn_40_2", "resnet20", "--base-temp", "2", "--kd-weight", "9"],
        {**rld(stand=False, w=9, t=2), "scales": [1]},
    ),
    (
        "rld --M [1] --logit-stand --base-temp 2 --kd-weight 9",
        ["rld", "wrn_40_2", "resnet20", "--stand", "--base-temp", "2", "--kd-weight", "9"],
        {**rld(stand=True, w=9.0, t=2.0), "scales": [1]},
    ),
    (
        "sdd_rld --M [1,2,4] --base-temp 2 --kd-weight 9",
        ["rld", "wrn_40_2", "resnet20", "--scales", "1,2,4", "--base-temp", "2", "--kd-weight", "9"],
        {**rld(stand=False, w=9, t=2), "scales": [1, 2, 4], "sdd_weighting": "region"},
    ),
    (
        "sdd_rld --M [1,2,4] --logit-stand --base-temp 2 --kd-weight 9",
        ["rld", "wrn_40_2", "resnet20", "--scales", "1,2,4", "--stand", "--base-temp", "2", "--kd-weight", "9"],
        {**rld(stand=True, w=9.0, t=2.0), "scales": [1, 2, 4], "sdd_weighting": "region"},
    ),
    (
        "sdd_rld/resnet56_resnet20 --M [1,2] --logit-stand --base-temp 5 --kd-weight 6",
        ["rld", "resnet56", "resnet20", "--scales", "1,2", "--stand", "--base-temp", "5", "--kd-weight", "6"],
        {**HOMO_RLD, "scales": [1, 2]},
    ),
]


@pytest.mark.parametrize(("reference", "args", "expected"), SEED_CIFAR, ids=[r for r, _, _ in SEED_CIFAR])
def test_seed_readme_cifar_command(reference: str, args: list[str], expected: dict[str, Any]) -> None:
    assert_values(dry(*args), {**CIFAR_SOLVER, "lr": 0.05, **expected})


# --------------------------------------------------------------------------------------------
# run_cifar100.sh: per method, [1] and [1] + logit-stand on the plain config, then the sdd_* config
# at [1], [1,2], [1,2,4], with and without --logit-stand (8 runs; [1] on the sdd_* config is the
# plain loss, so dskd's sweep holds 6 distinct runs). RLD takes the script's BASE_TEMP/KD_WEIGHT.

SCRIPT_PAIRS = [("wrn_40_2", "wrn_16_2", "homogeneous"), ("resnet32x4", "ShuffleV2", "heterogeneous")]


@pytest.mark.parametrize("method", ["kd", "dkd", "rld"])
@pytest.mark.parametrize(("teacher", "student", "structure"), SCRIPT_PAIRS)
def test_run_cifar100_script_variants(method: str, teacher: str, student: str, structure: str) -> None:
    homo = structure == "homogeneous"
    lr = 0.05 if homo else 0.01  # DSKD's train.py asserts 0.01 for shuv2/mv2 students
    base_temp, kd_weight = (5.0, 6.0) if method == "rld" and homo else (2.0, 9.0)
    script = [([1], False), ([1], True)] + [
        (scales, stand) for stand in (False, True) for scales in ([1], [1, 2], [1, 2, 4])
    ]
    cfgs = grid_configs(method, teacher, student, runs_dir=Path("runs"), seeds=[0])
    by_variant = {c.variant: c.model_dump(mode="json") for c in cfgs}
    assert len(cfgs) == 6
    batch = 128 if method == "rld" and (teacher, student) == ("wrn_40_2", "wrn_16_2") else 64
    for scales, stand in script:
        name = method + ("+sdd[" + ",".join(map(str, scales)) + "]" if scales != [1] else "") + ("+ls" if stand else "")
        if method == "kd":
            expected = KD_STAND if stand else KD
        elif method == "dkd":
            expected = dkd((teacher, student), stand=stand)
        else:
            expected = rld(stand=stand, w=kd_weight, t=base_temp)
        weighting = "mean" if method == "dkd" else "region"
        assert_values(
            by_variant[name],
            {
                **CIFAR_SOLVER,
                **expected,
                "lr": lr,
                "batch_size": batch,
                "scales": scales,
                "stand": stand,
                "sdd_weighting": weighting,
            },
        )


# --------------------------------------------------------------------------------------------
# ImageNet: DSKD's configs/imagenet/{r34_r18,r50_mv2}/*.yaml, with the DSKD
# README's flags (--logit-stand defaults τ 2, w 9), against `dskd train … -d imagenet`.

R34, R50 = ("ResNet34", "ResNet18"), ("ResNet50", "MobileNetV1")


def _imagenet_file(pair: tuple[str, str], method: str, sdd: bool) -> dict[str, Any]:
    """The values of DSKD's file for ``pair``/``method`` (``sdd_`` prefix when ``sdd``), as written."""
    r50 = pair == R50
    if method == "kd":
        ce = 0.5 if r50 and not sdd else 1.0
        return {"batch_size": 256, "lr": 0.2, "ce_weight": ce, "kd_weight": 0.5, "temperature": 1.0}
    beta = 2.0 if (r50 and method == "rld" and not sdd) else 0.5
    lr = 0.025 if method == "dkd" and (sdd or not r50) else 0.2
    values = {"batch_size": 256, "lr": lr, "ce_weight": 1.0, "alpha": 1.0, "beta": beta, "temperature": 1.0}
    values["warmup"] = 1
    if method == "rld":
        values["alpha_temperature"] = 1.0
    return values


def _stand(values: dict[str, Any], method: str) -> dict[str, Any]:
    out = {**values, "stand": True}
    if method == "kd":
        return {**out, "temperature": 2.0, "kd_weight": 9.0}
    out.update(alpha=values["alpha"] * 9, beta=values["beta"] * 9, temperature=2.0)
    if method == "rld":
        out["alpha_temperature"] = 2.0
    return out


IMAGENET_CASES = [
    (pair, method, scales, stand)
    for pair in (R34, R50)
    for method in ("kd", "dkd", "rld")
    for scales in ([1], [1, 2])
    for stand in (False, True)
]


@pytest.mark.parametrize(
    ("pair", "method", "scales", "stand"),
    IMAGENET_CASES,
    ids=[f"{m}-{p[0]}-{','.join(map(str, s))}{'-ls' if st else ''}" for p, m, s, st in IMAGENET_CASES],
)
def test_imagenet_commands_take_dskd_config_files(
    pair: tuple[str, str], method: str, scales: list[int], stand: bool
) -> None:
    args = [method, *pair, "-d", "imagenet", "--scales", ",".join(map(str, scales))]
    args += ["--stand"] if stand else []
    expected = _imagenet_file(pair, method, sdd=scales != [1])
    expected = _stand(expected, method) if stand else expected
    weighting = "mean" if method == "dkd" else "region"
    cfg = dry(*args)
    assert_values(cfg, {**IMAGENET_SOLVER, **expected, "scales": scales, "preset_source": "dskd"})
    if scales != [1]:
        assert cfg["sdd_weighting"] == weighting


def test_seed_readme_imagenet_commands() -> None:
    # "Base RLD": --base-temp 2 --kd-weight 9 without --logit-stand are ignored ⇒ the file's values.
    cfg = dry("rld", "ResNet34", "ResNet18", "-d", "imagenet", "--base-temp", "2", "--kd-weight", "9")
    assert_values(cfg, {"alpha": 1.0, "beta": 0.5, "temperature": 1.0, "alpha_temperature": 1.0, "lr": 0.2})
    # "DKD with ours": sdd_dkd.yaml --M [1,2] --logit-stand ⇒ α 9, β 4.5, T 2, CE 1, warm-up 1, LR 0.025.
    cfg = dry("dkd", "ResNet34", "ResNet18", "-d", "imagenet", "--M", "[1,2]", "--logit-stand")
    expected = {"alpha": 9.0, "beta": 4.5, "temperature": 2.0, "ce_weight": 1.0, "warmup": 1, "lr": 0.025}
    assert_values(cfg, {**expected, "batch_size": 256, "sdd_weighting": "mean"})
    # "KD with ours": sdd_kd.yaml --M [1,2] --logit-stand ⇒ T 2, KD 9, CE 1.
    cfg = dry("kd", "ResNet34", "ResNet18", "-d", "imagenet", "--M", "[1,2]", "--logit-stand")
    assert_values(cfg, {"temperature": 2.0, "kd_weight": 9.0, "ce_weight": 1.0, "batch_size": 256})
    # R50 → MV1 DKD with ours: r50_mv2/sdd_dkd.yaml (LR 0.025, β 0.5), not its dkd.yaml (LR 0.2).
    cfg = dry("dkd", "ResNet50", "MobileNetV1", "-d", "imagenet", "--scales", "1,2", "--stand")
    assert_values(cfg, {"lr": 0.025, "alpha": 9.0, "beta": 4.5, "temperature": 2.0, "sdd_weighting": "mean"})


def test_mdistiller_source_keeps_the_published_imagenet_protocol() -> None:
    cfg = dry("dkd", "ResNet50", "MobileNetV1", "-d", "imagenet", "--preset-source", "mdistiller")
    assert_values(cfg, {"batch_size": 512, "lr": 0.2, "beta": 2.0, "preset_source": "mdistiller"})
    cfg = dry("dkd", "ResNet50", "MobileNetV1", "-d", "imagenet", "--scales", "1,2", "--preset-source", "mdistiller")
    assert_values(cfg, {"batch_size": 512, "lr": 0.2, "beta": 2.0})
    result = CliRunner().invoke(app, ["train", "kd", "resnet32x4", "resnet8x4", "--preset-source", "x", "--dry-run"])
    assert result.exit_code == 2 and "--preset-source" in result.output
    # On CIFAR-100 the two sources agree.
    assert dry("dkd", "wrn_40_2", "wrn_16_2", "--preset-source", "mdistiller")["beta"] == 6.0


# --------------------------------------------------------------------------------------------
# The SD-DKD reduction on every DKD pair, and its name when a run asks for the other one.


def test_sd_dkd_reduces_as_dskd_on_every_pair_and_names_the_other_form() -> None:
    from dskd_core.presets import load_presets

    pairs = [(p.teacher, p.student) for p in load_presets() if p.method == "dkd" and p.dataset == "cifar100"]
    assert len(pairs) == 14
    for teacher, student in pairs:
        cfg = dry("dkd", teacher, student, "--scales", "auto", "--stand")
        assert cfg["sdd_weighting"] == "mean", (teacher, student)
    cfg = dry("dkd", "wrn_40_2", "wrn_16_2", "--scales", "1,2", "--stand", "--sdd-weighting", "region")
    assert cfg["sdd_weighting"] == "region"
    from dskd_core.config import RunConfig

    assert RunConfig(**cfg).variant == "dkd+sdd[1,2]+region+ls"
    assert RunConfig(**dry("dkd", "wrn_40_2", "wrn_16_2", "--scales", "1,2", "--stand")).variant == "dkd+sdd[1,2]+ls"
    kd_mean = dry("kd", "resnet32x4", "resnet8x4", "--scales", "1,2", "--sdd-weighting", "mean")
    assert RunConfig(**kd_mean).variant == "kd+sdd[1,2]+mean"


def test_the_readme_tables_flag_and_eval_rows() -> None:
    """The rows without a train command: the flags keep the reference's names and meanings."""
    # --base-temp 2 --kd-weight 9: used with --stand only (the reference ignores them without --logit-stand).
    with_flags = dry("kd", "resnet32x4", "resnet8x4", "--stand", "--base-temp", "3", "--kd-weight", "7")
    assert (with_flags["temperature"], with_flags["kd_weight"]) == (3.0, 7.0)
    assert_values(dry("kd", "resnet32x4", "resnet8x4", "--base-temp", "3", "--kd-weight", "7"), KD)
    # --same-t: RLD's α_T = T (tools/train.py step 4), after --stand has set T.
    assert dry("rld", "resnet56", "resnet20", "--same-t")["alpha_temperature"] == 4.0
    assert dry("rld", "resnet56", "resnet20", "--stand", "--same-t")["alpha_temperature"] == 5.0
    assert dry("kd", "resnet32x4", "resnet8x4", "--aug")["aug"] is True
    # tools/eval.py -m MODEL -c CKPT -d DATASET [-bs 64]: the same short options.
    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("-m", "-c", "-d", "-bs"):
        assert re.search(rf"(^|\s|,){re.escape(option)}[\s,]", result.stdout), option
