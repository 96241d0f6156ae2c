"""The data package's types: a split in memory or on disk, a dataset's spec, a loader.

A leaf (``shard.py`` aside): the readers (``cifar.py``, ``digits.py``, ``synthetic.py``, ``imagefolder.py``), the
loaders (``loader.py``, ``imagefolder.py``) and the table of datasets (``registry.py``) all
import from here, and this imports nothing from them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from dskd_core.data.shard import Shard


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


@dataclass(frozen=True, eq=False)
class ImageFolderSplit:
    """One split of an ImageFolder tree: class names, relative file paths and labels."""

    root: Path  # the split folder
    classes: tuple[str, ...]
    paths: np.ndarray  # (N,) bytes, relative to root: one array, not N Python strings, in every worker
    labels: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, index: int) -> Path:
        return self.root / os.fsdecode(bytes(self.paths[index]))


#: One split of a dataset: in memory (uint8 tensors) or an ImageFolder tree read by workers.
Split = TensorDataset | ImageFolderSplit

#: ``reader(data_dir, download) -> (train, test)``: how a dataset's splits are read (or fetched).
Reader = Callable[[Path, bool], tuple[Split, Split]]

#: ``extra(index (B,), epoch_generator) -> Tensor``: a per-batch value a method asked for (CRD's contrast indices).
BatchExtra = Callable[[Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class MethodRecipe:
    """What a method takes on one dataset beyond its own defaults: ``values`` always, ``stand`` with ``--stand``.

    Both sit under presets, ``--config``, flags and ``--set``: a value given there wins.
    """

    values: dict[str, Any] = field(default_factory=dict)
    stand: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its classes, normalisation, flip rule, reader, recipe and zoo."""

    name: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Whether training images are mirrored at random (not for glyphs, whose mirror images are other glyphs).
    hflip: bool
    #: Reads the ``(train, test)`` splits (``registry.load_dataset`` calls it).
    loader: Reader
    #: The solver recipe layered under the method defaults (see ``resolve.dataset_recipe``).
    recipe: dict[str, Any] = field(default_factory=dict)
    #: Per method, values layered over that method's defaults on this dataset (under presets and flags).
    method_recipes: dict[str, MethodRecipe] = field(default_factory=dict)
    #: The model zoo whose architectures fit the images (``cifar``: 32×32; ``imagenet``: torchvision's).
    zoo: str = "cifar"
    #: Whether the crop size is a choice (``--image-size``); in-memory datasets have a fixed size.
    resizable: bool = False
    #: Whether dskd can download the dataset itself; ``False`` (ImageNet's ImageFolder) means it must
    #: already be in ``--data-dir``.
    downloadable: bool = True


@dataclass(frozen=True)
class LoaderOptions:
    """How a loader batches a split, besides the split, its spec and the batch size.

    ``train``: shuffled and augmented (the order and augmentation of epoch ``e`` a function of
    ``(seed, e)``), else in order. ``aug``: the training view also gets the strong augmentation
    (:func:`dskd_core.data.strong_augment`, DSKD's ``--aug``) after the crop and flip.
    ``strong_view``: every training batch also holds ``image_strong``, an independent crop and flip
    of the same images followed by the strong augmentation (MLKD's two views). ``extras``: one
    more batch key per entry (a method's :meth:`batch_extras`). ``shard``: this process's share of
    every epoch. ``passes`` applies to in-memory splits (shuffled passes per training epoch);
    ``image_size`` (None: 224), ``workers`` and ``pin_memory`` to ImageFolder splits.
    """

    train: bool
    device: torch.device
    seed: int = 0
    aug: bool = False
    strong_view: bool = False
    extras: Mapping[str, BatchExtra] | None = None
    passes: int = 1
    channels_last: bool = False
    shard: Shard = field(default_factory=Shard)
    image_size: int | None = None
    workers: int = 0
    pin_memory: bool = False


class Loader(Protocol):
    """What training and evaluation ask of a loader (``BatchLoader``, ``ImageFolderLoader``).

    ``set_epoch(e)`` before iterating epoch ``e``; ``len()`` batches; iteration yields
    ``{"image", "target", "index"}`` batches (plus ``image_strong`` for a two-view loader and one
    key per requested extra) on the device.
    """

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[dict[str, Tensor]]: ...
