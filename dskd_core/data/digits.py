"""digits: 1,797 8×8 handwritten digits (UCI), embedded so the quickstart runs offline."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from dskd_core.data.types import TensorDataset
from dskd_core.errors import DatasetNotFound

DIGITS_SHA256 = "68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2"
DIGITS_TEST_EVERY = 5  # every 5th image of each class goes to the test split (stratified, fixed)


def load_digits_arrays() -> tuple[Tensor, Tensor]:
    """The embedded digits: pixels ``(1797, 8, 8)`` uint8 in 0..16 and labels ``(1797,)``."""
    raw = gzip.decompress(resources.files("dskd_core.data").joinpath("digits.u8.gz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != DIGITS_SHA256:
        raise DatasetNotFound("the embedded digits data is corrupted: reinstall dskd")
    rows = torch.frombuffer(bytearray(raw), dtype=torch.uint8).reshape(-1, 65)
    return rows[:, :64].reshape(-1, 8, 8).clone(), rows[:, 64].long()


def load_digits(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    """``(train, test)`` of the embedded digits as 32×32 RGB (``data_dir`` and ``download`` are unused)."""
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
