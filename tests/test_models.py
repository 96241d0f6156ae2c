"""The CIFAR model zoo: every registered model keeps the forward contract and upstream's layout."""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
import torch
from torch import nn

from dskd_core.errors import UnknownNameError, UsageError
from dskd_core.models import ZooModel, create_model, list_models, register_model

# Parameter counts at num_classes=100, counted on the reference architectures
# (megvii-research/mdistiller mdistiller/models/cifar/*.py), not on ours.
EXPECTED_PARAMS = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "vgg11": 9_277_284,
    "vgg13": 9_462_180,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
    "MobileNetV2": 812_836,
    "ShuffleV1": 949_258,
    "ShuffleV2": 1_355_528,
    "ResNet18": 11_220_132,
    "ResNet34": 21_328_292,
    "ResNet50": 23_705_252,
}

# sha256[:16] of the sorted "key:shape" lines of the reference models' state dicts (num_classes=100):
# any renamed, missing or reshaped tensor would stop the published checkpoints loading strictly.
EXPECTED_LAYOUT = {
    "resnet8": "166d31a811b31c5f",
    "resnet14": "8525efa6fc491f19",
    "resnet20": "6db44f39e3bff21f",
    "resnet32": "325ee6108709f7b5",
    "resnet44": "f1263f7b0ed71e1a",
    "resnet56": "3977b81559d8630f",
    "resnet110": "7f8e5ac1814e480a",
    "resnet8x4": "5d5871b403f3a649",
    "resnet32x4": "610ad29043c56b33",
    "wrn_16_1": "f6cf46040022f13d",
    "wrn_16_2": "bdbc50a2b3205f84",
    "wrn_40_1": "deef22602ae7584b",
    "wrn_40_2": "bf5731c8e8e2b95f",
    "vgg8": "d9f8d7533423754e",
    "vgg11": "6592bd1869a5938f",
    "vgg13": "7bec65f1ca17a0bf",
    "vgg16": "b420ddff7e4306ec",
    "vgg19": "2d318270df30c723",
    "MobileNetV2": "10e9036e17013c38",
    "ShuffleV1": "eb3bcbc847930cce",
    "ShuffleV2": "b7e2c3e764687767",
    "ResNet18": "bb5021dad9541605",
    "ResNet34": "64e124f1c2f737af",
    "ResNet50": "d4a9e0738c8f8385",
}

# Readable spot checks of upstream names that are easy to get wrong.
CHECKPOINT_KEYS = {
    "resnet32x4": "layer1.0.downsample.0.weight",
    "wrn_40_2": "block1.layer.0.convShortcut.weight",
    "vgg13": "block4.3.weight",
    "MobileNetV2": "classifier.0.weight",
    "ShuffleV1": "layer1.0.conv3.weight",
    "ShuffleV2": "layer3.0.conv5.weight",
    "ResNet50": "layer4.0.shortcut.1.running_var",
}

FEATURE_KEYS = {"feats", "preact_feats", "pooled_feat", "final_map"}


@cache
def built(name: str) -> ZooModel:
    """One seeded instance per name, shared by the tests that only read it."""
    torch.manual_seed(0)
    return create_model(name)


def layout_digest(model: nn.Module) -> str:
    lines = (f"{k}:{tuple(v.shape)}" for k, v in sorted(model.state_dict().items()))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def test_registry_lists_every_model_sorted() -> None:
    from dskd_core.errors import natural_key

    assert list_models() == sorted(EXPECTED_PARAMS, key=natural_key)
    assert len(list_models()) == 24


@pytest.mark.parametrize("name", list_models())
def test_parameter_count_matches_reference(name: str) -> None:
    assert sum(p.numel() for p in built(name).parameters()) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", list_models())
def test_state_dict_layout_matches_reference(name: str) -> None:
    model = built(name)
    assert layout_digest(model) == EXPECTED_LAYOUT[name]
    if name in CHECKPOINT_KEYS:
        assert CHECKPOINT_KEYS[name] in model.state_dict()


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list_models())
def test_forward_contract(name: str, train: bool) -> None:
    model = built(name).train(train)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, feats = model(x)
        classifier_logits = model.get_classifier()(feats["pooled_feat"])

    assert logits.shape == (2, 100)
    assert set(feats) == FEATURE_KEYS
    assert [f.shape[1] for f in feats["feats"]] == model.get_stage_channels()
    assert [f.shape for f in feats["preact_feats"]] == [f.shape for f in feats["feats"]]
    final_map, pooled = feats["final_map"], feats["pooled_feat"]
    assert final_map.ndim == 4 and pooled.shape == final_map.shape[:2]
    scale = pooled.abs().max().item()  # deep nets in eval mode at init reach large activations
    torch.testing.assert_close(final_map.mean((2, 3)), pooled, rtol=1e-5, atol=1e-6 * scale)
    torch.testing.assert_close(classifier_logits, logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", list_models())
def test_num_classes_sets_the_classifier(name: str) -> None:
    classifier = create_model(name, num_classes=10).get_classifier()
    assert isinstance(classifier, nn.Linear)
    assert classifier.out_features == 10
    assert classifier.in_features == built(name).get_classifier().in_features


def test_duplicate_registration_raises() -> None:
    before = list_models()
    with pytest.raises(UsageError, match="resnet8"):
        register_model("resnet8")(lambda num_classes=100: built("resnet8"))
    assert list_models() == before


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="resnet32x4") as info:
        create_model("resnet32x5")
    assert isinstance(info.value, KeyError)


@pytest.mark.parametrize(("name", "zoo"), [("resnet8x5", "cifar"), ("resnet8x5", "imagenet"), ("MobileNetV3", "cifar")])
def test_a_typo_suggests_its_zoos_names_first_then_the_other_zoos(name: str, zoo: str) -> None:
    """Same-zoo names rank first (each zoo's by closeness); the other zoo's follow, so a CIFAR typo made on
    imagenet still offers the CIFAR net after the ImageNet ones. The message keeps its one-line form."""
    with pytest.raises(UnknownNameError) as info:
        create_model(name, zoo=zoo)
    close = info.value.close_matches
    own = set(list_models(zoo))
    ranks = [0 if m in own else 1 for m in close]
    assert close and ranks == sorted(ranks), close
    assert str(info.value) == f"unknown model '{name}': did you mean {', '.join(close)}?"
    if zoo == "imagenet":
        assert close[:2] == ["ResNet50", "ResNet18"] and "resnet8x4" in close
    if name == "MobileNetV3":  # the ImageNet MobileNetV1, after the CIFAR names it is closest to
        assert close[0] == "MobileNetV2" and close[-1] == "MobileNetV1"


def test_model_names_are_listed_in_natural_order() -> None:
    from dskd_core.models import list_models

    names = list_models()
    assert names.index("resnet8") < names.index("resnet8x4") < names.index("resnet14") < names.index("resnet110")
    assert names.index("vgg8") < names.index("vgg11") and names.index("wrn_16_2") < names.index("wrn_40_1")
