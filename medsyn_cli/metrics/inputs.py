"""One side of an evaluation: image files, NIfTI volumes, ``.npy``/``.npz`` stacks, or ``-``.

Every image ends up as uint8 (H, W, 3), exactly as pytorch-fid feeds it: image files go through
``PIL.Image.open(path).convert("RGB")`` (grey replicated, alpha dropped, palettes expanded);
arrays are mapped to uint8 by the rule in :func:`array_to_uint8` and grey is replicated.

What a side may be:

* a folder: its files of any registered format (:mod:`medsyn_cli.formats`: images ``bmp jpg jpeg
  pgm png ppm tif tiff webp`` in any letter case, volumes ``.nii``/``.nii.gz``, DICOM, ``.npy``/``.npz``
  and the formats plugins add), not searched recursively, sorted by name (as pytorch-fid does);
* a single image file, a NIfTI volume (sliced, see :func:`volume_images`), an array stack, or a
  file of another registered format (its reader's planes, mapped from [-1, 1] to uint8);
* ``-``: paths read from stdin, one per line, each any of the above.
"""

from __future__ import annotations

import hashlib
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from medsyn_cli.data.limits import check_array_file
from medsyn_cli.errors import InputError

from medsyn_cli.formats import format_of, suffixes


def _image_suffixes() -> str:
    return " ".join(e.lstrip(".") for e in suffixes("image"))


@dataclass
class FilePart:
    """Image files decoded one by one (lazily, in worker threads)."""

    files: list[Path]

    def __len__(self) -> int:
        return len(self.files)


@dataclass
class ArrayPart:
    """Images already in memory: uint8 (N, H, W, C), C = 1 or 3."""

    images: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class ImageInput:
    """The images of one side, in a fixed order, and where they came from."""

    spec: str
    parts: list[FilePart | ArrayPart] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # "images", "volume", "array"

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def describe(self) -> dict:
        return {"spec": self.spec, "count": len(self), "kinds": sorted(self.kinds)}

    def content_digest(self) -> str:
        """sha256 over the images' content in order: file bytes for files, pixels for arrays."""
        h = hashlib.sha256()
        for part in self.parts:
            if isinstance(part, FilePart):
                for f in part.files:
                    try:
                        h.update(b"file:" + _file_digest(f))
                    except OSError as exc:
                        raise InputError(f"cannot read file: {exc.strerror or exc}", path=f) from None
            else:
                arr = np.ascontiguousarray(part.images)
                h.update(f"array:{arr.shape}:{arr.dtype}".encode())
                h.update(hashlib.sha256(arr.data).digest())
        return h.hexdigest()


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.digest()


