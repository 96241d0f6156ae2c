"""Datasets held in memory as uint8 tensors, with batched augmentation on the training device.

Every dataset here is small enough to keep whole (CIFAR-100 is 150 MB as uint8): batches are
sliced from one tensor and augmented in one shot (random crop with zero padding 4, optional
horizontal flip, normalisation), which is faster than per-image PIL transforms and makes the
data order a pure function of (seed, epoch), so a resumed run sees exactly the same batches.
"""

from __future__ import annotations

from dskd_core.data.loader import BatchLoader, augment_batch
from dskd_core.data.registry import DatasetSpec, TensorDataset, get_dataset_spec, list_datasets, load_dataset

__all__ = [
    "BatchLoader",
    "DatasetSpec",
    "TensorDataset",
    "augment_batch",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
]
