"""Dataset registry: CIFAR-100 (downloaded), ImageNet (ImageFolder on disk), digits (embedded, offline), synthetic."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dskd_core.data.imagefolder import ImageFolderSplit, load_imagefolder
from dskd_core.errors import DatasetNotFound, UnknownNameError


@dataclass(frozen=True)
class TensorDataset:
    """Images ``(N, 3, H, W)`` uint8 and labels ``(N,)`` int64 of one split."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be (N,) and match the images")

    def __len__(self) -> int:
        return int(self.images.shape[0])


#: One split of a dataset: in memory (uint8 tensors) or an ImageFolder tree read by workers.
Split = TensorDataset | ImageFolderSplit


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hflip: bool
    loader: Callable[[Path, bool], tuple[Split, Split]]
    #: The solver recipe layered under the method defaults (see ``config.dataset_recipe``).
    recipe: dict[str, Any] = field(default_factory=dict)
    #: The model zoo whose architectures fit the images (``cifar``: 32×32; ``imagenet``: torchvision's).
    zoo: str = "cifar"
    #: Whether the crop size is a choice (``--image-size``); in-memory datasets have a fixed size.
    resizable: bool = False
    #: Whether dskd can download the dataset itself; ``False`` (ImageNet's ImageFolder) means it must
    #: already be in ``--data-dir``.
    downloadable: bool = True


# ---------------------------------------------------------------------------------------------
# CIFAR-100


class _CifarUnpickler(pickle.Unpickler):
    """The CIFAR python files are pickles: allow only what they hold (dicts, lists, numpy arrays)."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file")


def _read_cifar_split(path: Path) -> TensorDataset:
    with path.open("rb") as handle:
        entry = _CifarUnpickler(handle, encoding="latin1").load()
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    return TensorDataset(torch.from_numpy(data.copy()), torch.from_numpy(labels))


def _load_cifar100(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    folder = data_dir / "cifar-100-python"
    if not (folder / "train").is_file() or not (folder / "test").is_file():
        if not download:
            raise DatasetNotFound(
                f"CIFAR-100 not found: put cifar-100-python/ under {data_dir}/ or allow downloads "
                "(unset DSKD_DOWNLOAD=0)"
            )
        _download_cifar100(data_dir)
    try:
        return _read_cifar_split(folder / "train"), _read_cifar_split(folder / "test")
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
        raise DatasetNotFound(
            f"CIFAR-100 files under {folder} are unreadable ({err}): delete the folder and re-run "
            "to download them again"
        ) from None


def _download_cifar100(data_dir: Path) -> None:
    from torchvision.datasets import CIFAR100
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(CIFAR100.url, str(data_dir), filename=CIFAR100.filename, md5=CIFAR100.tgz_md5)
    except Exception as err:  # network errors come in many types; the message is what matters
        raise DatasetNotFound(
            f"CIFAR-100 not found under {data_dir}/ and the download failed ({type(err).__name__}): "
            f"put cifar-100-python/ under {data_dir}/ (from {CIFAR100.url}) or pass --data-dir"
        ) from None


# ---------------------------------------------------------------------------------------------
# digits: 1,797 8×8 handwritten digits (UCI), embedded so the quickstart runs offline

DIGITS_SHA256 = "68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2"
DIGITS_TEST_EVERY = 5  # every 5th image of each class goes to the test split (stratified, fixed)


def load_digits_arrays() -> tuple[Tensor, Tensor]:
    """The embedded digits: pixels ``(1797, 8, 8)`` uint8 in 0..16 and labels ``(1797,)``."""
    raw = gzip.decompress(resources.files("dskd_core.data").joinpath("digits.u8.gz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != DIGITS_SHA256:
        raise DatasetNotFound("the embedded digits data is corrupted: reinstall dskd")
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(-1, 65)
    return rows[:, :64].reshape(-1, 8, 8).clone(), rows[:, 64].long()


def _load_digits(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    pixels, labels = load_digits_arrays()
    # 8×8 in 0..16 -> 32×32 in 0..255, grey replicated to 3 channels (bilinear keeps strokes smooth).
    images = F.interpolate(pixels[:, None].float() * (255.0 / 16.0), size=32, mode="bilinear", align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for cls in range(10):
        test_mask[(labels == cls).nonzero().flatten()[::DIGITS_TEST_EVERY]] = True
    train = TensorDataset(images[~test_mask], labels[~test_mask])
    test = TensorDataset(images[test_mask], labels[test_mask])
    return train, test


# ---------------------------------------------------------------------------------------------
# synthetic: random images, for tests

SYNTHETIC_CLASSES = 100
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 256, 128


def _load_synthetic(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    gen = torch.Generator().manual_seed(1234)

    def split(n: int) -> TensorDataset:
        labels = torch.randint(0, SYNTHETIC_CLASSES, (n,), generator=gen)
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
        return TensorDataset(images, labels)

    return split(SYNTHETIC_TRAIN), split(SYNTHETIC_TEST)


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
SYNTHETIC_RECIPE: dict[str, Any] = {**CIFAR_RECIPE, "epochs": 2, "lr_decay_epochs": [1]}
#: mdistiller's ImageNet solver (method-spec §4.3): batch 512, LR 0.2, 100 epochs, ×0.1 at 30/60/90, WD 1e-4.
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
        "cifar100", 100, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), True, _load_cifar100, CIFAR_RECIPE
    ),
    # The class count is the folder's (a subset trains as is; --num-classes pins it), 1000 for ILSVRC-2012.
    "imagenet": DatasetSpec(
        "imagenet",
        1000,
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        True,
        load_imagefolder,
        IMAGENET_RECIPE,
        zoo="imagenet",
        resizable=True,
        downloadable=False,
    ),
    # Mirrored digits are other glyphs, so no flip; mean/std of the rendered training images.
    "digits": DatasetSpec("digits", 10, (0.3054,) * 3, (0.3239,) * 3, False, _load_digits, DIGITS_RECIPE),
    "synthetic": DatasetSpec(
        "synthetic", SYNTHETIC_CLASSES, (0.5, 0.5, 0.5), (0.29, 0.29, 0.29), True, _load_synthetic, SYNTHETIC_RECIPE
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