def read_image_file(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) exactly as pytorch-fid reads it: ``Image.open(path).convert("RGB")``."""
    from PIL import UnidentifiedImageError

    from medsyn_cli.data.limits import open_image

    try:
        with open_image(path) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = "not an image or a corrupt one" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise InputError(f"cannot read image: {reason}", path=path) from None
    return np.asarray(rgb)


def array_to_uint8(arr: np.ndarray, source: str, value_range: str = "auto") -> np.ndarray:
    """A stack (N,H,W), (N,C,H,W), (N,H,W,C) or one image (H,W) -> uint8 (N, H, W, C).

    Layout: 2-D is one grey image; 3-D is (N, H, W); 4-D is (N, C, H, W) when axis 1 is 1 or 3,
    else (N, H, W, C) when the last axis is 1 or 3 (channels first wins when both could be).
    Values: uint8 as is; floats in [0, 1] times 255; floats with negatives (medsyn's [-1, 1])
    as ``(x + 1) * 127.5``; rounded to nearest. ``value_range`` "unit"/"signed" forces a reading.
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None, :, :, None]
    elif a.ndim == 3:
        a = a[..., None]
    elif a.ndim == 4:
        if a.shape[1] in (1, 3):
            a = np.moveaxis(a, 1, -1)
        elif a.shape[-1] not in (1, 3):
            raise InputError(f"array of shape {tuple(arr.shape)} has no channel axis of size 1 or 3",
                             path=source, hint="use (N,H,W), (N,C,H,W) or (N,H,W,C) with C = 1 or 3")
    else:
        raise InputError(f"array of shape {tuple(arr.shape)} is not an image stack", path=source,
                         hint="use (N,H,W), (N,C,H,W) or (N,H,W,C)")
    if a.shape[0] == 0:
        return np.zeros((0, 1, 1, a.shape[-1]), dtype=np.uint8)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype.kind not in "f":
        raise InputError(f"array dtype {a.dtype} is not supported", path=source,
                         hint="use uint8, or floats in [0, 1] or [-1, 1]")
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if not (np.isfinite(lo) and np.isfinite(hi)) or np.isnan(a).any():
        raise InputError("array holds NaN or infinite values", path=source)
    signed = value_range == "signed" or (value_range == "auto" and lo < 0)
    low = -1.0 if signed else 0.0
    tol = 1e-3  # float rounding of generator outputs
    if lo < low - tol or hi > 1.0 + tol:
        raise InputError(f"float values span [{lo:.4g}, {hi:.4g}], outside [{low:g}, 1]", path=source,
                         hint="scale to [0, 1] or [-1, 1], or save uint8 images")
    scaled = (a.astype(np.float64) + 1.0) * 127.5 if signed else a.astype(np.float64) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def load_array_file(path: Path, value_range: str = "auto") -> np.ndarray:
    """``.npy`` or ``.npz`` (key ``images``, else ``arr_0``, else its only array) -> uint8 NHWC."""
    try:
        check_array_file(path)  # a header claiming more than the file or the memory limit: refused unread
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                key = next((k for k in ("images", "arr_0") if k in keys), keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise InputError(f"npz has arrays {keys}; cannot tell which holds the images",
                                     path=path, hint="name the image array 'images'")
                arr = z[key]
        else:
            arr = np.load(path, allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read array: {exc}", path=path) from None
    return array_to_uint8(arr, str(path), value_range)


def volume_images(path: Path) -> np.ndarray:
    """Axial slices of a NIfTI volume as uint8 (N, H, W, 1), as medsyn's data loader makes them.

    The slices are those ``medsyn_cli.data.volumes`` keeps for training (empty slices dropped by its
    rule), mapped to [-1, 1] by the volume's intensity mapping (foreground percentiles for MRI, the
    soft-tissue window for CT), then to uint8 as ``(x + 1) * 127.5``: the scale a trained model's
    samples are written in, so real volumes and generated PNGs are compared on the same footing.
    """
    from medsyn_cli.data.readers import read_volume  # lazily: nibabel is only needed here
    from medsyn_cli.data.volumes import volume_mapping, volume_slices

    vol, img = read_volume(path)
    slices = volume_slices(vol, img.affine, "axial", volume_mapping(vol))
    if not slices:
        return np.zeros((0, 1, 1, 1), dtype=np.uint8)
    stack = np.stack([plane for _, plane in slices]).astype(np.float32)
    return array_to_uint8(stack, str(path), "signed")


def _add_path(inp: ImageInput, p: Path, value_range: str, files: list[Path]) -> None:
    """Append the images that ``p`` holds (files are collected into ``files`` to batch them)."""

    def flush() -> None:
        if files:
            inp.parts.append(FilePart(list(files)))
            files.clear()

    if not p.exists():
        raise InputError("no such file or directory", path=p)
    if p.is_dir():
        entries = sorted(q for q in p.iterdir() if q.is_file())
        usable = [q for q in entries if format_of(q) is not None]
        for q in usable:
            _add_path(inp, q, value_range, files)
        return
    fmt = format_of(p)
    kind = None if fmt is None else fmt.name
    if kind == "image":  # decoded later exactly as pytorch-fid does (PIL convert("RGB"))
        files.append(p)
        inp.kinds.add("images")
    elif kind == "nifti":
        flush()
        inp.parts.append(ArrayPart(volume_images(p), str(p)))
        inp.kinds.add("volume")
    elif kind == "array":
        flush()
        inp.parts.append(ArrayPart(load_array_file(p, value_range), str(p)))
        inp.kinds.add("array")
    elif fmt is not None:  # DICOM and plugin formats: their reader's planes, [-1, 1] -> uint8
        flush()
        for label, image, _ in fmt.read(p):
            inp.parts.append(ArrayPart(array_to_uint8(np.asarray(image, np.float32)[None], str(p), "signed"),
                                       f"{p}#{label}"))
        inp.kinds.add(kind)
    else:
        from medsyn_cli.data.datasets import supported

        raise InputError(f"not a file medsyn reads ({supported()})", path=p, hint="images: " + _image_suffixes())


def resolve_input(spec: str, *, value_range: str = "auto", stdin_lines: list[str] | None = None,
                  name: str = "input", allow_empty: bool = False) -> ImageInput:
    """Turn a command-line side (path or ``-``) into its images; errors name the side. ``allow_empty``:
    a folder without images at its top is returned empty (REAL, which preparation reads recursively)."""
    if spec == "-":
        lines = stdin_lines if stdin_lines is not None else sys.stdin.read().splitlines()
        paths = [Path(ln.strip()) for ln in lines if ln.strip()]
    else:
        paths = [Path(spec).expanduser()]
    inp = ImageInput(spec=spec)
    files: list[Path] = []
    for p in paths:
        _add_path(inp, p, value_range, files)
    if files:
        inp.parts.append(FilePart(files))
    if len(inp) == 0 and not allow_empty:
        where = "stdin" if spec == "-" else spec
        raise InputError(f"{name} side is empty: no images found", path=where,
                         hint="folders are not searched recursively; images: " + _image_suffixes())
    return inp


def iter_images(inp: ImageInput) -> Iterator[tuple[str, "np.ndarray | Path"]]:
    """(source, item) in order: a Path to decode for files, a uint8 (H, W, C) array otherwise."""
    for part in inp.parts:
        if isinstance(part, FilePart):
            for f in part.files:
                yield str(f), f
        else:
            for i in range(len(part)):
                yield f"{part.source}#{i}", part.images[i]


def load_item(item: "np.ndarray | Path") -> np.ndarray:
    """uint8 (H, W, 3) or (H, W, 1) for one item of :func:`iter_images`."""
    if isinstance(item, Path):
        return read_image_file(item)
    return item


def channel_count(img: np.ndarray) -> int:
    """1 when the image is grey (one channel, or three identical ones), else 3."""
    if img.shape[-1] == 1:
        return 1
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2]):
        return 1
    return 3
