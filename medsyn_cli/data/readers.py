"""Readers: one function per format, each returning raw arrays plus what is needed to map them.

Every reader turns a user's bad file into :class:`~medsyn_cli.errors.InputError` naming the file, so the
CLI prints one line and exits 2. Supported inputs:

* 2D images: PNG, JPEG, TIFF, BMP in any Pillow mode; colour is converted to grey (ITU-R 601 luma).
* NIfTI volumes (``.nii``, ``.nii.gz``): 3D, or 4D with a volume index.
* DICOM (``.dcm``/``.dicom`` or any file with the ``DICM`` preamble): CT in HU via RescaleSlope/Intercept
  (also from the enhanced multi-frame functional groups), MR as stored; multi-frame files give one plane
  per frame.
* NumPy stacks (``.npy``, ``.npz``): (H, W), (N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3}.

Which file is which format is decided by the format registry (:mod:`medsyn_cli.formats`; these
formats are registered by :mod:`medsyn_cli.data.builtin_formats`), as for every other command.

Every reader passes float data through :func:`medsyn_cli.data.finite.check_finite`: inf, all-NaN or
more than 1 % NaN is refused naming the file; a few NaN become the background, with a warning. Before
reading, every header is checked against the file's size and the memory limit
(:mod:`medsyn_cli.data.limits`), so a file claiming a huge size is refused without allocating it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.data import limits
from medsyn_cli.data.finite import check_finite, narrow_floats
from medsyn_cli.data.intensity import apply_mapping, percentile_mapping, uint8_mapping
from medsyn_cli.errors import InputError, from_os_error

#: What to do about an input medsyn may not read.
UNREADABLE_HINT = "make it readable (chmod +r), or move it out of the inputs"


def check_readable(path: Path) -> None:
    """An input the user may not read is named as such, before a library calls it corrupt (or a
    training run reads it as a fault of its output)."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise from_os_error(exc, hint=UNREADABLE_HINT) from None


def file_kind(path: str | Path) -> str | None:
    """``image``, ``nifti``, ``dicom``, ``array``, a plugin format's name, or None for a file no
    registered format reads (the one format registry, :mod:`medsyn_cli.formats`, decides)."""
    from medsyn_cli.formats import kind_of

    return kind_of(path)


