"""CIFAR-100 from its python-format files (``cifar-100-python/{train,test}``), downloaded when allowed."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dskd_core.data.types import TensorDataset
from dskd_core.errors import DatasetNotFound

FOLDER = "cifar-100-python"


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


def load_cifar100(data_dir: Path, download: bool) -> tuple[TensorDataset, TensorDataset]:
    """``(train, test)`` from ``<data_dir>/cifar-100-python/``, downloading it first when missing and allowed."""
    folder = data_dir / FOLDER
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
