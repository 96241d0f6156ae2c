"""ImageNet: the torchvision-keyed zoo, the ImageFolder data with its pre-flight checks, the presets."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dskd_cli.app import app
from dskd_core.data import ImageFolderSplit, LoaderOptions, get_dataset_spec, load_dataset, make_loader
from dskd_core.data.imagefolder import build_transform
from dskd_core.data.shard import Shard
from dskd_core.errors import DatasetNotFound, UsageError
from dskd_core.models import create_model, list_models
from dskd_core.presets import find_preset, load_presets
from dskd_core.resolve import resolve_run_config
from tests.helpers import save_random_teacher, write_imagefolder

# torchvision's own figures (1000 classes) and mdistiller's MobileNetV1 (width 1.0).
EXPECTED_PARAMS = {"ResNet18": 11_689_512, "ResNet34": 21_797_672, "ResNet50": 25_557_032, "MobileNetV1": 4_231_976}


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _stderr(result) -> str:  # type: ignore[no-untyped-def]  # Click < 8.2 mixes stderr into output
    try:
        return str(result.stderr)
    except ValueError:
        return str(result.output)


# ---------------------------------------------------------------------------------------------
# Models


@pytest.mark.parametrize("name", ["ResNet18", "ResNet34", "ResNet50"])
def test_resnets_have_torchvisions_state_dict_layout(name: str) -> None:
    import torchvision

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        ours = create_model(name, zoo="imagenet")
        reference = getattr(torchvision.models, name.lower())()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_torchvision_weights_load_strictly_and_give_the_same_logits() -> None:
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    ours = create_model("ResNet18", zoo="imagenet").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, feats = ours(x)
        torch.testing.assert_close(logits, reference(x), rtol=1e-5, atol=1e-5)
    assert feats["final_map"].shape[-2:] == (2, 2)  # 64 px / 32


@pytest.mark.parametrize("name", list_models("imagenet"))
def test_imagenet_models_keep_the_model_contract(name: str) -> None:
    with torch.device("meta"):
        assert sum(p.numel() for p in create_model(name, zoo="imagenet").parameters()) == EXPECTED_PARAMS[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, zoo="imagenet").eval()
    side = 224 if name in ("ResNet18", "MobileNetV1") else 64  # one 224-px pass per family is enough
    with torch.no_grad():
        logits, feats = model(torch.randn(1, 3, side, side))
    assert logits.shape == (1, 7) and model.get_classifier().out_features == 7
    assert feats["final_map"].shape[-2:] == ((7, 7) if side == 224 else (2, 2))  # 7×7 at 224 px, as torchvision's
    assert [f.shape[1] for f in feats["feats"]] == model.get_stage_channels()
    assert [f.shape for f in feats["preact_feats"]] == [f.shape for f in feats["feats"]]
    torch.testing.assert_close(feats["final_map"].mean((2, 3)), feats["pooled_feat"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.get_classifier()(feats["pooled_feat"]), logits, rtol=0, atol=0)
    assert len(model.get_bn_before_relu()) == 4


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_mobilenetv2_is_an_imagenet_alias_for_mobilenetv1_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="MobileNetV2' on imagenet is MobileNetV1"):
        alias = create_model("MobileNetV2", zoo="imagenet")
    assert type(alias).__name__ == "MobileNetV1"
    assert {"model.13.4.running_var", "model.0.0.weight", "fc.weight"} <= set(alias.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert type(create_model("MobileNetV2")).__name__ == "MobileNetV2"  # the CIFAR net, no warning
    with pytest.raises(UsageError, match="imagenet zoo"):
        create_model("MobileNetV1")  # not a CIFAR model
    result = _invoke("train", "kd", "ResNet50", "MobileNetV2", "-d", "imagenet", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["student"] == "MobileNetV1" and "is MobileNetV1" in _stderr(result)


def test_models_command_lists_both_zoos() -> None:
    result = _invoke("models", "--zoo", "imagenet")
    assert result.exit_code == 0
    assert "MobileNetV1" in result.stdout and "MobileNetV2" in result.stdout and "resnet8x4" not in result.stdout
    assert "resnet8x4" in _invoke("models").stdout


# ---------------------------------------------------------------------------------------------
# Data


def test_imagefolder_batches_follow_the_standard_transforms(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, {"b": 3, "a": 2}, {"a": 1, "b": 2})
    train, val = load_dataset("imagenet", tmp_path, download=False)
    assert isinstance(train, ImageFolderSplit) and isinstance(val, ImageFolderSplit)
    assert train.classes == ("a", "b") and train.labels.tolist() == [0, 0, 1, 1, 1]  # sorted folders
    spec = get_dataset_spec("imagenet")
    cpu = torch.device("cpu")
    batches = list(make_loader(val, spec, 2, LoaderOptions(train=False, device=cpu, image_size=32)))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2]]
    assert batches[0]["image"].shape == (2, 3, 32, 32) and batches[0]["image"].dtype == torch.float32
    assert batches[0]["target"].tolist() == [0, 1]
    resize = build_transform(32, train=False).transforms[0]
    assert resize.size == round(32 * 256 / 224)  # evaluation: Resize(size·256/224), CenterCrop(size)
    loader = make_loader(train, spec, 5, LoaderOptions(train=True, device=cpu, image_size=48, seed=3))
    loader.set_epoch(2)
    first, again = next(iter(loader)), next(iter(loader))
    torch.testing.assert_close(first["image"], again["image"])  # a function of (seed, epoch, index)
    assert sorted(first["index"].tolist()) == list(range(5)) and first["image"].shape == (5, 3, 48, 48)


def test_a_last_training_batch_of_one_image_is_dropped_not_evaluation(tmp_path: Path) -> None:
    """BatchNorm cannot normalise one sample with a 1×1 final map (ResNet at --image-size 32)."""
    write_imagefolder(tmp_path, {"a": 3, "b": 2}, {"a": 3, "b": 2}, size=32)
    train, val = load_dataset("imagenet", tmp_path, download=False)
    spec, cpu = get_dataset_spec("imagenet"), torch.device("cpu")
    train_loader = make_loader(train, spec, 4, LoaderOptions(train=True, device=cpu, image_size=32))
    assert [len(b["target"]) for b in train_loader] == [4] and len(train_loader) == 1
    assert [
        len(b["target"]) for b in make_loader(train, spec, 3, LoaderOptions(train=True, device=cpu, image_size=32))
    ] == [3, 2]
    assert [
        len(b["target"]) for b in make_loader(val, spec, 4, LoaderOptions(train=False, device=cpu, image_size=32))
    ] == [4, 1]


def test_imagefolder_shards_give_each_sample_the_augmentation_of_one_process(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, {"a": 4, "b": 3}, {"a": 1, "b": 1})
    train, _ = load_dataset("imagenet", tmp_path, download=False)
    spec, cpu = get_dataset_spec("imagenet"), torch.device("cpu")

    def images(shard: Shard, batch: int) -> dict[int, torch.Tensor]:
        loader = make_loader(
            train, spec, batch, LoaderOptions(train=True, device=cpu, image_size=32, seed=1, shard=shard)
        )
        loader.set_epoch(3)
        out: dict[int, torch.Tensor] = {}
        for b in loader:
            out.update(zip(b["index"].tolist(), b["image"], strict=True))
        return out

    whole = images(Shard(), 8)
    rank0, rank1 = images(Shard(0, 2, 2), 4), images(Shard(1, 2, 2), 4)
    assert len(whole) == 7 and set(rank0) | set(rank1) == set(whole)  # 7 samples padded to 2 × 4
    for index, image in {**rank0, **rank1}.items():
        torch.testing.assert_close(image, whole[index])


@pytest.mark.parametrize(
    ("layout", "fragment"),
    [
        ("no-val", "val is missing"),
        ("loose-val", "instead of class folders"),
        ("other-classes", "different class folders"),
        ("empty-class", "holds no images"),
        ("nothing", "ImageNet not found"),
    ],
)
def test_broken_layouts_are_refused_up_front_in_one_line(tmp_path: Path, layout: str, fragment: str) -> None:
    if layout != "nothing":
        write_imagefolder(tmp_path, {"a": 2, "b": 2}, {"a": 1, "b": 1})
    root = tmp_path / "imagenet"
    if layout == "no-val":
        for f in (root / "val").rglob("*.JPEG"):
            f.unlink()
        for d in sorted((root / "val").iterdir()):
            d.rmdir()
        (root / "val").rmdir()
    elif layout == "loose-val":
        for f in list((root / "val").rglob("*.JPEG")):
            f.rename(root / "val" / f.name)
    elif layout == "other-classes":
        (root / "val" / "b").rename(root / "val" / "c")
    elif layout == "empty-class":
        (root / "train" / "z").mkdir()
        (root / "val" / "z").mkdir()
    with pytest.raises(DatasetNotFound, match=fragment):
        load_dataset("imagenet", tmp_path, download=False)
    # The same check stops `dskd train` (one line, exit 2), also before --nproc starts any process.
    for extra in ([], ["--nproc", "2"]):
        result = _invoke(
            "train", "vanilla", "ResNet18", "-d", "imagenet", "--data-dir", str(tmp_path), "--epochs", "1", *extra
        )
        err = _stderr(result).strip()
        assert result.exit_code == 2 and fragment in err and len(err.splitlines()) == 1, result.output


def test_an_unexpected_class_count_is_refused_before_training(tmp_path: Path) -> None:
    write_imagefolder(tmp_path, {"a": 2, "b": 2}, {"a": 1, "b": 1})
    teacher = save_random_teacher(tmp_path / "r34.safetensors", "ResNet34", 1000)
    base = ["-d", "imagenet", "--data-dir", str(tmp_path), "--epochs", "1", "--image-size", "32"]
    asked = _invoke("train", "vanilla", "ResNet18", *base, "--num-classes", "5")
    assert asked.exit_code == 2 and "has 2 classes, but --num-classes is 5" in _stderr(asked)
    wrong_teacher = _invoke("train", "kd", "ResNet34", "ResNet18", *base, "--teacher-ckpt", str(teacher))
    assert wrong_teacher.exit_code == 2 and "has 1000 classes but the dataset has 2" in _stderr(wrong_teacher)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------
# Presets and config


def test_imagenet_mdistiller_presets_hold_the_published_protocol() -> None:
    # DSKD's own ImageNet files (the default source) are checked value by value in test_reference_parity.py.
    imagenet = [p for p in load_presets() if p.dataset == "imagenet" and "mdistiller" in p.sources]
    assert sorted((p.method, p.teacher, p.student) for p in imagenet) == sorted(
        (m, t, s) for m in ("kd", "dkd", "rld") for t, s in (("ResNet34", "ResNet18"), ("ResNet50", "MobileNetV1"))
    )
    for p in imagenet:
        v = p.values
        assert p.sdd is None and p.sources == ("mdistiller",)
        assert (v["batch_size"], v["lr"], v["epochs"], v["lr_decay_epochs"], v["weight_decay"]) == (
            512,
            0.2,
            100,
            [30, 60, 90],
            1e-4,
        )
        assert p.sdd_scales == [1, 2] and v["temperature"] == 1.0
        if p.method in ("dkd", "rld"):
            assert v["beta"] == (0.5 if p.student == "ResNet18" else 2.0) and v["warmup"] == 1
    kd = find_preset("kd", "ResNet34", "ResNet18", "imagenet", source="mdistiller")
    assert kd is not None and (kd.values["ce_weight"], kd.values["kd_weight"]) == (1.0, 0.5)
    assert find_preset("kd", "ResNet34", "ResNet18", "cifar100") is None
    cfg = resolve_run_config(
        method="dkd", teacher="ResNet34", student="ResNet18", dataset="imagenet", preset_source="mdistiller"
    )
    assert (cfg.beta, cfg.temperature, cfg.warmup, cfg.image_size, cfg.test_batch_size) == (0.5, 1.0, 1, 224, 128)
    assert (cfg.batch_size, cfg.lr, cfg.preset_source) == (512, 0.2, "mdistiller")


@pytest.mark.usefixtures("fetched_teachers")  # a dry run checks the teacher file
def test_distributed_options_are_recorded_in_the_config() -> None:
    result = _invoke(
        "train",
        "kd",
        "ResNet34",
        "ResNet18",
        "-d",
        "imagenet",
        "--nproc",
        "4",
        "--sync-bn",
        "--lr-scaling",
        "linear",
        "--image-size",
        "64",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert (cfg["world_size"], cfg["sync_bn"], cfg["lr_scaling"], cfg["image_size"]) == (4, True, "linear", 64)
    from dskd_core.train import lr_at

    config = resolve_run_config(
        method="kd", teacher="resnet32x4", student="resnet8x4", flags={"world_size": 4, "lr_scaling": "linear"}
    )
    assert lr_at(config, 1) == pytest.approx(0.2) and lr_at(config, 151) == pytest.approx(0.02)
    bad = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--image-size", "64", "--dry-run")
    assert bad.exit_code == 2 and "fixed size" in _stderr(bad)
    bad = _invoke("train", "kd", "resnet32x4", "resnet8x4", "--lr-scaling", "sqrt", "--dry-run")
    assert bad.exit_code == 2 and "lr-scaling" in _stderr(bad)


def test_imagefolder_two_views_and_aug_follow_each_sample_not_the_workers(tmp_path: Path) -> None:
    """``image`` is the one-view loader's; ``image_strong`` another crop with the strong augmentation; ``aug``
    strongly augments the one view. Every draw is the sample's (seed, epoch, index): 0 or 2 workers agree."""
    write_imagefolder(tmp_path, {"a": 3, "b": 3}, {"a": 1, "b": 1}, size=40)
    train, _ = load_dataset("imagenet", tmp_path, download=False)
    spec, cpu = get_dataset_spec("imagenet"), torch.device("cpu")

    def by_index(workers: int = 0, **views: bool) -> dict[int, dict[str, torch.Tensor]]:
        options = LoaderOptions(train=True, device=cpu, image_size=32, seed=2, workers=workers, **views)
        loader = make_loader(train, spec, 4, options)
        loader.set_epoch(2)
        out: dict[int, dict[str, torch.Tensor]] = {}
        for b in loader:
            for i, index in enumerate(b["index"].tolist()):
                out[index] = {k: v[i] for k, v in b.items() if k.startswith("image")}
        return out

    plain, two, aug = by_index(), by_index(strong_view=True), by_index(aug=True)
    assert set(two[0]) == {"image", "image_strong"} and set(plain[0]) == {"image"}
    for index in plain:
        torch.testing.assert_close(two[index]["image"], plain[index]["image"])
        assert not torch.equal(two[index]["image_strong"], two[index]["image"])
        assert not torch.equal(aug[index]["image"], plain[index]["image"])
    # The strong view rebuilt per sample: the second crop of its forked (seed, epoch, index) stream, then
    # the first strong draws of its own stream; ``aug`` takes the first draws of that stream too.
    from PIL import Image

    from dskd_core.data.imagefolder import STRONG_STREAM
    from dskd_core.data.shard import stream_seed
    from dskd_core.data.strong import StrongDraws, apply_strong, draw_strong

    transform = build_transform(32, train=True)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    for index in plain:
        with Image.open(train.path(index)) as raw:
            image = raw.convert("RGB")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(2, 2, index))
            weak, strong = transform(image), transform(image)
        draws: StrongDraws = draw_strong(1, torch.Generator().manual_seed(stream_seed(2, 2, index, STRONG_STREAM)))
        for got, crop in ((two[index]["image_strong"], strong), (aug[index]["image"], weak)):
            torch.testing.assert_close(got, ((apply_strong(crop[None], draws).float() - mean) / std)[0])
    for views, expected in (({"strong_view": True}, two), ({"aug": True}, aug)):
        with_workers = by_index(2, **views)
        for index, images in expected.items():
            for key, image in images.items():
                torch.testing.assert_close(with_workers[index][key], image)
