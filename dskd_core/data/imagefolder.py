"""ImageNet in ImageFolder layout: checked before training, decoded by DataLoader workers.

``<data-dir>/imagenet/{train,val}/<class>/<image>`` (or ``<data-dir>/{train,val}`` directly), as
torchvision's ``ImageFolder`` and mdistiller read it. The layout is checked once, up front, with
one-line errors: a missing split, validation images not sorted into class folders, class lists
of train and val that differ, an empty class, too few classes. Class indices are the sorted
folder names (``ImageFolder``'s rule, so torchvision's label order for ILSVRC-2012 synsets).

Transforms are the standard ones (mdistiller/dataset/imagenet.py): RandomResizedCrop + horizontal flip for
training, Resize(size · 256/224) + CenterCrop for evaluation, at ``image_size`` (224 unless
``--image-size`` says otherwise). Workers return uint8 tensors; the strong augmentation (``--aug``,
MLKD's strong view) and normalisation happen on the training device. Each training sample's
augmentation (crops, flips, strong draws) is drawn from generators seeded by (seed, epoch,
sample index), so it is the same for any number of workers or processes and a resumed run sees
the same crops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dskd_core.data.shard import ShardSampler, stream_seed
from dskd_core.data.strong import StrongDraws, apply_strong, draw_strong
from dskd_core.data.types import DatasetSpec, ImageFolderSplit, LoaderOptions
from dskd_core.errors import DatasetNotFound

#: torchvision's ``IMG_EXTENSIONS``.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLITS = ("train", "val")
FOLDER = "imagenet"
#: The short side an evaluation image is resized to, relative to the crop (256 for 224).
RESIZE_RATIO = 256 / 224
#: Tags a sample's stream of strong-augmentation draws, apart from its crop and flip stream.
STRONG_STREAM = 0x57A0


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scan_split(folder: Path, split: str) -> ImageFolderSplit:
    """The images of ``folder`` (``<class>/<image>``, any depth below the class), checked."""
    with os.scandir(folder) as entries:
        items = sorted(entries, key=lambda e: e.name)
    classes = [e.name for e in items if e.is_dir() and not e.name.startswith(".")]
    loose = [e.name for e in items if e.is_file() and _is_image(e.name)]
    if loose:
        hint = " (e.g. with the ILSVRC2012 validation labels and valprep.sh)" if split == "val" else ""
        raise DatasetNotFound(
            f"{folder} holds {len(loose)} images directly (e.g. {loose[0]}) instead of class folders: sort them "
            f"into {split}/<class>/{hint}"
        )
    if not classes:
        raise DatasetNotFound(f"{folder} has no class folders: put the {split} images in {split}/<class>/<image>")
    paths: list[bytes] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            os.fsencode(os.path.relpath(os.path.join(top, f), folder))
            for top, _, files in os.walk(folder / name, followlinks=True)
            for f in files
            if _is_image(f)
        )
        if not found:
            raise DatasetNotFound(
                f"class folder {folder / name} holds no images ({', '.join(IMAGE_EXTENSIONS)}): add its images or "
                "remove the folder from both splits"
            )
        paths += found
        labels += [label] * len(found)
    return ImageFolderSplit(folder, tuple(classes), np.array(paths, dtype=np.bytes_), torch.tensor(labels))


def imagenet_root(data_dir: Path) -> Path:
    """``<data-dir>/imagenet`` when it exists, else ``<data-dir>`` when it holds a split folder."""
    nested = data_dir / FOLDER
    if nested.is_dir() or not any((data_dir / s).is_dir() for s in SPLITS):
        return nested
    return data_dir


def load_imagefolder(data_dir: Path, download: bool = False) -> tuple[ImageFolderSplit, ImageFolderSplit]:
    """``(train, val)`` of the ImageNet tree under ``data_dir``, after the layout checks."""
    root = imagenet_root(Path(data_dir))
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if len(missing) == len(SPLITS):
        raise DatasetNotFound(
            f"ImageNet not found: put train/ and val/ in ImageFolder layout (train/<class>/<image>.JPEG) under "
            f"{root}/, or pass --data-dir (it cannot be downloaded)"
        )
    if missing:
        raise DatasetNotFound(
            f"ImageNet split {root / missing[0]} is missing: put the {missing[0]} images in {missing[0]}/<class>/ "
            f"beside {SPLITS[1 - SPLITS.index(missing[0])]}/"
        )
    train, val = scan_split(root / "train", "train"), scan_split(root / "val", "val")
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))
        only_val = sorted(set(val.classes) - set(train.classes))
        parts = [f"{len(v)} only in {k}/ (e.g. {v[0]})" for k, v in (("train", only_train), ("val", only_val)) if v]
        raise DatasetNotFound(
            f"train/ and val/ under {root} have different class folders ({'; '.join(parts)}): give both splits the "
            "same classes"
        )
    if len(train.classes) < 2:
        raise DatasetNotFound(f"{root} has {len(train.classes)} class: a classifier needs at least 2 class folders")
    return train, val


def check_class_count(split: ImageFolderSplit, expected: int | None) -> int:
    """The split's class count, refused when a count was asked for (``--num-classes``) and differs."""
    found = len(split.classes)
    if expected is not None and expected != found:
        raise DatasetNotFound(
            f"{split.root.parent} has {found} classes, but --num-classes is {expected}: point --data-dir at the "
            f"full set, or pass --num-classes {found}"
        )
    return found


