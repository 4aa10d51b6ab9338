"""Translating images and NIfTI volumes between the normal and tumor domains with a trained model.

The logic behind ``medsyn translate`` (docs/translate.md). It takes a model object (anything with
``res``, ``channels`` and ``translate(x, to) -> (y, attention | None)``), so it is tested without
checkpoints.

* Size: each image or axial slice is brought to the model's ``res x res`` by
  :func:`medsyn_cli.data.geometry.to_square` (longer side scaled to ``res``, antialiased, the
  shorter side padded with black) and the result back to the input's size by ``from_square``.
* PNG/JPEG: 8-bit (or 16-bit) grey in, the same depth out, as PNG; RGB is converted to grey for a
  one-channel model.
* NIfTI: a 3D volume (or one volume of a 4D file with ``volume_index``). Intensities are mapped to
  [-1, 1] per volume by percentiles inside the brain (voxels above the volume's minimum: != 0 for
  BraTS), with the percentiles the model was trained with, and mapped back afterwards. Only brain
  voxels are written: everything else, and every slice without brain, keeps the input's values.
  Shape, affine and a copy of the header are kept; integer inputs without scaling keep their dtype
  (rounded, clipped), any other input is written as float32.
* ``--where`` / ``--mask-out``: a region the change must stay in, and the mask of what changed
  (:mod:`medsyn_cli.translation_regions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from medsyn_cli import translation_regions as roi  # --where and --mask-out
from medsyn_cli.data.geometry import from_square, to_square
from medsyn_cli.data.intensity import apply_mapping, invert_mapping, percentile_mapping
from medsyn_cli.errors import InputError
from medsyn_cli.fileio import atomic_path
from medsyn_cli.notices import warn

NIFTI_SUFFIXES = (".nii.gz", ".nii")  # the output side: a translated volume is written as NIfTI
DIRECTIONS = ("tumor", "normal")
#: Percentiles of the brain's intensities mapped to -1 and +1 when the model's record has none.
DEFAULT_PERCENTILES = (0.5, 99.5)


@dataclass
class Outcome:
    """What one input produced: the translated file, the attention file, and counts for the log."""

    input: Path
    output: Path
    attention: Path | None = None
    slices_translated: int = 0
    slices_skipped: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    mask: Path | None = None  # --mask-out: what changed (translation_regions.changed_mask)
    mask_pixels: int | None = None


# -- paths ---------------------------------------------------------------------------------
def files_in(paths: list[Path]) -> list[Path]:
    """Each folder among ``paths`` replaced by the images and volumes directly in it, sorted by name,
    hidden files skipped as every folder listing of medsyn skips them (not its subfolders, unlike
    ``edges``: translate names an output after its input's file name, so they would collide in --out)."""
    from medsyn_cli.formats import kind_of as format_kind, suffixes

    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(f for f in path.iterdir()
                       if f.is_file() and not f.name.startswith(".") and format_kind(f) in ("image", "nifti"))
        if not found:
            raise InputError("folder holds no image or NIfTI volume", path=path,
                             hint=f"translate reads {' '.join(suffixes('image', 'nifti'))}")
        out.extend(found)
    return out


def kind_of(path: Path) -> str:
    """``"image"`` or ``"volume"``, as the format registry names the file; anything else is an input
    error (translate writes its output in the input's form: PNG for an image, NIfTI for a volume)."""
    from medsyn_cli.formats import kind_of as format_kind, suffixes

    kind = format_kind(path)
    if kind == "nifti":
        return "volume"
    if kind == "image":
        return "image"
    readable = " ".join(suffixes("image", "nifti"))
    what = f"a {kind} file" if kind else "not a file medsyn reads"
    raise InputError(f"{what}; translate reads 2D images and NIfTI volumes", path=path,
                     hint=f"translate reads {readable}")


def split_name(path: Path) -> tuple[str, str]:
    """``case_t1ce.nii.gz`` -> (``case_t1ce``, ``.nii.gz``); images always get ``.png``."""
    name = path.name
    for ext in NIFTI_SUFFIXES:
        if name.lower().endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    return path.stem, ".png"


def default_output(path: Path, to: str, folder: Path | None = None) -> Path:
    """Beside the input (or in ``folder``) with the direction in the name: ``x_to-tumor.nii.gz``."""
    stem, ext = split_name(path)
    return (folder or path.parent) / f"{stem}_to-{to}{ext}"


def default_attention_output(path: Path, to: str, folder: Path) -> Path:
    stem, ext = split_name(path)
    return folder / f"{stem}_to-{to}_attention{ext}"


def plan_outputs(inputs: Sequence[Path], to: str, out: Path | None, attention_out: Path | None,
                 force: bool) -> list[tuple[Path, Path, Path | None]]:
    """(input, output, attention output) for each input, checked before any work is done.

    With one input ``out``/``attention_out`` are file names; with several they are folders.
    An output never replaces an input, and an existing output needs ``force``.
    """
    from medsyn_cli.outputs import check_out_file, check_out_folder, clean_stale_temps

    many = len(inputs) > 1
    for folder in (out, attention_out):
        if many and folder is not None and folder.exists() and not folder.is_dir():
            raise InputError("with several inputs this must be a folder", path=folder)
        if many and folder is not None:
            check_out_folder(folder)
    plans = []
    resolved_inputs = {p.resolve() for p in inputs}
    for path in inputs:
        kind = kind_of(path)
        target = default_output(path, to, out) if (many and out) else (out or default_output(path, to))
        att = None
        if attention_out is not None:
            att = default_attention_output(path, to, attention_out) if many else attention_out
        for p, what in ((target, "output"), (att, "attention output")):
            if p is None:
                continue
            if kind == "image" and p.suffix.lower() != ".png":
                raise InputError(f"the {what} of an image is a PNG", path=p, hint="use a .png name")
            if kind == "volume" and not p.name.lower().endswith(NIFTI_SUFFIXES):
                raise InputError(f"the {what} of a volume is NIfTI", path=p, hint="use a .nii.gz name")
            if p.resolve() in resolved_inputs:
                raise InputError(f"the {what} would overwrite an input", path=p)
            check_out_file(p, force=force)  # exists, read-only, a folder: refused before the model loads
        plans.append((path, target, att))
    names = [p for _, t, a in plans for p in (t, a) if p is not None]
    if len({p.resolve() for p in names}) != len(names):
        raise InputError("two inputs would write the same output", hint="give inputs distinct names")
    for folder in {p.parent for p in names}:
        clean_stale_temps(folder)  # temporaries of a killed earlier run
    return plans


# -- the model on square batches -------------------------------------------------------------
def translate_arrays(model, images: Sequence[np.ndarray], to: str, batch_size: int,
                     regions: Sequence[np.ndarray] | None = None
                     ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Translate (C, H, W) arrays in [-1, 1] of any size, ``batch_size`` at a time; yields
    (translated (C, H, W) in [-1, 1], attention (1, H, W) in [0, 1] or None) at each input's size.
    ``regions``: one (H, W) bool mask per image, passed to the model as ``region`` at its resolution."""
    import torch

    if to not in DIRECTIONS:
        raise InputError(f"--to must be 'tumor' or 'normal', not {to!r}")
    for start in range(0, len(images), max(1, batch_size)):
        chunk = images[start:start + max(1, batch_size)]
        squares, geometries = zip(*(to_square(img, model.res, pad_value=-1.0) for img in chunk))
        x = torch.from_numpy(np.stack(squares))
        if regions is None:
            y, attention = model.translate(x, to=to)
        else:
            region = np.stack([roi.square_region(r, model.res) for r in regions[start:start + len(chunk)]])
            y, attention = model.translate(x, to=to, region=torch.from_numpy(region))
        y = y.detach().float().clamp(-1, 1).cpu().numpy()
        att = None if attention is None else attention.detach().float().clamp(0, 1).cpu().numpy()
        for i, geo in enumerate(geometries):
            yield from_square(y[i], geo), None if att is None else from_square(att[i], geo)


# -- images ----------------------------------------------------------------------------------
def read_image(path: Path, channels: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A PNG/JPEG as (C, H, W) in [-1, 1] plus how to write it back (PNG mode, intensity mapping).

    Grey models read as the data layer reads training images (8-bit: ``uint8`` mapping; 16-bit:
    per-image percentiles, written back as 16-bit); RGB models read 8-bit RGB.
    """
    from medsyn_cli.data.readers import read_image_raw

    if channels == 1:
        raw, mapping = read_image_raw(path)
        mode = "L" if mapping.get("kind") == "uint8" else "I;16"
        return apply_mapping(raw, mapping)[None], {"mapping": mapping, "mode": mode, "raw": raw[None]}
    from PIL import UnidentifiedImageError

    from medsyn_cli.data.limits import open_image

    try:
        with open_image(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read image: {exc}", path=path) from None
    mapping = {"kind": "uint8"}
    return apply_mapping(arr, mapping), {"mapping": mapping, "mode": "RGB", "raw": arr}


def write_png(arr: np.ndarray, target: Path, mode: str) -> None:
    """(C, H, W) raw-scale values -> a PNG of ``mode`` ("L", "RGB" or "I;16"), written atomically."""
    from PIL import Image

    if mode == "I;16":
        pil = Image.fromarray(np.clip(np.rint(arr[0]), 0, 65535).astype(np.uint16))
    else:
        data = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        pil = Image.fromarray(data[0] if mode == "L" else data.transpose(1, 2, 0), mode=mode)
    with atomic_path(target) as tmp:
        pil.save(tmp, format="PNG")


def translate_image(model, path: Path, target: Path, to: str, attention_target: Path | None = None,
                    region_path: Path | None = None, mask_target: Path | None = None) -> Outcome:
    """``region_path``: a mask of the image's size; outside it the output keeps the input's pixels.
    ``mask_target``: a 0/255 PNG of what changed (translation_regions.changed_mask)."""
    image, how = read_image(path, model.channels)
    region = None if region_path is None else roi.read_region_image(region_path, image.shape[1:])
    (y, att), = translate_arrays(model, [image], to, 1, None if region is None else [region])
    out = invert_mapping(y, how["mapping"])
    if region is not None:
        region = roi.effective_region(region, model.res, path)
        out = np.where(region[None], out, how["raw"])  # outside: the input's own values
        att = None if att is None else np.where(region[None], att, 0.0)
    write_png(out, target, how["mode"])
    if attention_target is not None and att is not None:
        write_png(att * 255.0, attention_target, "L")
    outcome = Outcome(path, target, attention_target if att is not None else None, 1, 0)
    if mask_target is not None:
        changed = roi.changed_mask(image, y, att, region, region=region is not None)
        write_png(changed[None] * 255.0, mask_target, "L")
        outcome.mask, outcome.mask_pixels = mask_target, int(changed.sum())
    return outcome


# -- volumes ---------------------------------------------------------------------------------
def brain_mask(volume: np.ndarray) -> np.ndarray:
    """The head: voxels above the volume's minimum (the 0 background of BraTS and most skull-stripped
    MRI; the same foreground rule ``medsyn data`` uses for the percentiles)."""
    return volume > volume.min()


def percentiles_of(intensity: dict[str, Any] | None, domain: str | None = None) -> tuple[float, float]:
    """The (low, high) percentiles the model's training images were mapped with, if recorded.

    ``intensity`` is what a run records: one mapping, a ``per_source`` one, or (translation runs)
    ``{"normal": ..., "tumor": ...}``, where the input's ``domain`` is looked at first.
    """
    found = _find_percentiles(intensity, domain)
    return found if found is not None else DEFAULT_PERCENTILES


def _find_percentiles(intensity: Any, domain: str | None = None) -> tuple[float, float] | None:
    if not isinstance(intensity, dict):
        return None
    if intensity.get("kind") == "percentile":
        return float(intensity["low"]), float(intensity["high"])
    if intensity.get("kind") == "per_source":
        candidates = list(intensity.get("by_source", {}).values())
    else:  # one mapping per domain
        order = ([domain] if domain else []) + [d for d in DIRECTIONS if d != domain]
        candidates = [intensity[d] for d in order if d in intensity]
    for mapping in candidates:
        found = _find_percentiles(mapping)
        if found is not None:
            return found
    return None


def output_dtype(img) -> np.dtype:
    """The input's integer dtype when it has no scaling (values are rounded and clipped to it),
    float32 otherwise (float inputs, and scaled integers whose raw values are not the intensities)."""
    dtype = np.dtype(img.get_data_dtype())
    slope, inter = img.header.get_slope_inter() if hasattr(img.header, "get_slope_inter") else (None, None)
    scaled = (slope is not None and slope != 1) or (inter is not None and inter != 0)
    if dtype.kind in "iu" and not scaled:
        return dtype
    return np.dtype(np.float32)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def check_volume_header(path: Path, volume_index: int | None) -> None:
    """Fail fast, from the header alone, on what :func:`read_volume_3d` would refuse (2D, 4D
    without an index, an index out of range, more data than the file or the memory limit allows),
    before a model is loaded."""
    import nibabel as nib

    from medsyn_cli.data.limits import check_nifti

    try:
        img = nib.load(str(path))
        shape = tuple(int(s) for s in img.shape)
    except Exception:
        return  # unreadable: the reader reports it with its own message
    if len(shape) == 4 and shape[3] == 1:
        volume_index = 0
    elif len(shape) < 3:
        raise InputError(f"a {len(shape)}D NIfTI image (shape {shape}) where a 3D volume is expected", path=path,
                         hint="translate 2D slices as PNG")
    if len(shape) > 4 or (len(shape) == 4 and volume_index is None):
        raise InputError(f"a {len(shape)}D volume (shape {shape}); translate works on one 3D volume", path=path,
                         hint="pick one with --volume-index I")
    if len(shape) == 4 and not 0 <= volume_index < shape[3]:
        raise InputError(f"volume index {volume_index} out of range for {shape[3]} volumes", path=path)
    check_nifti(img, path, volume_index)


def read_volume_3d(path: Path, volume_index: int | None):
    """(3D float32 array in on-disk voxel order, nibabel image); a 2D file or a 4D one without an
    index is an InputError (raised by the data layer's reader)."""
    from medsyn_cli.data.readers import read_volume

    volume, img = read_volume(path, volume_index=volume_index)
    if volume.ndim != 3:
        raise InputError(f"expected a 3D volume, got shape {volume.shape}", path=path)
    return volume, img


def translate_volume(model, path: Path, target: Path, to: str, attention_target: Path | None = None, *,
                     batch_size: int = 16, volume_index: int | None = None,
                     intensity: dict[str, Any] | None = None,
                     check_volume: Callable[[Path, np.ndarray], None] | None = None,
                     region_path: Path | None = None, mask_target: Path | None = None) -> Outcome:
    """Translate every axial slice that holds brain; write a NIfTI like the input.

    Slices are cut exactly as ``medsyn data`` cuts training slices (RAS axial, rotated for display,
    :func:`medsyn_cli.data.volumes.slice_volume`) and put back by the exact inverse. ``region_path``: a
    NIfTI mask of the volume's shape, cut the same way; only brain voxels inside it change.
    ``mask_target``: a uint8 0/1 NIfTI of what changed (translation_regions.changed_mask).
    """
    from medsyn_cli.data.volumes import assemble_volume, slice_volume

    if model.channels != 1:
        raise InputError(f"this model has {model.channels} channels; a NIfTI volume has one", path=path,
                         hint="use a one-channel model for volumes")
    volume, img = read_volume_3d(path, volume_index)
    if check_volume is not None:  # e.g. a CT volume for an MR model (medsyn_cli.domain_check)
        check_volume(path, volume)
    brain = brain_mask(volume)
    low, high = percentiles_of(intensity, "normal" if to == "tumor" else "tumor")
    mapping = percentile_mapping(volume, low, high, mask=brain)

    planes = [plane for _, plane in slice_volume(volume, "axial", img.affine)]
    inside = [plane_mask for _, plane_mask in slice_volume(brain, "axial", img.affine)]
    if region_path is not None:  # the change may happen only in brain inside the region
        where = slice_volume(roi.read_region_volume(region_path, volume.shape), "axial", img.affine)
        inside = [m & w for m, (_, w) in zip(inside, where)]
    todo = [k for k, m in enumerate(inside) if m.any()]  # slices without brain (or region) are left alone
    result = [p.astype(np.float64) for p in planes]  # outside the brain: the input's exact values
    attention = [np.zeros(p.shape, np.float32) for p in planes] if attention_target is not None else None
    changed = [np.zeros(p.shape, np.uint8) for p in planes] if mask_target is not None else None
    got_attention, kept = False, 0
    mapped = [apply_mapping(planes[k], mapping)[None] for k in todo]
    regions = None if region_path is None else [inside[k] for k in todo]
    for i, (k, (y, att)) in enumerate(zip(todo, translate_arrays(model, mapped, to, batch_size, regions))):
        keep = inside[k] if regions is None else roi.effective_region(inside[k], model.res)
        result[k][keep] = invert_mapping(y[0], mapping)[keep]
        kept += int(keep.sum())
        if attention is not None and att is not None:
            attention[k] = np.where(keep, att[0], 0.0).astype(np.float32)
            got_attention = True
        if changed is not None:
            changed[k] = roi.changed_mask(mapped[i], y, att, keep, region=regions is not None)
    if regions is not None and not kept:
        warn(f"{path}: the region (--where) holds no brain at the model's resolution {model.res}; nothing changed")

    dtype = output_dtype(img)
    roi.save_like(_cast(assemble_volume(result, "axial", img.affine), dtype), img, target)
    if attention is not None and got_attention:
        roi.save_like(assemble_volume(attention, "axial", img.affine).astype(np.float32), img,
                      attention_target)
    outcome = Outcome(path, target, attention_target if got_attention else None, len(todo),
                      len(planes) - len(todo), {"dtype": str(dtype), "mapping": mapping})
    if changed is not None:
        roi.save_like(assemble_volume(changed, "axial", img.affine).astype(np.uint8), img, mask_target)
        outcome.mask, outcome.mask_pixels = mask_target, int(sum(int(c.sum()) for c in changed))
    return outcome
