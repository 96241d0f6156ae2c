"""Sharding an epoch over processes, the way ``DistributedSampler`` does it.

Every rank draws the same epoch permutation and keeps positions ``rank, rank + W, …``. For
training the permutation is first padded (with its own head) to a multiple of W, so every rank
runs the same number of steps and step s of all ranks together covers the same samples as step
s of one process with a W times larger batch. Evaluation shards are not padded (no sample is
counted twice); their counts are summed across ranks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Sampler


def shard_order(order: Tensor, rank: int, world_size: int, *, pad: bool) -> Tensor:
    """This rank's share of ``order`` (1-D): strided, padded to equal shares when ``pad``."""
    if world_size == 1:
        return order
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    if pad and len(order) % world_size:
        extra = world_size - len(order) % world_size
        repeats = -(-extra // max(len(order), 1))
        order = torch.cat([order, order.repeat(repeats)[:extra]])
    return order[rank::world_size]


def shard_length(n: int, rank: int, world_size: int, *, pad: bool) -> int:
    """``len(shard_order(range(n), rank, world_size, pad=pad))`` without building it."""
    if pad:
        return -(-n // world_size)
    return max(0, -(-(n - rank) // world_size))


def stream_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, epoch, rank, …): distinct tuples give unrelated streams."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def rank_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The augmentation stream of one rank in one epoch (ranks must not share crops and flips)."""
    return torch.Generator().manual_seed(stream_seed(seed, epoch, rank, 0x5EED))


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + W, …`` of a dataset of ``n``: an unpadded evaluation shard."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return shard_length(self.n, self.rank, self.world_size, pad=False)


@dataclass(frozen=True)
class Shard:
    """Which share of the data this process reads: ``rank`` of ``world_size`` (``local_*``: this node's)."""

    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
