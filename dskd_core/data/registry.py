"""The table of datasets: CIFAR-100 (downloaded), ImageNet (ImageFolder on disk), digits (embedded, offline), synthetic.

Each entry names its reader (``cifar.py``, ``imagefolder.py``, ``digits.py``, ``synthetic.py``),
its normalisation, whether training images are mirrored, and the solver recipe layered under
the method defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dskd_core.data.cifar import load_cifar100
from dskd_core.data.digits import load_digits
from dskd_core.data.imagefolder import load_imagefolder
from dskd_core.data.synthetic import SYNTHETIC_CLASSES, load_synthetic
from dskd_core.data.types import DatasetSpec, MethodRecipe, Split
from dskd_core.errors import UnknownNameError

CIFAR_RECIPE: dict[str, Any] = {
    "epochs": 240,
    "batch_size": 64,
    "test_batch_size": 64,
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "lr_decay_epochs": [150, 180, 210],
    "lr_decay_rate": 0.1,
}
#: Sized for a 2-core CPU: 1,437 training images are 23 steps at batch 64, too few for a
#: network from scratch to learn anything in an epoch, so a digits epoch is 8 shuffled passes
#: (180 steps), and the LR follows a per-step cosine to 0 over the run, so that the weights at
#: the end of even a one-epoch run have settled (with a constant LR the test accuracy of the last
#: step swings by tens of points between seeds). The quickstart's three runs are one epoch each.
DIGITS_RECIPE: dict[str, Any] = {**CIFAR_RECIPE, "epochs": 1, "lr_schedule": "cosine", "epoch_passes": 8}
#: MLKD on digits. Its class-correlation term grows as (B/K)², so with 10 classes it is ~100× its
#: CIFAR-100 size, and its five temperatures weigh KD ~20× one KD term: at the digits LR 0.05 plain
#: MLKD's loss hardly falls in the one-epoch recipe (LR 0.01 trains it). With --stand (KD weight 9) the
#: student's logits blow up within its first steps (their scale is free to grow, since the standardized
#: KD terms ignore it) until CC and BC saturate on the raw logits and the student stops learning;
#: clipping the gradient norm at 1 keeps it learning in the one-epoch recipe. ``--lr`` and
#: ``--clip-grad`` (``--set clip_grad=null``: none) override both; CIFAR-100 and ImageNet keep the
#: reference's values.
DIGITS_MLKD = MethodRecipe(values={"lr": 0.01}, stand={"clip_grad": 1.0})
#: DKD, RLD and ReviewKD ramp their distillation term over their first 20 epochs (of CIFAR-100's 240); in the
#: one-epoch digits recipe that ramp would leave 1/20 of the term for the whole run, so digits has none
#: (``--set warmup=N`` still sets one).
DIGITS_NO_RAMP = MethodRecipe(values={"warmup": 0})
SYNTHETIC_RECIPE: dict[str, Any] = {**CIFAR_RECIPE, "epochs": 2, "lr_decay_epochs": [1]}
#: mdistiller's ImageNet solver (mdistiller/configs/imagenet/r34_r18/kd.yaml): batch 512, LR 0.2,
#: 100 epochs, ×0.1 at 30/60/90, WD 1e-4, test batch 128.
IMAGENET_RECIPE: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 512,
    "test_batch_size": 128,
    "lr": 0.2,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "lr_decay_epochs": [30, 60, 90],
    "lr_decay_rate": 0.1,
    "image_size": 224,
}

_DATASETS: dict[str, DatasetSpec] = {
    "cifar100": DatasetSpec(
        name="cifar100",
        num_classes=100,
        mean=(0.5071, 0.4867, 0.4408),
        std=(0.2675, 0.2565, 0.2761),
        hflip=True,
        loader=load_cifar100,
        recipe=CIFAR_RECIPE,
    ),
    # The class count is the folder's (a subset trains as is; --num-classes pins it), 1000 for ILSVRC-2012.
    "imagenet": DatasetSpec(
        name="imagenet",
        num_classes=1000,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        hflip=True,
        loader=load_imagefolder,
        recipe=IMAGENET_RECIPE,
        zoo="imagenet",
        downloadable=False,
        resizable=True,
    ),
    # Mirrored digits are other glyphs, so no flip; mean/std of the rendered training images.
    "digits": DatasetSpec(
        name="digits",
        num_classes=10,
        mean=(0.3054,) * 3,
        std=(0.3239,) * 3,
        hflip=False,
        loader=load_digits,
        recipe=DIGITS_RECIPE,
        method_recipes={
            "mlkd": DIGITS_MLKD,
            "mlkd_noaug": DIGITS_MLKD,
            "dkd": DIGITS_NO_RAMP,
            "rld": DIGITS_NO_RAMP,
            "reviewkd": DIGITS_NO_RAMP,
        },
    ),
    "synthetic": DatasetSpec(
        name="synthetic",
        num_classes=SYNTHETIC_CLASSES,
        mean=(0.5, 0.5, 0.5),
        std=(0.29, 0.29, 0.29),
        hflip=True,
        loader=load_synthetic,
        recipe=SYNTHETIC_RECIPE,
    ),
}


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return _DATASETS[name]
    except KeyError:
        raise UnknownNameError("dataset", name, _DATASETS) from None


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(name: str, data_dir: Path, download: bool = True) -> tuple[Split, Split]:
    """``(train, test)`` splits of a registered dataset (ImageNet: its checked ImageFolder tree)."""
    spec = get_dataset_spec(name)
    return spec.loader(Path(data_dir), download)
