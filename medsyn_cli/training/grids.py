"""Sample grids: PNG mosaics of images in [-1, 1] (``torchvision.utils.make_grid``).

torchvision is imported where a grid is made: importing it imports ``torch._dynamo`` (~3 s of CPU).
The pixel rule (:func:`medsyn_cli.data.pixels.to_uint8`) is the one ``medsyn sample`` writes its PNGs with.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from medsyn_cli.data.pixels import to_uint8
from medsyn_cli.fileio import atomic_path


def save_png(array: np.ndarray, path: Path) -> None:
    """Save an (H, W, C) uint8 array as grey (C=1) or RGB (C=3) PNG, atomically."""
    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array, mode=None)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_grid(images: torch.Tensor, path: Path, *, nrow: int | None = None) -> Path:
    """A mosaic of ``images`` (in [-1, 1]), ``nrow`` per row (square by default)."""
    from torchvision.utils import make_grid

    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=2, pad_value=-1.0)
    if images.shape[1] == 1:  # make_grid repeats grey to RGB; keep grey as grey
        grid = grid[:1]
    save_png(to_uint8(grid[None])[0], path)
    return path


def translation_rows(inputs: torch.Tensor, outputs: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
    """Interleave ``input | output | attention`` per example (three images per grid row).

    Attention maps (in [0, 1], any size) are resized and shown from black (0) to white (1); when the
    model gives none, the third column is the absolute change ``|output - input|`` instead.
    """
    c, size = inputs.shape[1], inputs.shape[-2:]
    if attention is None:
        third = (outputs - inputs).abs() - 1.0  # |diff| in [0, 2] -> [-1, 1]
    else:
        att = attention.detach().float()
        if att.shape[-2:] != size:
            att = F.interpolate(att, size=size, mode="bilinear", align_corners=False)
        third = att.clamp(0, 1) * 2 - 1
        if third.shape[1] != c:
            third = third.mean(1, keepdim=True).expand(-1, c, -1, -1)
    return torch.stack([inputs.float(), outputs.float(), third.float()], dim=1).flatten(0, 1)
