"""Datasets: in memory as uint8 tensors with batched augmentation on the device, and ImageNet.

ImageNet (``imagefolder.py``) is read from its ImageFolder tree by DataLoader workers. Every
other dataset here is small enough to keep whole (CIFAR-100 is 150 MB as uint8): batches are
sliced from one tensor and augmented in one shot (random crop with zero padding 4, optional
horizontal flip, with ``--aug`` DSKD's strong augmentation (:func:`strong_augment`),
normalisation), which is faster than per-image PIL transforms and makes the data order a pure
function of (seed, epoch), so a resumed run sees exactly the same batches.
"""

from __future__ import annotations

from dskd_core.data.factory import fitted_spec, make_loader, run_loaders
from dskd_core.data.imagefolder import ImageFolderLoader
from dskd_core.data.loader import BatchLoader, augment_batch
from dskd_core.data.registry import get_dataset_spec, list_datasets, load_dataset
from dskd_core.data.shard import Shard
from dskd_core.data.strong import StrongDraws, apply_strong, draw_strong, strong_augment
from dskd_core.data.subset import per_class
from dskd_core.data.types import (
    BatchExtra,
    DatasetSpec,
    ImageFolderSplit,
    Loader,
    LoaderOptions,
    Split,
    TensorDataset,
)

__all__ = [
    "BatchExtra",
    "BatchLoader",
    "DatasetSpec",
    "ImageFolderLoader",
    "ImageFolderSplit",
    "Loader",
    "LoaderOptions",
    "Shard",
    "Split",
    "StrongDraws",
    "TensorDataset",
    "apply_strong",
    "augment_batch",
    "draw_strong",
    "fitted_spec",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "per_class",
    "run_loaders",
    "strong_augment",
]
