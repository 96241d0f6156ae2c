"""A labelled subset of a training split: ``train_per_class`` images of each class (the few-label setting)."""

from __future__ import annotations

import dataclasses

import torch

from dskd_core.data.types import Split, TensorDataset

#: The draw's seed: one subset for every run seed and method, so runs differ only in what they compare.
SUBSET_SEED = 0


def per_class(split: Split, count: int | None) -> Split:
    """The first ``count`` images of each class in a fixed shuffled order (a class with fewer keeps all),
    in the split's own order; the split itself when ``count`` is None."""
    if count is None:
        return split
    labels = split.labels
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SUBSET_SEED))
    kept: list[torch.Tensor] = []
    for label in torch.unique(labels).tolist():
        members = order[labels[order] == label]
        kept.append(members[:count])
    index = torch.sort(torch.cat(kept)).values
    if isinstance(split, TensorDataset):
        return dataclasses.replace(split, images=split.images[index], labels=labels[index])
    return dataclasses.replace(split, paths=split.paths[index.numpy()], labels=labels[index])
