"""Bring images to a square ``res x res`` and back. Three fits (``--fit``), all antialiased:

* ``pad`` (:func:`to_square`): aspect kept, the shorter side padded; invertible (translation uses it);
* ``resize``: both sides scaled to ``res`` (aspect changed), as ``transforms.Resize((res, res))``;
* ``crop``: the centred square of the shorter side's length, then scaled to ``res``.

``to_square`` scales the longer side to ``res`` (Pillow's bicubic resampling in float, whose filter
support widens when shrinking, i.e. antialiasing), then pads the shorter side symmetrically (the odd
pixel goes to the bottom/right) with ``pad_value`` (-1, black, for images; 0 for masks). It returns the
geometry needed by ``from_square`` to crop the padding and resize back to the original size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize one float 2D plane with antialiasing (bicubic; widened filter support on downscale)."""
    if plane.shape == (height, width):
        return plane.astype(np.float32, copy=True)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([resize_plane(c, height, width) for c in img])


def square_geometry(height: int, width: int, res: int) -> dict[str, Any]:
    """Where a ``height x width`` image lands inside the ``res x res`` square."""
    scale = res / max(height, width)
    new_h = min(res, max(1, round(height * scale)))
    new_w = min(res, max(1, round(width * scale)))
    top, left = (res - new_h) // 2, (res - new_w) // 2
    return {"orig_h": int(height), "orig_w": int(width), "res": int(res), "new_h": int(new_h),
            "new_w": int(new_w), "top": int(top), "left": int(left)}


def to_square(img: np.ndarray, res: int, pad_value: float = -1.0) -> tuple[np.ndarray, dict[str, Any]]:
    """(C, H, W) -> (C, res, res) float32, aspect kept, padded with ``pad_value``; plus the geometry."""
    if img.ndim != 3:
        raise ValueError(f"expected (C, H, W), got shape {img.shape}")
    geo = square_geometry(img.shape[1], img.shape[2], res)
    inner = _resize(img, geo["new_h"], geo["new_w"])
    lo, hi = float(np.min(img)), float(np.max(img))
    inner = np.clip(inner, lo, hi)  # bicubic overshoots at edges; stay within the input's range
    out = np.full((img.shape[0], res, res), pad_value, dtype=np.float32)
    out[:, geo["top"]:geo["top"] + geo["new_h"], geo["left"]:geo["left"] + geo["new_w"]] = inner
    return out, geo


FITS = ("pad", "resize", "crop")


def fit_square(img: np.ndarray, res: int, fit: str = "pad", pad_value: float = -1.0
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """(C, H, W) -> (C, res, res) float32 by ``fit`` (see the module docstring); plus the geometry."""
    if fit == "pad":
        out, geo = to_square(img, res, pad_value)
        return out, {**geo, "fit": "pad"}
    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    if img.ndim != 3:
        raise ValueError(f"expected (C, H, W), got shape {img.shape}")
    h, w = img.shape[1:]
    geo = {"orig_h": int(h), "orig_w": int(w), "res": int(res), "fit": fit}
    src = img
    if fit == "crop":
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        src = img[:, top:top + side, left:left + side]
        geo.update(crop_top=int(top), crop_left=int(left), crop_side=int(side))
    out = _resize(src, res, res)
    lo, hi = float(np.min(src)), float(np.max(src))
    return np.clip(out, lo, hi), geo


def from_square(img: np.ndarray, geometry: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`to_square` (or of the ``resize`` fit): back to (C, orig_h, orig_w)."""
    g = geometry
    if g.get("fit", "pad") == "resize":
        out = _resize(img, g["orig_h"], g["orig_w"])
        return np.clip(out, float(np.min(img)), float(np.max(img)))
    if g.get("fit", "pad") != "pad":
        raise ValueError(f"a {g.get('fit')!r} fit cannot be inverted")
    if img.shape[-1] != g["res"] or img.shape[-2] != g["res"]:
        raise ValueError(f"expected a {g['res']}x{g['res']} image, got shape {img.shape}")
    inner = img[:, g["top"]:g["top"] + g["new_h"], g["left"]:g["left"] + g["new_w"]]
    out = _resize(inner, g["orig_h"], g["orig_w"])
    lo, hi = float(np.min(inner)), float(np.max(inner))
    return np.clip(out, lo, hi)
