"""Batches from an in-memory uint8 dataset, shuffled and augmented as one tensor operation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor

from dskd_core.data.registry import DatasetSpec, TensorDataset

PAD = 4

#: ``extra(index (B,), epoch_generator) -> Tensor``: a per-batch value a method asked for (CRD's contrast indices).
BatchExtra = Callable[[Tensor, torch.Generator], Tensor]


def augment_batch(images: Tensor, gen: torch.Generator, hflip: bool = True, pad: int = PAD) -> Tensor:
    """Random crop with zero padding ``pad`` and (optionally) a horizontal flip, per image.

    The same distribution as torchvision's ``RandomCrop(H, padding=pad)`` followed by
    ``RandomHorizontalFlip()``: offsets uniform in ``[0, 2·pad]`` on each axis, flip with p = 0.5,
    padding with zeros before normalisation. ``images``: ``(B, C, H, W)`` of any dtype.
    """
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (B,1,H,1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (B,1,1,W)
    batch_idx = torch.arange(b, device=images.device)[:, None, None, None]
    chan_idx = torch.arange(c, device=images.device)[None, :, None, None]
    out = padded[batch_idx, chan_idx, rows, cols]
    if hflip:
        flip = (torch.rand(b, generator=gen) < 0.5).to(images.device)
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


def randaugment_batch(images: Tensor, gen: torch.Generator) -> Tensor:
    """RandAugment (n=2, m=10; the DSKD/RLD ``--aug``) per image of a uint8 batch ``(B, C, H, W)``.

    torchvision draws its choices from the global RNG, so it runs inside a forked RNG seeded
    from ``gen``: the data stream stays a function of (seed, epoch) and training's RNG is untouched.
    """
    from torchvision.transforms import v2

    op = v2.RandAugment(num_ops=2, magnitude=10)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([op(image) for image in images])


class BatchLoader:
    """Iterate ``{"image", "target", "index"}`` batches of a :class:`TensorDataset`.

    With ``train=True`` the order and the augmentation of epoch ``e`` come from a generator
    seeded by ``(seed, e)`` alone: no loader state needs saving for an exact resume. ``extras``
    adds one key per entry, computed from the batch's dataset indices with that same generator
    (a distiller's :meth:`batch_extras`, e.g. CRD's ``contrast_index``).
    """

    def __init__(
        self,
        data: TensorDataset,
        spec: DatasetSpec,
        batch_size: int,
        *,
        train: bool,
        device: torch.device,
        seed: int = 0,
        randaugment: bool = False,
        extras: Mapping[str, BatchExtra] | None = None,
    ) -> None:
        self.data = data
        self.extras = dict(extras or {})
        self.spec = spec
        self.batch_size = batch_size
        self.train = train
        self.device = device
        self.seed = seed
        self.randaugment = randaugment
        self.epoch = 1
        self._mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.data) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        n = len(self.data)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=gen) if self.train else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            images = self.data.images[idx].to(self.device, non_blocking=True)
            if self.train:
                images = augment_batch(images, gen, hflip=self.spec.hflip)
                if self.randaugment:
                    images = randaugment_batch(images, gen)
            image = (images.float() - self._mean) / self._std
            batch = {
                "image": image,
                "target": self.data.labels[idx].to(self.device, non_blocking=True),
                "index": idx.to(self.device),
            }
            for key, extra in self.extras.items():
                batch[key] = extra(idx, gen).to(self.device)
            yield batch
