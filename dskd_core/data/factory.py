"""The loaders of a run: in-memory batches or ImageFolder workers, sharded over processes.

``make_loader`` picks the loader that fits a split (a :class:`TensorDataset` is sliced and
augmented on the device; an :class:`ImageFolderSplit` is decoded by DataLoader workers); both
yield ``{"image", "target", "index"}`` batches and shard an epoch the way ``DistributedSampler``
does. ``run_loaders`` builds a run's pair from its config and settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from dskd_core.data.imagefolder import ImageFolderLoader, check_class_count
from dskd_core.data.loader import BatchLoader
from dskd_core.data.shard import Shard
from dskd_core.data.types import BatchExtra, DatasetSpec, ImageFolderSplit, Loader, LoaderOptions, Split, TensorDataset
from dskd_core.device import available_cores
from dskd_core.errors import UsageError

if TYPE_CHECKING:
    from dskd_core.config import RunConfig, Settings

#: Workers per process when the setting is ``auto`` never exceed this (mdistiller uses 32 on 8 GPUs).
MAX_AUTO_WORKERS = 16


def fitted_spec(spec: DatasetSpec, train: Split, num_classes: int | None) -> DatasetSpec:
    """The spec with the class count of the data at hand, refused when ``num_classes`` says otherwise.

    ImageNet's count is its folder's (a subset is allowed); the in-memory datasets have a fixed one.
    """
    if isinstance(train, ImageFolderSplit):
        return replace(spec, num_classes=check_class_count(train, num_classes))
    if num_classes is not None and num_classes != spec.num_classes:
        raise UsageError(f"{spec.name} has {spec.num_classes} classes, not {num_classes}: drop --num-classes")
    return spec


def auto_workers(local_world_size: int = 1) -> int:
    """Decoding workers per process: the cores this process may use shared by its processes, one left for each."""
    cores = available_cores()
    return max(0, min(MAX_AUTO_WORKERS, cores // max(local_world_size, 1) - 1))


def make_loader(data: Split, spec: DatasetSpec, batch_size: int, options: LoaderOptions) -> Loader:
    """The loader for ``data``: one rank's share of every epoch when ``options.shard`` spans several processes."""
    if isinstance(data, ImageFolderSplit):
        return ImageFolderLoader(data, spec, batch_size, options)
    assert isinstance(data, TensorDataset)
    return BatchLoader(data, spec, batch_size, options)


def run_loaders(
    cfg: RunConfig,
    settings: Settings,
    spec: DatasetSpec,
    data: tuple[Split, Split],
    device: torch.device,
    *,
    shard: Shard | None = None,
    extras: Mapping[str, BatchExtra] | None = None,
    channels_last: bool = False,
    test_batch_size: int | None = None,
    strong_view: bool = False,
) -> tuple[Loader, Loader]:
    """``(train, test)`` loaders of a run: its batch sizes, seed, augmentation, crop size and workers.

    ``strong_view``: training batches carry a second, strongly augmented view (a method's
    ``strong_view``, e.g. MLKD's).
    """
    shard = shard or Shard()
    workers = settings.workers if settings.workers is not None else auto_workers(shard.local_world_size)

    def options(train: bool) -> LoaderOptions:
        return LoaderOptions(
            train=train,
            device=device,
            seed=cfg.seed,
            aug=cfg.aug and train,
            strong_view=strong_view and train,
            extras=extras if train else None,
            passes=cfg.epoch_passes if train else 1,
            channels_last=channels_last,
            shard=shard,
            image_size=cfg.image_size,
            workers=workers,
            pin_memory=settings.pin_memory,
        )

    return (
        make_loader(data[0], spec, cfg.batch_size, options(True)),
        make_loader(data[1], spec, test_batch_size or cfg.test_batch_size, options(False)),
    )
