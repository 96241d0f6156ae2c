"""CRD's contrast indices: per sample, one positive and K negatives drawn from other classes.

mdistiller's ``CIFAR100InstanceSample`` draws them per item in the DataLoader workers; here a
whole batch is drawn at once on the training device, from a generator seeded by the loader's
epoch generator, so the stream stays a pure function of (seed, epoch) and resumes exactly.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

#: Rows of random keys drawn at once when sampling without replacement (bounds the (rows, N) buffer).
_KEY_BUDGET = 1 << 24

ContrastMode = Literal["exact", "relax"]


class ContrastSampler:
    """``sampler(index, gen) -> (B, K + 1)`` dataset indices: column 0 the positive, then K negatives.

    ``exact``: the positive is the sample itself; ``relax``: a random sample of its class.
    Negatives are a uniform draw from the samples of the *other* classes, without replacement
    unless K exceeds that pool (then with replacement), as upstream decides per sample.
    """

    def __init__(
        self, labels: Tensor, k: int, mode: ContrastMode = "exact", device: torch.device | None = None
    ) -> None:
        if k < 1:
            raise ValueError(f"K must be positive, got {k}")
        self.device = device or labels.device
        self.k = k
        self.mode = mode
        self.labels = labels.to(self.device)
        self.order = torch.argsort(self.labels, stable=True)  # dataset indices grouped by class
        self.counts = torch.bincount(self.labels)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.num_data = len(labels)

    def __call__(self, index: Tensor, gen: torch.Generator) -> Tensor:
        index = index.to(self.device)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        device_gen = torch.Generator(device=self.device).manual_seed(seed)
        classes = self.labels[index]
        if self.mode == "exact":
            positive = index
        else:
            offset = (torch.rand(len(index), generator=device_gen, device=self.device) * self.counts[classes]).long()
            positive = self.order[self.starts[classes] + offset]
        pool = self.num_data - self.counts[classes]  # (B,) size of each row's negative pool
        if int(pool.min()) < 1:
            raise ValueError("CRD needs at least two classes in the training data")
        replace = self.k > pool
        negatives = torch.empty(len(index), self.k, dtype=torch.long, device=self.device)
        if bool(replace.any()):
            negatives[replace] = self._with_replacement(classes[replace], device_gen)
        if not bool(replace.all()):
            negatives[~replace] = self._without_replacement(classes[~replace], device_gen)
        return torch.cat([positive[:, None], negatives], dim=1)

    def _with_replacement(self, classes: Tensor, gen: torch.Generator) -> Tensor:
        """Uniform positions in the class-sorted order, skipping each row's own class block."""
        pool = (self.num_data - self.counts[classes])[:, None]
        pos = (torch.rand(len(classes), self.k, generator=gen, device=self.device) * pool).long()
        start, count = self.starts[classes][:, None], self.counts[classes][:, None]
        return self.order[pos + (pos >= start) * count]

    def _without_replacement(self, classes: Tensor, gen: torch.Generator) -> Tensor:
        """The K smallest of i.i.d. uniform keys over the other-class samples: a uniform K-subset."""
        rows = max(1, _KEY_BUDGET // self.num_data)
        out = []
        for chunk in classes.split(rows):
            keys = torch.rand(len(chunk), self.num_data, generator=gen, device=self.device)
            keys.masked_fill_(self.labels[None, :] == chunk[:, None], 2.0)  # own class never drawn
            out.append(keys.topk(self.k, dim=1, largest=False, sorted=False).indices)
        return torch.cat(out)
