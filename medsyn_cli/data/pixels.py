"""Images in [-1, 1] as 8-bit pixels: one rule for sample PNGs, grids, data exports and FID inputs."""

from __future__ import annotations

import numpy as np


def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) tensor in [-1, 1] -> uint8 array (N, H, W, C)."""
    import torch  # the caller holds a tensor: torch is loaded already

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()
