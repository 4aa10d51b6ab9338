"""The image history buffer of Shrivastava et al. 2017, as CycleGAN's ``ImagePool`` uses it.

The discriminator is shown fakes drawn partly from the generators' history, which damps
oscillation. Until the pool holds ``size`` images every fake is stored and returned as is; after
that each fake is, with probability 1/2, swapped for a random stored one (which it replaces).

Randomness comes only from torch's global RNG (the trainer saves and restores it), and the stored
images are part of ``state_dict()``, so a resumed run queries exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    def __init__(self, size: int = 50):
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch the same shape as ``images``, mixing them with images from the history."""
        if self.size <= 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()).item())
                old = self.images[idx].to(image.device, image.dtype)
                self.images[idx] = image.clone()
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images as one (N, C, H, W) tensor (weights_only-loadable)."""
        # Stored images may sit on a GPU (and in bf16 under autocast); a checkpoint holds float32 on CPU.
        stacked = torch.stack([im.float().cpu() for im in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = int(state.get("size", self.size))
        images = state.get("images")
        self.images = [] if images is None or images.numel() == 0 else [im.clone() for im in images]
