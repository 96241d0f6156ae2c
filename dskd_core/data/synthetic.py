"""synthetic: random images of 100 classes, for tests (the same every call)."""

from __future__ import annotations

from pathlib import Path

import torch

from dskd_core.data.types import TensorDataset

SYNTHETIC_CLASSES = 100
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 256, 128


def load_synthetic(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    """``(train, test)`` of uniform random 32×32 images and labels, from a fixed seed."""
    gen = torch.Generator().manual_seed(1234)

    def split(n: int) -> TensorDataset:
        labels = torch.randint(0, SYNTHETIC_CLASSES, (n,), generator=gen)
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
        return TensorDataset(images, labels)

    return split(SYNTHETIC_TRAIN), split(SYNTHETIC_TEST)
