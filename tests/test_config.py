"""Run-config resolution: scales parsing, the --stand semantics, recipes, validation errors."""

from __future__ import annotations

import pytest

from dskd_core.config import RunConfig, parse_scales
from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.resolve import parse_overrides, resolve_run_config

REQUIRED_LEAVES = {
    "lr",
    "epochs",
    "batch_size",
    "weight_decay",
    "momentum",
    "lr_decay_epochs",
    "lr_decay_rate",
    "ce_weight",
    "kd_weight",
    "temperature",
    "scales",
    "stand",
}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1", [1]),
        ("1,2", [1, 2]),
        ("[1,2]", [1, 2]),
        ("'[1,2]'", [1, 2]),
        ('"[1, 2, 4]"', [1, 2, 4]),
        ("4,1", [1, 4]),
        ("1 2", [1, 2]),
        ("[1]", [1]),
    ],
)
def test_parse_scales_accepts_the_usual_spellings(text: str, want: list[int]) -> None:
    assert parse_scales(text) == want


@pytest.mark.parametrize("text", ["", "2", "2,4", "1,3", "1,2,8", "a", "1,,x", "1,1", "[0]"])
def test_parse_scales_refuses_with_the_fix(text: str) -> None:
    with pytest.raises(UsageError, match=r"subset of 1,2,4|repeated"):
        parse_scales(text)


def test_kd_defaults_are_mdistillers_cifar_recipe() -> None:
    cfg = resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4")
    dumped = cfg.model_dump()
    assert REQUIRED_LEAVES <= set(dumped)
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.weight_decay, cfg.momentum) == (0.05, 240, 64, 5e-4, 0.9)
    assert cfg.lr_decay_epochs == [150, 180, 210] and cfg.lr_decay_rate == 0.1
    assert (cfg.ce_weight, cfg.kd_weight, cfg.temperature, cfg.scales, cfg.stand) == (
        0.1,
        0.9,
        4.0,
        [1],
        False,
    )
    assert cfg.variant == "kd"


def test_stand_sets_temperature_and_kd_weight_from_base_temp_and_kd_weight() -> None:
    cfg = resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4", flags={"stand": True})
    assert (cfg.temperature, cfg.kd_weight, cfg.ce_weight) == (2.0, 9.0, 0.1)
    cfg = resolve_run_config(
        method="kd",
        teacher="resnet32x4",
        student="resnet8x4",
        flags={"stand": True},
        stand_base_temp=3.0,
        stand_kd_weight=12.0,
    )
    assert (cfg.temperature, cfg.kd_weight) == (3.0, 12.0)


def test_base_temp_and_kd_weight_change_nothing_without_stand() -> None:
    plain = resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4")
    ignored = resolve_run_config(
        method="kd", teacher="resnet32x4", student="resnet8x4", stand_base_temp=7.0, stand_kd_weight=3.0
    )
    assert plain == ignored


@pytest.mark.parametrize("student", ["ShuffleV1", "ShuffleV2", "MobileNetV2"])
def test_shufflenet_and_mobilenet_students_get_lr_001_on_cifar(student: str) -> None:
    assert resolve_run_config(method="kd", teacher="resnet32x4", student=student).lr == 0.01


def test_variant_names_are_canonical() -> None:
    def variant(**flags: object) -> str:
        return resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4", flags=flags).variant

    assert variant(scales=[1, 2]) == "kd+sdd[1,2]"
    assert variant(scales=[1, 2], stand=True) == "kd+sdd[1,2]+ls"
    assert variant(stand=True) == "kd+ls"
    assert variant(scales=[1]) == "kd"


def test_layers_apply_in_order_recipe_file_flags_overrides() -> None:
    cfg = resolve_run_config(
        method="kd",
        teacher="resnet32x4",
        student="resnet8x4",
        file_values={"lr": 0.2, "epochs": 5},
        flags={"lr": 0.3},
        overrides=parse_overrides(["epochs=7", "lr_decay_epochs=[2,4]"]),
    )
    assert (cfg.lr, cfg.epochs, cfg.lr_decay_epochs) == (0.3, 7, [2, 4])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"flags": {"epochs": 0}}, "epochs"),
        ({"flags": {"lr": -1.0}}, "lr"),
        ({"flags": {"batch_size": 0}}, "batch-size"),
        ({"overrides": {"lr_decay_epochs": [5, 3]}}, "increasing"),
        ({"overrides": {"sdd_weighting": "sum"}}, "sdd-weighting"),
    ],
)
def test_invalid_values_name_the_flag(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        resolve_run_config(method="kd", teacher="resnet32x4", student="resnet8x4", **kwargs)


def test_unknown_set_key_and_method_list_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="temperature"):
        parse_overrides(["temprature=3"])
    with pytest.raises(UnknownNameError, match="kd"):
        resolve_run_config(method="kdd", teacher="resnet32x4", student="resnet8x4")


def test_vanilla_refuses_a_teacher_and_sdd() -> None:
    with pytest.raises(UsageError, match="one model"):
        resolve_run_config(method="vanilla", teacher="resnet32x4", student="resnet8x4")
    with pytest.raises(UsageError, match="distillation"):
        resolve_run_config(method="vanilla", student="resnet8x4", flags={"scales": [1, 2]})


def test_run_dir_layout(tmp_path) -> None:
    cfg = RunConfig(method="kd", teacher="resnet32x4", student="resnet8x4", scales=[1, 2], stand=True, seed=3)
    assert cfg.run_dir(tmp_path) == tmp_path / "cifar100" / "resnet32x4-resnet8x4" / "kd+sdd[1,2]+ls" / "seed3"


def test_a_bad_set_value_names_the_set_form_with_an_example_and_no_missing_flag() -> None:
    from dskd_core.errors import UsageError
    from dskd_core.resolve import parse_overrides, resolve_run_config

    def message(method: str, text: str) -> str:
        with pytest.raises(UsageError) as err:
            resolve_run_config(method=method, teacher="resnet8", student="resnet8", overrides=parse_overrides([text]))
        return str(err.value)

    decay = message("kd", "lr_decay_epochs=100,150")
    assert "e.g. --set lr_decay_epochs=[150,180,210]" in decay and "--lr-decay" not in decay
    assert "e.g. --set mask_form=factor" in message("mlkd", "mask_form=rows")
    assert "e.g. --set crd_nce_k=16384" in message("crd", "crd_nce_k=0")
    assert "(fix --clip-grad or --set clip_grad=...)" in message("kd", "clip_grad=-1")  # a key with a flag
