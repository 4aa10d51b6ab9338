"""``--holdout F``: a seeded part of the training images kept out of training, so the critic diagnostics
(:mod:`.critic_watch`) can compare the critic's scores on images it trained on with images it never saw.

The split is a pure function of (seed, number of images, fraction): a permutation drawn from its own
``torch.Generator``, never from the training RNGs. The remaining images keep their order, and the data
order over them is the sampler's pure function of (seed, step), so resume stays exact and a run with
``--holdout`` trains exactly as a run without it on the remaining images alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from medsyn_cli.data.types import ImageSet
from medsyn_cli.errors import InputError
from medsyn_cli.training.sampler import epoch_seed

#: The split's permutation is seeded like one epoch of a sampler stream of its own (batches use 0 and 1).
HOLDOUT_STREAM = 7


@dataclass
class Holdout:
    """The held-out images and where they came from."""

    images: torch.Tensor  # (count, C, H, W), in the order of the loaded data
    indices: list[int]  # their positions in the loaded data
    sources: list[str]  # the file (and slice) of each
    fraction: float
    total: int  # images loaded, held-out ones included

    def __len__(self) -> int:
        return len(self.indices)

    def record(self) -> dict[str, Any]:
        """What config.json says about the split (``data.holdout``)."""
        return {"fraction": self.fraction, "count": len(self), "of": self.total, "indices": self.indices,
                "sources": self.sources}


def holdout_record(holdout: Holdout | None) -> dict[str, Any]:
    """config.json's ``data`` entries for the split: ``{"holdout": ...}``, or none without one."""
    return {} if holdout is None else {"holdout": holdout.record()}


def holdout_count(n: int, fraction: float) -> int:
    """How many of ``n`` images ``fraction`` holds out: rounded half up, at least one."""
    return max(1, int(fraction * n + 0.5))


def split_holdout(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, Holdout | None]:
    """(the training images, the held-out ones); with ``fraction`` 0 the data as it is and None."""
    if not fraction:
        return data, None
    n = len(data)
    count = holdout_count(n, fraction)
    if count >= n:
        raise InputError(f"--holdout {fraction:g} of {n} images leaves none to train on", hint="add images")
    g = torch.Generator().manual_seed(epoch_seed(seed, HOLDOUT_STREAM, 0))
    held = torch.randperm(n, generator=g)[:count].sort().values
    keep = torch.ones(n, dtype=torch.bool)
    keep[held] = False
    kept = keep.nonzero().flatten()

    def rows(t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
        return None if t is None else t[idx]

    train = dataclasses.replace(data, images=data.images[kept], sources=[data.sources[i] for i in kept.tolist()],
                                masks=rows(data.masks, kept), has_mask=rows(data.has_mask, kept))
    indices = held.tolist()
    return train, Holdout(images=data.images[held], indices=indices, sources=[data.sources[i] for i in indices],
                          fraction=fraction, total=n)
