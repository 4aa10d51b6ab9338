"""Where a translation may change an image (``medsyn translate --where``) and the mask of what it changed
(``--mask-out``); docs/translate.md, "A tumor where you want it".

* **A region** is a mask of the input's size, any non-zero value inside: a PNG/JPEG for an image, a
  NIfTI of the same 3D shape for a volume (only the shape is compared, not the affine: voxel (i, j, k)
  of the mask is voxel (i, j, k) of the input). With several inputs, a folder of masks named as the
  inputs. Every mask is checked (there, the right size, not empty) before a model is loaded.
* **Geometry.** A region goes through what its image goes through: the same axial slicing of a volume,
  ``to_square`` to the model's resolution (padded with 0) and a threshold at 0.5; the model receives it
  as ``translate(x, to, region=...)``. Back at the input's size the translated value is kept only where
  the region and the model's region (``from_square``, > 0.5) both are: everywhere else the output is
  the input, value for value.
* **The mask of what changed**: the model's attention > 0.5, else (no attention, e.g. cyclegan) the
  region when one was given, else the pixels whose change ``|y - x| / 2`` (in [-1, 1]) exceeds
  :data:`~medsyn_cli.metrics.translation.CHANGE_LEVEL`; always within the region (and a volume's brain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from medsyn_cli.data.geometry import from_square, to_square
from medsyn_cli.errors import InputError
from medsyn_cli.metrics.translation import CHANGE_LEVEL

#: A resampled region, and an attention map, count as inside above this.
THRESHOLD = 0.5
_NIFTI = (".nii.gz", ".nii")


# -- finding and reading the masks ------------------------------------------------------------------
def region_paths(inputs: Sequence[Path], where: Path | None) -> list[Path | None]:
    """The mask of each input: ``where`` itself for one input given a file, else the file named as the
    input in the folder ``where`` (for an image, a ``.png`` of the same stem also counts)."""
    if where is None:
        return [None] * len(inputs)
    if not where.exists():
        raise InputError("no such region mask (--where)", path=where)
    if not where.is_dir():
        if len(inputs) > 1:
            raise InputError("with several inputs --where is a folder holding one mask per input", path=where,
                             hint="name each mask as its input")
        return [where]
    found = []
    for path in inputs:
        candidates = [where / path.name]
        if not path.name.lower().endswith(_NIFTI):
            candidates.append(where / f"{path.stem}.png")
        mask = next((c for c in candidates if c.is_file()), None)
        if mask is None:
            raise InputError(f"no region mask for {path.name} in the --where folder", path=candidates[0],
                             hint="one mask per input, with the input's file name")
        found.append(mask)
    return found


def read_region_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A PNG/JPEG mask as (H, W) bool (non-zero = inside), refused unless it is ``shape``."""
    from medsyn_cli.data.readers import read_image_raw
    from medsyn_cli.formats import kind_of

    if kind_of(path) != "image":
        raise InputError("the region mask of an image is a PNG/JPEG image of its size", path=path)
    raw, _ = read_image_raw(path)
    if raw.shape != tuple(shape):
        raise InputError(f"region mask is {raw.shape[1]}x{raw.shape[0]}, the image {shape[1]}x{shape[0]}",
                         path=path, hint="a mask of the input's size")
    return raw > 0