#: Batch keys of the strong draws that travel from the workers with their view.
_DRAWS = {"image": "draws_image", "image_strong": "draws_image_strong"}


class _Images(Dataset[dict[str, Any]]):
    """Decoded, transformed images of a split as ``{"image": uint8 (3, S, S), "target", "index", …}``.

    For training, ``strong_view`` adds ``image_strong`` (a second crop and flip of the same decoded
    image) and ``aug`` the strong augmentation's draws of the first view; both are drawn from the
    sample's own (seed, epoch, index) stream. The strong augmentation itself is applied to the
    batch on the training device (:func:`~dskd_core.data.strong.apply_strong`).
    """

    def __init__(
        self, split: ImageFolderSplit, transform: Any, seed: int | None, *, aug: bool = False, strong_view: bool = False
    ) -> None:
        self.split, self.transform, self.seed = split, transform, seed
        self.aug, self.strong_view = aug and seed is not None, strong_view and seed is not None
        self.epoch = 1

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from PIL import Image

        path = self.split.path(index)
        try:
            with Image.open(path) as raw:
                image = raw.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise DatasetNotFound(f"cannot read {path} ({type(err).__name__}): replace or remove that file") from None
        item: dict[str, Any] = {"target": int(self.split.labels[index]), "index": index}
        if self.seed is None:
            item["image"] = self.transform(image)
            return item
        # torchvision's transforms draw from the global RNG: seed a forked one per sample.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, self.epoch, index))
            item["image"] = self.transform(image)
            if self.strong_view:
                item["image_strong"] = self.transform(image)
        draws = torch.Generator().manual_seed(stream_seed(self.seed, self.epoch, index, STRONG_STREAM))
        if self.strong_view:
            item[_DRAWS["image_strong"]] = draw_strong(1, draws).pack()[0]
        if self.aug:
            item[_DRAWS["image"]] = draw_strong(1, draws).pack()[0]
        return item


def build_transform(image_size: int, *, train: bool) -> Any:
    """RandomResizedCrop + flip for training; Resize(size · 256/224) + CenterCrop otherwise."""
    from torchvision import transforms as T

    if train:
        steps = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(round(image_size * RESIZE_RATIO)), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.PILToTensor()])


class ImageFolderLoader:
    """``{"image", "target", "index"}`` batches of an :class:`ImageFolderSplit`, like ``BatchLoader``'s.

    As ``options`` (:class:`LoaderOptions`) say: training batches follow ``DistributedSampler``
    (the (seed, epoch) permutation, padded and strided over the shard's ranks; one rank when not
    distributed); evaluation batches an unpadded shard. Images are decoded in ``workers``
    processes, pinned when ``pin_memory``, moved to ``device`` and normalised there
    (``channels_last``: in that memory layout).
    """

    def __init__(self, split: ImageFolderSplit, spec: DatasetSpec, batch_size: int, options: LoaderOptions) -> None:
        device, seed, train = options.device, options.seed, options.train
        rank, world_size = options.shard.rank, options.shard.world_size
        self.device, self.seed, self.rank, self.train = device, seed, rank, train
        self.channels_last = options.channels_last
        self.extras = dict(options.extras or {})
        self.epoch = 1
        image_size = options.image_size or 224
        transform = build_transform(image_size, train=train)
        self.dataset = _Images(
            split, transform, seed if train else None, aug=options.aug, strong_view=options.strong_view
        )
        # seed·1_000_003 + epoch: seeds 0 and 1 must not replay each other's orders an epoch apart.
        self.sampler: DistributedSampler[Any] | ShardSampler = (
            DistributedSampler(self.dataset, world_size, rank, shuffle=True, seed=seed * 1_000_003)
            if train
            else ShardSampler(len(split), rank, world_size)
        )
        # A last training batch of a single image is dropped (one image per epoch at most): BatchNorm
        # cannot normalise one sample whose final map is 1×1, as at small --image-size.
        self.loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=options.workers,
            pin_memory=options.pin_memory and device.type == "cuda",
            drop_last=train and len(self.sampler) % batch_size == 1,
        )
        self._mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = self.dataset.epoch = epoch
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(stream_seed(self.seed, self.epoch, self.rank))
        batches = iter(self.loader)
        while True:
            try:
                item = next(batches)
            except StopIteration:
                return
            except DatasetNotFound as err:  # from a worker it carries the worker's traceback: keep the message
                lines = str(err).strip().splitlines() or [""]
                raise DatasetNotFound(lines[-1].split(": ", 1)[-1] if len(lines) > 1 else lines[0]) from None
            index = item["index"]
            batch = {
                "target": item["target"].to(self.device, non_blocking=True),
                "index": index.to(self.device, non_blocking=True),
            }
            for key in ("image", "image_strong"):
                if key in item:
                    batch[key] = self._prepare(item[key], item.get(_DRAWS[key]))
            for key, extra in self.extras.items():
                batch[key] = extra(index, gen).to(self.device)
            yield batch

    def _prepare(self, images: Tensor, draws: Tensor | None) -> Tensor:
        """A uint8 view on the device: strongly augmented where its draws came along, then normalised."""
        images = images.to(self.device, non_blocking=True)
        if draws is not None:
            images = apply_strong(images, StrongDraws.unpack(draws))
        image = (images.float() - self._mean) / self._std
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return image