def has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _walk(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted by relative path."""
    files = [p for p in folder.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def list_images(folder: str | Path) -> list[Path]:
    """The 2D image files (PNG/JPEG/TIFF/BMP/...) under ``folder``, recursively, sorted."""
    return [p for p in _walk(Path(folder)) if file_kind(p) == "image"]


def list_inputs(folder: str | Path) -> list[Path]:
    """Every file under ``folder`` that a registered format reads (images, NIfTI, DICOM, NumPy, plugins'), sorted."""
    return [p for p in _walk(Path(folder)) if file_kind(p) is not None]


# ---------------------------------------------------------------- 2D images


def read_image_raw(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """One 2D image as a grey (H, W) array in its own scale, plus the mapping to [-1, 1].

    8-bit modes (1, L, P, RGB, RGBA, CMYK, ...) are converted to L and use the ``uint8`` mapping;
    16-bit and float modes use a per-image percentile mapping (0.5 / 99.5).
    """
    from PIL import ImageOps, UnidentifiedImageError

    p = Path(path)
    check_readable(p)
    try:
        with limits.open_image(p) as img:
            img.load()  # decode now: a truncated or corrupt file fails here, not later
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                arr = check_finite(np.asarray(img, dtype=np.float32), p)
                return arr, percentile_mapping(arr)
            if mode != "L":
                img = img.convert("L")
            return np.asarray(img, dtype=np.uint8), uint8_mapping()
    except FileNotFoundError as exc:
        raise InputError("no such file", path=p) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"corrupt or unreadable image ({_reason(exc)})", path=p) from exc


def read_image(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """One 2D image -> ((1, H, W) float32 in [-1, 1], its intensity mapping)."""
    raw, mapping = read_image_raw(path)
    return apply_mapping(raw, mapping)[None], mapping


# ---------------------------------------------------------------- NIfTI


def read_volume(path: str | Path, volume_index: int | None = None):
    """A 3D NIfTI volume -> (float32 array (X, Y, Z) in voxel order, the nibabel image).

    A 4D volume needs ``volume_index`` (a trailing axis of length 1 is dropped); a 2D image, a
    truncated or corrupt file is an :class:`InputError`.
    """
    import nibabel as nib

    p = Path(path)
    check_readable(p)
    try:
        img = nib.load(str(p))
    except FileNotFoundError as exc:
        raise InputError("no such file", path=p) from exc
    except Exception as exc:  # nibabel raises many types for a bad header
        raise InputError(f"not a readable NIfTI file ({_reason(exc)})", path=p) from exc
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1 and volume_index is None:
        volume_index = 0
    if len(shape) < 3:
        raise InputError(f"a {len(shape)}D NIfTI image (shape {shape}) where a 3D volume is expected", path=p)
    if len(shape) > 4 or (len(shape) == 4 and volume_index is None):
        raise InputError(f"a {len(shape)}D volume (shape {shape}); medsyn slices 3D volumes", path=p,
                         hint="save each 3D volume as its own file first (e.g. with fslsplit)")
    if len(shape) == 4 and not 0 <= volume_index < shape[3]:
        raise InputError(f"volume index {volume_index} out of range for {shape[3]} volumes", path=p)
    limits.check_nifti(img, p, volume_index)
    try:
        data = img.dataobj[..., volume_index] if len(shape) == 4 else img.dataobj[...]
        arr = narrow_floats(np.asarray(data), p).astype(np.float32, copy=False)
    except InputError:
        raise
    except Exception as exc:  # EOFError / zlib.error / OSError on a truncated .nii.gz
        raise InputError(f"truncated or corrupt NIfTI data ({_reason(exc)})", path=p) from exc
    return check_finite(arr, p), img


# ---------------------------------------------------------------- DICOM


def read_dicom(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A DICOM file -> ((F, H, W) float32 frames, info).

    CT frames are in Hounsfield units (RescaleSlope/Intercept applied, from the classic tags or the
    enhanced functional groups); other modalities are returned as stored (MONOCHROME1 inverted so
    bright means high signal). ``info`` holds modality, series UID, photometric interpretation and
    the file's own window (if any).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    check_readable(p)
    try:
        ds = pydicom.dcmread(str(p), defer_size="64 KB")  # the pixel data is read once the header is checked
        limits.check_dicom(ds, p)
        pixels = ds.pixel_array
    except FileNotFoundError as exc:
        raise InputError("no such file", path=p) from exc
    except (InvalidDicomError, AttributeError, ValueError, OSError, RuntimeError, NotImplementedError) as exc:
        raise InputError(f"not a readable DICOM image ({_reason(exc)})", path=p) from exc
    frames_n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    arr = narrow_floats(np.asarray(pixels), p).astype(np.float32, copy=False)
    arr = check_finite(arr, p)  # before MONOCHROME1's max + min
    if spp == 3:  # colour DICOM: ITU-R 601 luma, like Pillow's L
        arr = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    if frames_n == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InputError(f"unsupported DICOM pixel data of shape {tuple(pixels.shape)}", path=p)
    modality = str(getattr(ds, "Modality", "") or "").upper()
    slope, intercept = _rescale(ds)
    arr = arr * slope + intercept
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1" and modality != "CT":
        arr = arr.max() + arr.min() - arr
    info = {"modality": modality or "OT", "series": str(getattr(ds, "SeriesInstanceUID", "") or p.name),
            "photometric": photometric, "frames": int(arr.shape[0]),
            "rescale": [float(slope), float(intercept)]}
    return arr.astype(np.float32), info


def _rescale(ds) -> tuple[float, float]:
    """(slope, intercept): classic tags, else the enhanced multi-frame Pixel Value Transformation."""
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        return float(getattr(ds, "RescaleSlope", 1.0) or 1.0), float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    for group_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = getattr(ds, group_name, None)
        if not groups:
            continue
        seq = getattr(groups[0], "PixelValueTransformationSequence", None)
        if seq:
            item = seq[0]
            return float(getattr(item, "RescaleSlope", 1.0) or 1.0), float(getattr(item, "RescaleIntercept", 0.0) or 0.0)
    return 1.0, 0.0


# ---------------------------------------------------------------- NumPy


def read_array(path: str | Path) -> np.ndarray:
    """A .npy/.npz stack -> (N, C, H, W) float32 (values as stored). ``.npz``: key ``images`` or the first."""
    p = Path(path)
    check_readable(p)
    try:
        limits.check_array_file(p)
        if p.name.lower().endswith(".npz"):
            with np.load(p, allow_pickle=False) as npz:
                if not npz.files:
                    raise InputError("empty .npz archive", path=p)
                arr = npz["images" if "images" in npz.files else npz.files[0]]
        else:
            arr = np.load(p, allow_pickle=False)
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise InputError("no such file", path=p) from exc
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable NumPy array ({_reason(exc)})", path=p) from exc
    if arr.dtype.kind not in "uif b":
        raise InputError(f"unsupported array dtype {arr.dtype}", path=p)
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[1] not in (1, 3) and arr.shape[3] in (1, 3):
        arr = np.moveaxis(arr, 3, 1)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise InputError(f"unsupported array shape {tuple(arr.shape)}", path=p,
                         hint="use (H,W), (N,H,W), (N,C,H,W) or (N,H,W,C) with C in 1 or 3")
    return check_finite(narrow_floats(np.asarray(arr), p), p)


def array_mapping(arr: np.ndarray) -> dict[str, Any]:
    """uint8 -> ``uint8``; floats already in [-1, 1] -> identity ``range``; else percentiles."""
    if arr.dtype == np.uint8:
        return uint8_mapping()
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if arr.dtype.kind == "f" and lo >= -1.0 and hi <= 1.0:
        return {"kind": "range", "lo_value": -1.0, "hi_value": 1.0}
    return percentile_mapping(arr)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
