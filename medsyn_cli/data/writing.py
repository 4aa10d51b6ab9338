"""Writing image folders atomically: built in a hidden temporary folder beside the target, then renamed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np



@contextlib.contextmanager
def atomic_dir(target: str | Path, *, force: bool = False, command: str) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``target`` (see
    :func:`medsyn_cli.outputs.owned_folder`: ``--force`` replaces only an earlier output of ``command``).
    On failure nothing is left behind and an existing ``target`` is untouched."""
    from medsyn_cli.outputs import owned_folder

    with owned_folder(Path(target), force=force, command=command) as tmp:
        yield tmp


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A (H, W) or (1, H, W) image in [-1, 1] -> uint8 (the inverse of the ``uint8`` mapping, rounded)."""
    plane = np.asarray(image).reshape(image.shape[-2:])
    return np.clip(np.rint((plane + 1.0) * 127.5), 0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: Path) -> None:
    """Write an image in [-1, 1] as an 8-bit grey PNG."""
    from PIL import Image

    Image.fromarray(to_uint8(image), mode="L").save(path)


def save_mask(mask: np.ndarray, path: Path) -> None:
    """Write a {0, 1} mask as an 8-bit PNG with values 0 and 255."""
    from PIL import Image

    plane = np.asarray(mask).reshape(mask.shape[-2:])
    Image.fromarray(np.where(plane > 0.5, 255, 0).astype(np.uint8), mode="L").save(path)
