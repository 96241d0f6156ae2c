"""Batches from an in-memory uint8 dataset, shuffled and augmented as one tensor operation."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from dskd_core.data.shard import rank_generator, shard_length, shard_order
from dskd_core.data.strong import StrongDraws, apply_strong, draw_strong
from dskd_core.data.types import BatchExtra as BatchExtra  # re-exported: methods import it from here
from dskd_core.data.types import DatasetSpec, LoaderOptions, TensorDataset

PAD = 4

#: The loader prepares this many bytes of normalised batches at once (whole batches; at least one).
CHUNK_BYTES = 64 * 2**20


def draw_crop_flip(n: int, gen: torch.Generator, hflip: bool = True, pad: int = PAD) -> tuple[Tensor, Tensor, Tensor]:
    """Crop offsets ``dy, dx`` uniform in ``[0, 2·pad]`` and flip flags with p = 0.5 for ``n`` images."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool)
    return dy, dx, flip


def crop_flip(images: Tensor, dy: Tensor, dx: Tensor, flip: Tensor, pad: int = PAD) -> Tensor:
    """Crop each image of ``(B, C, H, W)`` at ``(dy, dx)`` of its zero-padded copy, mirrored where ``flip``.

    One gather on the images' device (the offsets must be there too); the flip is folded into
    the column index, so the whole augmentation is a handful of kernels for any batch size.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    cols_base = torch.arange(w, device=device)
    cols_base = torch.where(flip[:, None], cols_base.flip(0), cols_base)  # (B, W)
    rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # (B,1,H,1)
    cols = (dx[:, None] + cols_base)[:, None, None, :]  # (B,1,1,W)
    batch_idx = torch.arange(b, device=device)[:, None, None, None]
    chan_idx = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch_idx, chan_idx, rows, cols]


def augment_batch(images: Tensor, gen: torch.Generator, hflip: bool = True, pad: int = PAD) -> Tensor:
    """Random crop with zero padding ``pad`` and (optionally) a horizontal flip, per image.

    The same distribution as torchvision's ``RandomCrop(H, padding=pad)`` followed by
    ``RandomHorizontalFlip()``: offsets uniform in ``[0, 2·pad]`` on each axis, flip with p = 0.5,
    padding with zeros before normalisation. ``images``: ``(B, C, H, W)`` of any dtype, on any device.
    """
    dy, dx, flip = draw_crop_flip(len(images), gen, hflip, pad)
    return crop_flip(images, dy.to(images.device), dx.to(images.device), flip.to(images.device), pad)


class BatchLoader:
    """Iterate ``{"image", "target", "index"}`` batches of a :class:`TensorDataset`, as ``options`` say.

    With ``options.train`` the order and the augmentation of epoch ``e`` come from a generator
    seeded by ``(seed, e)`` alone: no loader state needs saving for an exact resume. ``extras``
    adds one key per entry, computed from the batch's dataset indices with that same generator
    (a distiller's :meth:`batch_extras`, e.g. CRD's ``contrast_index``). A training epoch is
    ``passes`` shuffled passes over the data (the ``epoch_passes`` of small datasets' recipes).
    ``options.aug`` adds the strong augmentation to the view after its crop and flip;
    ``options.strong_view`` adds ``image_strong``, a second crop and flip of the same images with
    the strong augmentation. The epoch's draws are made in a fixed order (order, crops and flips,
    the second view's crops, flips and strong draws, the view's own strong draws), so the first
    view of a two-view loader is the batch a one-view loader yields.
    The dataset is moved to ``device`` once; batches are gathered and augmented there.
    """

    def __init__(self, data: TensorDataset, spec: DatasetSpec, batch_size: int, options: LoaderOptions) -> None:
        self.data = data
        self.passes = options.passes
        self.channels_last = options.channels_last
        # Resident on the device for the whole run (CIFAR-100 is 150 MB as uint8): batches are gathers.
        self._images = data.images.to(options.device)
        self._labels = data.labels.to(options.device)
        self.rank, self.world_size = options.shard.rank, options.shard.world_size  # this process's share (shard.py)
        self.extras = dict(options.extras or {})
        self.spec = spec
        self.batch_size = batch_size
        self.train = options.train
        self.device = options.device
        self.seed = options.seed
        self.aug = options.aug and options.train
        self.strong_view = options.strong_view and options.train
        self.epoch = 1
        self._mean = torch.tensor(spec.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(spec.std, device=self.device).view(1, 3, 1, 1) * 255.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = shard_length(
            len(self.data) * (self.passes if self.train else 1), self.rank, self.world_size, pad=self.train
        )
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = len(self.data)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.train:  # every pass of the epoch a fresh permutation: each sample `passes` times
            order = torch.cat([torch.randperm(n, generator=gen) for _ in range(self.passes)])
        else:
            order = torch.arange(n)
        if self.world_size > 1:  # every rank drew the same order: keep this rank's share, augment on its own stream
            order = shard_order(order, self.rank, self.world_size, pad=self.train)
            gen = rank_generator(self.seed, self.epoch, self.rank)
        total = len(order)
        # The epoch's randomness is drawn up front on the CPU and moved once: no host transfer
        # (and so no synchronisation) per batch when the data lives on an accelerator.
        on_device = order.to(self.device)
        views: list[tuple[tuple[Tensor, Tensor, Tensor], StrongDraws | None]] = []
        if self.train:
            weak = self._draw_crops(total, gen)
            second = (self._draw_crops(total, gen), draw_strong(total, gen)) if self.strong_view else None
            views.append((weak, draw_strong(total, gen) if self.aug else None))
            if second is not None:
                views.append(second)
        # Gathered, cropped, flipped and normalised a chunk of batches at a time: a handful of
        # kernels per chunk instead of per batch (at batch 64 a step is a few milliseconds, and a
        # dozen small launches per batch would be a visible share of it). Every image gets the
        # same per-image operations either way, so batches are identical to batch-by-batch ones.
        chunk = self._chunk_images()
        keys = ("image", "image_strong")
        for first in range(0, total, chunk):
            last = min(first + chunk, total)
            idx = on_device[first:last]
            raw = self._images[idx]
            if self.train:
                images = [self._view(raw, crops, draws, first, last) for crops, draws in views]
            else:
                images = [self._normalize(raw)]
            labels = self._labels[idx]
            for start in range(first, last, self.batch_size):
                part = slice(start - first, start - first + self.batch_size)
                batch = {key: view[part] for key, view in zip(keys, images, strict=False)}
                batch.update(target=labels[part], index=idx[part])
                for key, extra in self.extras.items():
                    batch[key] = extra(order[start : start + self.batch_size], gen).to(self.device)
                yield batch

    def _draw_crops(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        dy, dx, flip = draw_crop_flip(n, gen, hflip=self.spec.hflip)
        return dy.to(self.device), dx.to(self.device), flip.to(self.device)

    def _view(
        self,
        raw: Tensor,
        crops: tuple[Tensor, Tensor, Tensor],
        draws: StrongDraws | None,
        first: int,
        last: int,
    ) -> Tensor:
        """The chunk ``[first, last)`` as a training view: cropped, flipped, strongly augmented if asked, normalised."""
        dy, dx, flip = crops
        images = crop_flip(raw, dy[first:last], dx[first:last], flip[first:last])
        if draws is not None:
            images = apply_strong(images, draws[first:last])
        return self._normalize(images)

    def _chunk_images(self) -> int:
        """Images per chunk: whole batches, about :data:`CHUNK_BYTES` of normalised float32 (all views)."""
        per_image = 4 * int(self._images[0].numel()) * (2 if self.strong_view else 1) if len(self._images) else 1
        return max(1, CHUNK_BYTES // (per_image * self.batch_size)) * self.batch_size

    def _normalize(self, images: Tensor) -> Tensor:
        image = (images.float() - self._mean) / self._std
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return image
