"""`QuotaSampler`: the rows `deep.prune.keep` keeps, as a drop-in `torch.utils.data.Sampler` for any training loop,
sharded across processes exactly as `torch.utils.data.DistributedSampler` shards a dataset."""

from __future__ import annotations

from collections.abc import Iterator

import numpy.typing as npt
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler

from deep.prune import keep


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """The replica count and rank: as given, else torch.distributed's when it is initialised, else one process."""
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if not (isinstance(num_replicas, int) and num_replicas >= 1):
        raise ValueError(f"num_replicas must be a positive integer, got {num_replicas!r}")
    if not (isinstance(rank, int) and 0 <= rank < num_replicas):
        raise ValueError(f"rank must lie in [0, {num_replicas - 1}] (num_replicas = {num_replicas}), got {rank!r}")
    return num_replicas, rank


class QuotaSampler(Sampler[int]):
    """Yields the training rows `keep(labels, density, protocol, **keep_args)` keeps, in a new order each epoch.

    `keep_args` are keep's (scores, recalls, groups, allocation, min_count, recall_prior, val_sizes, exponent);
    `seed` chooses the kept rows (as in keep) and seeds the shuffle with seed + epoch (as DistributedSampler does).
    With `num_replicas` > 1 each `rank` gets an equal shard of the kept rows, padded by repeating rows when they do not
    divide evenly (dropped instead with `drop_last`), exactly as DistributedSampler shards a dataset of the kept rows:
    call `set_epoch(epoch)` at the start of each epoch on every rank. `num_replicas` and `rank` default to
    torch.distributed's when it is initialised, else to a single process. `kept`: every kept row (all ranks), sorted.
    """

    def __init__(
        self, labels: npt.ArrayLike, density: float, protocol: str, *, num_replicas: int | None = None,
        rank: int | None = None, shuffle: bool = True, seed: int = 0, drop_last: bool = False, **keep_args: object,
    ) -> None:
        self.kept = keep(labels, density, protocol, seed=seed, **keep_args)
        num_replicas, rank = _world(num_replicas, rank)
        # The shard arithmetic is DistributedSampler's own, over positions in `kept`: one owner of padding and order.
        self._positions = DistributedSampler(self.kept, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                                             seed=seed, drop_last=drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's order (the same on every rank, so that the shards stay disjoint)."""
        self._positions.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return (int(self.kept[i]) for i in self._positions)

    def __len__(self) -> int:
        return len(self._positions)
