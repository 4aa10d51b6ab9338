"""Slicing 3D volumes into 2D images and putting slices back, plus the per-volume intensity choice.

Axes: ``axial``, ``coronal`` and ``sagittal`` name anatomical planes. When the affine is given, the volume
is first reoriented (flips and transposes only, no resampling) to RAS so that ``axial`` is the
inferior-superior axis whatever the voxel order on disk; without an affine the voxel array is taken as
RAS already (axial = last axis). Each slice is rotated by 90 degrees (``np.rot90``) so it displays the
usual way (anterior / superior up). :func:`assemble_volume` undoes all of it exactly.

Empty-slice rule (used by the dataset loader): after mapping to [-1, 1], a pixel is foreground when it is
above ``FOREGROUND_LEVEL`` (-0.9, i.e. 5 % of the mapped range above black); a slice is kept when at
least ``MIN_FOREGROUND_FRACTION`` (2 %) of its pixels are foreground.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medsyn_cli.data.intensity import Mapping, apply_mapping, ct_window_mapping, percentile_mapping
from medsyn_cli.errors import InputError

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
FOREGROUND_LEVEL = -0.9
MIN_FOREGROUND_FRACTION = 0.02
#: A volume is taken as CT in HU when this share of voxels is at or below -500 and the minimum <= -900.
CT_AIR_FRACTION = 0.05


def _axis_index(axis: str | int) -> int:
    if isinstance(axis, int):
        return axis
    check_axis(axis)
    return AXES[axis]


def check_axis(axis: str) -> str:
    """``axis`` if it names a plane; else an InputError (exit code 2) listing the planes."""
    if axis not in AXES:
        raise InputError(f"unknown axis {axis!r}", hint=f"use one of {', '.join(AXES)}")
    return axis


def _orientation(affine: np.ndarray | None):
    import nibabel.orientations as nio

    if affine is None:
        return None
    ornt = nio.io_orientation(np.asarray(affine))
    return nio.ornt_transform(ornt, nio.axcodes2ornt(("R", "A", "S")))


def to_ras(vol: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """The voxel array reoriented to RAS (a view-like flip/transpose; identity without an affine)."""
    import nibabel.orientations as nio

    ornt = _orientation(affine)
    return vol if ornt is None else nio.apply_orientation(vol, ornt)


def from_ras(vol: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`to_ras`: back to the on-disk voxel order of ``affine``."""
    import nibabel.orientations as nio

    if affine is None:
        return vol
    ornt = nio.io_orientation(np.asarray(affine))
    back = nio.ornt_transform(nio.axcodes2ornt(("R", "A", "S")), ornt)
    return nio.apply_orientation(vol, back)


def slice_volume(vol: np.ndarray, axis: str | int = "axial",
                 affine: np.ndarray | None = None) -> list[tuple[int, np.ndarray]]:
    """All slices ``(index, 2D array)`` along ``axis`` (index counted in the RAS-oriented volume)."""
    if vol.ndim != 3:
        raise ValueError(f"expected a 3D volume, got shape {vol.shape}")
    ras = to_ras(vol, affine)
    ax = _axis_index(axis)
    moved = np.moveaxis(ras, ax, 0)
    return [(k, np.ascontiguousarray(np.rot90(moved[k]))) for k in range(moved.shape[0])]


def assemble_volume(slices: list[np.ndarray] | np.ndarray, axis: str | int = "axial",
                    affine: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`slice_volume`: every slice, in order, back to a volume in on-disk voxel order."""
    ax = _axis_index(axis)
    planes = np.stack([np.rot90(np.asarray(s), -1) for s in slices])
    ras = np.moveaxis(planes, 0, ax)
    return np.ascontiguousarray(from_ras(ras, affine))


def looks_like_ct(vol: np.ndarray) -> bool:
    """Heuristic for NIfTI without a modality tag: HU volumes have lots of air near -1000."""
    return float(vol.min()) <= -900.0 and float(np.mean(vol <= -500.0)) >= CT_AIR_FRACTION


def volume_mapping(vol: np.ndarray, modality: str | None = None) -> Mapping:
    """The intensity mapping for a whole volume: a CT window for CT, else percentiles of the foreground.

    Foreground for MR = voxels above the volume's minimum (the background of skull-stripped and most
    raw MR volumes), so the percentiles are not swamped by air.
    """
    is_ct = modality == "CT" if modality else looks_like_ct(vol)
    if is_ct:
        return ct_window_mapping()
    return percentile_mapping(vol, mask=vol > vol.min())


def keep_slice(mapped: np.ndarray) -> bool:
    """The empty-slice rule on a slice already in [-1, 1] (see the module docstring)."""
    return float(np.mean(mapped > FOREGROUND_LEVEL)) >= MIN_FOREGROUND_FRACTION


def volume_slices(vol: np.ndarray, affine: np.ndarray | None, axis: str, mapping: Mapping,
                  drop_empty: bool = True) -> list[tuple[int, np.ndarray]]:
    """Slices of ``vol`` mapped to [-1, 1], empty ones dropped."""
    out = []
    for k, plane in slice_volume(vol, axis, affine):
        mapped = apply_mapping(plane, mapping)
        if not drop_empty or keep_slice(mapped):
            out.append((k, mapped))
    return out


def describe_volume(vol: np.ndarray, img: Any = None) -> dict[str, Any]:
    """Shape, dtype, orientation and value range of a volume, for ``medsyn data info``."""
    info: dict[str, Any] = {"shape": list(vol.shape), "min": float(vol.min()), "max": float(vol.max())}
    if img is not None:
        import nibabel as nib

        info["dtype"] = str(img.get_data_dtype())
        info["axcodes"] = "".join(nib.aff2axcodes(img.affine))
        info["voxel_size"] = [round(float(z), 4) for z in img.header.get_zooms()[:3]]
    return info
