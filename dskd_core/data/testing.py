"""Stand-in dataset files for tests and benchmarks, where the real ones cannot be fetched."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_fake_cifar100(folder: Path, n_train: int = 20, n_test: int = 10, *, protocol: int = 2) -> None:
    """CIFAR-100 python-format ``train``/``test`` files of random images and labels in ``folder`` (created).

    ``protocol`` is the pickle protocol: 2 as in the published files, 4 writes large sets faster.
    """
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        entry = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "fine_labels": rng.integers(0, 100, n).tolist(),
            "coarse_labels": [0] * n,
            "filenames": [f"{i}.png" for i in range(n)],
            "batch_label": split,
        }
        (folder / split).write_bytes(pickle.dumps(entry, protocol=protocol))