def read_region_volume(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A NIfTI mask as a 3D bool array in on-disk voxel order (non-zero = inside; a trailing axis of
    length 1 is dropped), refused unless it has the volume's ``shape``; its affine is not compared."""
    import nibabel as nib

    from medsyn_cli.data.limits import check_nifti

    if not path.name.lower().endswith(_NIFTI):
        raise InputError("the region mask of a volume is a NIfTI of the same shape", path=path)
    try:
        img = nib.load(str(path))
        got = tuple(int(s) for s in img.shape)
    except Exception as exc:  # nibabel raises several kinds on a broken file
        raise InputError(f"cannot read the region mask ({exc})", path=path) from None
    if len(got) == 4 and got[3] == 1:
        got = got[:3]
    if got != tuple(shape):
        raise InputError(f"region mask has shape {got}, the volume {tuple(shape)}", path=path,
                         hint="a mask of the input's 3D shape")
    check_nifti(img, path, None)
    data = np.asanyarray(img.dataobj).reshape(got)
    return np.nan_to_num(data, nan=0.0) != 0


def input_shape(path: Path, volume: bool) -> tuple[int, ...]:
    """The shape a region of ``path`` must have: (H, W) of an image, the 3D shape of a volume."""
    if volume:
        import nibabel as nib

        return tuple(int(s) for s in nib.load(str(path)).shape[:3])  # the header was checked already
    from medsyn_cli.data.readers import read_image_raw

    return read_image_raw(path)[0].shape


def check_regions(inputs: Sequence[Path], regions: Sequence[Path | None], volumes: Sequence[bool]) -> None:
    """Before the model loads: each mask readable, of its input's size, and not empty."""
    for path, region, volume in zip(inputs, regions, volumes):
        if region is None:
            continue
        shape = input_shape(path, volume)
        mask = read_region_volume(region, shape) if volume else read_region_image(region, shape)
        if not mask.any():
            raise InputError("region mask is empty (no pixel inside)", path=region,
                             hint="non-zero marks where the change may happen")


# -- the region through the geometry ------------------------------------------------------------------
def _square(region: np.ndarray, res: int):
    """(H, W) bool -> ((1, res, res) float32 0/1, the geometry to bring it back)."""
    square, geo = to_square(region[None].astype(np.float32), res, pad_value=0.0)
    return (square > THRESHOLD).astype(np.float32), geo


def square_region(region: np.ndarray, res: int) -> np.ndarray:
    """(H, W) bool at the input's size -> (1, res, res) float32 0/1, as the model receives it."""
    return _square(region, res)[0]


def effective_region(region: np.ndarray, res: int, path: Path | None = None) -> np.ndarray:
    """(H, W) bool: where the translated value is kept, the region where the model's region, brought
    back to the input's size, is inside too (a sliver lost at the model's resolution stays the input).
    With ``path``, a region that vanishes entirely is reported (nothing of that input changes)."""
    square, geo = _square(region, res)
    kept = region & (from_square(square, geo)[0] > THRESHOLD)
    if path is not None and region.any() and not kept.any():
        from medsyn_cli.notices import warn

        warn(f"{path}: the region (--where) vanishes at the model's resolution {res}; nothing was changed")
    return kept


def changed_mask(x: np.ndarray, y: np.ndarray, attention: np.ndarray | None, within: np.ndarray | None = None,
                 *, region: bool = False) -> np.ndarray:
    """(H, W) bool: what the model changed, from (C, H, W) input and output in [-1, 1] and the (1, H, W)
    attention (or None) at the input's size; ``region``: a region was given; ``within``: kept inside."""
    if attention is not None:
        mask = attention.mean(0) > THRESHOLD
    elif region:
        mask = np.ones(x.shape[1:], bool)
    else:
        mask = np.abs(y - x).mean(0) / 2 > CHANGE_LEVEL
    return mask if within is None else mask & within


def save_like(data: np.ndarray, img, target: Path) -> None:
    """Write ``data`` with ``img``'s affine and a copy of its header (dtype set from ``data``), atomically:
    a translated volume, its attention and its mask alike."""
    from medsyn_cli.fileio import atomic_path

    header = img.header.copy()
    header.set_data_dtype(data.dtype)
    if hasattr(header, "set_slope_inter"):  # the data are written unscaled
        header.set_slope_inter(None, None)
    out = type(img)(data, img.affine, header)
    ext = ".nii.gz" if target.name.lower().endswith(".gz") else ".nii"
    with atomic_path(target) as tmp:
        final_tmp = tmp.with_name(tmp.name + ext)  # nibabel picks compression from the name
        try:
            out.to_filename(str(final_tmp))
            final_tmp.replace(tmp)
        finally:
            final_tmp.unlink(missing_ok=True)


# -- where the masks go -------------------------------------------------------------------------------
def plan_masks(plans: Sequence[tuple[Path, Path, Path | None]], mask_out: Path | None, force: bool
               ) -> list[Path | None]:
    """The mask file of each (input, output, attention output) plan: ``mask_out`` for one input, else
    ``mask_out/<the output's file name>`` (so ``-o syn/tumor --mask-out syn/masks`` pairs them by name)."""
    from medsyn_cli.outputs import check_out_file, check_out_folder, clean_stale_temps

    if mask_out is None:
        return [None] * len(plans)
    many = len(plans) > 1
    if many:
        if mask_out.exists() and not mask_out.is_dir():
            raise InputError("with several inputs --mask-out is a folder", path=mask_out)
        check_out_folder(mask_out)
    taken = {p.resolve() for plan in plans for p in plan if p is not None}
    masks: list[Path | None] = []
    for _, target, _ in plans:
        mask = mask_out / target.name if many else mask_out
        if target.name.lower().endswith(_NIFTI) and not mask.name.lower().endswith(_NIFTI):
            raise InputError("the mask of a volume is NIfTI", path=mask, hint="use a .nii.gz name")
        if not target.name.lower().endswith(_NIFTI) and mask.suffix.lower() != ".png":
            raise InputError("the mask of an image is a PNG", path=mask, hint="use a .png name")
        if mask.resolve() in taken:
            raise InputError("the mask would overwrite an input or another output", path=mask,
                             hint="give --mask-out a name (with several inputs a folder) of its own")
        check_out_file(mask, force=force)
        masks.append(mask)
    clean_stale_temps(mask_out if many else mask_out.parent)
    return masks
