"""Which images make each batch: a function of (seed, stream, batch number) only, so resuming at
any step draws exactly the batches an uninterrupted run would have drawn.

Each epoch of a stream is a permutation from a ``torch.Generator`` seeded by (seed, stream, epoch);
the global batch ``k`` of the epoch is ``perm[k*B:(k+1)*B]`` (the last incomplete batch is dropped)
and torchrun rank ``r`` of ``W`` takes the strided shard ``[r::W]`` of it.
"""

from __future__ import annotations

import numpy as np
import torch


def epoch_seed(seed: int, stream: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for one epoch of one stream."""
    state = np.random.SeedSequence([seed, stream, epoch]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


class EpochSampler:
    """Batches of indices into one in-memory dataset of ``n`` images."""

    def __init__(self, n: int, batch_size: int, seed: int, *, stream: int = 0, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by world size {world}")
        self.n, self.batch_size, self.seed, self.stream = n, batch_size, seed, stream
        self.rank, self.world = rank, world
        self._cached: tuple[int, torch.Tensor] | None = None

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        if self._cached is None or self._cached[0] != epoch:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, self.stream, epoch))
            self._cached = (epoch, torch.randperm(self.n, generator=g))
        return self._cached[1]

    def indices(self, k: int) -> torch.Tensor:
        """This rank's indices for the ``k``-th batch of the stream (counted over all epochs)."""
        epoch, pos = divmod(k, self.batches_per_epoch)
        perm = self.permutation(epoch)
        return perm[pos * self.batch_size:(pos + 1) * self.batch_size][self.rank::self.world]
