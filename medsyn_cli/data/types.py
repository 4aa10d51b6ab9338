"""The data contract shared by the host and the models.

Inside medsyn an image is a float tensor in [-1, 1] of shape (C, H, W), C = 1 by default.
A dataset is held in memory once preprocessed (it is cached on disk, see ``data/cache.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class ImageSet:
    """One domain of images, all at one resolution, with where each came from.

    ``intensity`` records how raw values became [-1, 1] (per source when they differ), e.g.
    ``{"kind": "uint8"}``, ``{"kind": "percentile", "low": 0.5, "high": 99.5, "values": [...]}`` or
    ``{"kind": "ct_window", "center": 40, "width": 400}``, so outputs can be mapped back.
    """

    #: The task this data trains (a class attribute, not a field): one folder of images is unconditional.
    task = "unconditional"

    images: torch.Tensor  # (N, C, H, W) float32 in [-1, 1]
    sources: list[str]  # file (and slice) each image came from, e.g. "case.nii.gz#z=77"
    intensity: dict[str, Any] = field(default_factory=dict)
    masks: torch.Tensor | None = None  # (N, 1, H, W) float32 in {0, 1}, tumor masks where known
    has_mask: torch.Tensor | None = None  # (N,) bool: which rows of ``masks`` are real labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def res(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def counts(self) -> int:
        return len(self)

    def intensity_record(self) -> dict[str, Any]:
        return dict(self.intensity)

    def pixel_tensors(self) -> list[torch.Tensor]:
        """What identifies the data (the trainer's fingerprint hashes these)."""
        return [self.images]


@dataclass
class TwoDomainSet:
    """Unpaired two-domain data for translation: ``normal`` and ``tumor`` (masks on ``tumor``)."""

    task = "translation"

    normal: ImageSet
    tumor: ImageSet

    def __len__(self) -> int:
        return max(len(self.normal), len(self.tumor))

    @property
    def res(self) -> int:
        return self.normal.res

    @property
    def channels(self) -> int:
        return self.normal.channels

    def counts(self) -> dict[str, int]:
        return {"normal": len(self.normal), "tumor": len(self.tumor)}

    def intensity_record(self) -> dict[str, Any]:
        return {"normal": self.normal.intensity, "tumor": self.tumor.intensity}

    def pixel_tensors(self) -> list[torch.Tensor]:
        masks = [self.tumor.masks] if self.tumor.masks is not None else []
        return [self.normal.images, self.tumor.images, *masks]


#: Names of the translation domains, in the order (A, B) used by CycleGAN-style models.
DOMAINS = ("normal", "tumor")
