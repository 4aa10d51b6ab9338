"""How much memory one input file may claim, checked from its header before anything is allocated.

A header can claim any size: a 0.5 MB ``.nii.gz`` saying 4000 x 4000 x 400 voxels, a PNG saying 30000 x 30000
pixels. Every reader asks here first, so such a file is refused in milliseconds with one line, instead of
the process growing until allocation fails.

* The limit is what one image or volume takes as 32-bit floats (how medsyn holds it): by default
  :data:`DEFAULT_GIB` GiB, far above any real scan; the setting ``max_input_gib`` raises it
  (``MEDSYN_MAX_INPUT_GIB``, or ``[data] max_input_gib`` in config.toml).
* A header is also checked against the file's size where the format allows: raw voxel data must fit in
  the file, and deflate (``.gz``, ``.npz``) cannot expand data more than :data:`DEFLATE_RATIO` times.
* PIL's own decompression-bomb guard is set to the same limit, its warning silenced and its error turned
  into the same one line.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import zipfile
from pathlib import Path
from typing import Iterator

from medsyn_cli.errors import InputError

DEFAULT_GIB = 2.0
SETTING = "max_input_gib"
#: zlib's largest compression factor: deflated data never expands beyond this many times its size.
DEFLATE_RATIO = 1032
_FLOAT_BYTES = 4


def max_input_bytes() -> int:
    """The limit per image or volume, in bytes (the setting ``max_input_gib``)."""
    from medsyn_cli.config import setting

    return int(setting(SETTING, None, DEFAULT_GIB, cast=float, section="data", check=_positive_gib) * (1 << 30))


def _positive_gib(gib: float) -> float:
    if not (math.isfinite(gib) and gib > 0):
        raise InputError("expected a positive number of GiB")
    return gib


def _size(n: float) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def check_claim(values: int, path: Path, what: str, limit: int | None = None) -> None:
    """Refuse an input whose header claims more than the limit (``values`` numbers held as float32)."""
    limit = max_input_bytes() if limit is None else limit
    need = values * _FLOAT_BYTES
    if need > limit:
        gib = max(math.ceil(need / (1 << 30)), 1)
        raise InputError(f"{what} takes {_size(need)} in memory, more than medsyn's limit of {_size(limit)} per image "
                         "or volume", path=path,
                         hint=f"if the file is genuine, raise the limit: MEDSYN_MAX_INPUT_GIB={gib}, or "
                              f"{SETTING} = {gib} in the [data] table of config.toml")


def check_stored(claimed: int, path: Path, what: str, *, stored: int, deflated: bool) -> None:
    """Refuse a header claiming more data bytes than its file can hold: ``stored`` bytes raw, or at most
    :data:`DEFLATE_RATIO` times ``stored`` when deflated."""
    room = stored * DEFLATE_RATIO if deflated else stored
    if claimed > room:
        held = f"a {_size(stored)} compressed file holds at most {_size(room)}" if deflated else \
            f"the file holds {_size(stored)}"
        raise InputError(f"truncated or corrupt {what}: the header describes {_size(claimed)} of data; {held}",
                         path=path, hint="the header does not match the data; re-export the file")


# ---------------------------------------------------------------- per format


def check_nifti(img, path: Path, volume_index: int | None) -> None:
    """A loaded (not yet read) nibabel image: its voxel data against the file and the limit."""
    shape = tuple(int(s) for s in img.shape)
    itemsize = img.get_data_dtype().itemsize
    offset = int(getattr(img.header, "get_data_offset", lambda: 0)())
    stored = Path(path).stat().st_size
    gz = Path(path).name.lower().endswith(".gz")
    check_stored(offset + math.prod(shape) * itemsize, path, "NIfTI data", stored=stored, deflated=gz)
    one = math.prod(shape[:3]) if len(shape) == 4 and volume_index is not None else math.prod(shape)
    check_claim(one, path, f"a volume of {' x '.join(map(str, shape))} voxels")


def check_dicom(ds, path: Path) -> None:
    """A DICOM header read without its pixel data: the frames against the file and the limit."""
    rows, cols = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    bits = int(getattr(ds, "BitsAllocated", 16) or 16)
    values = rows * cols * frames * spp
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not syntax.is_compressed:
        check_stored(values * bits // 8, path, "DICOM pixel data", stored=Path(path).stat().st_size, deflated=False)
    check_claim(values, path, f"{frames} frame(s) of {rows} x {cols} pixels")


def check_array_file(path: Path) -> None:
    """``.npy`` / ``.npz``: every array's header against the file (or zip member) and the limit."""
    p = Path(path)
    if p.name.lower().endswith(".npz"):
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                with zf.open(info) as fh:
                    shape, dtype = _npy_header(fh, p)
                _check_array(shape, dtype, p, stored=info.compress_size,
                             deflated=info.compress_type != zipfile.ZIP_STORED)
        return
    with open(p, "rb") as fh:
        shape, dtype = _npy_header(fh, p)
        _check_array(shape, dtype, p, stored=p.stat().st_size - fh.tell(), deflated=False)


def _npy_header(fh, path: Path):
    import numpy as np

    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable NumPy array ({str(exc).splitlines()[0][:160]})", path=path) from None
    return shape, dtype


def _check_array(shape, dtype, path: Path, *, stored: int, deflated: bool) -> None:
    values = math.prod(shape)
    check_stored(values * dtype.itemsize, path, "NumPy data", stored=stored, deflated=deflated)
    check_claim(values * max(1, dtype.itemsize // _FLOAT_BYTES), path,
                f"an array of shape {tuple(shape)} ({dtype})")


@functools.cache
def _pil():
    """PIL with its bomb warning silenced: the limit below refuses the same images with one line."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


@contextlib.contextmanager
def open_image(path: Path) -> Iterator:
    """``PIL.Image.open`` that refuses, from the header, an image above the limit (PIL's guard set to it)."""
    Image = _pil()
    limit = max_input_bytes()
    # PIL's guard is a module global: set it for this open only, so that a small limit does not leak into
    # every other Image.open in the process (figures, reports, a caller's own code).
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limit // _FLOAT_BYTES
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:  # above twice its limit PIL refuses before showing the size
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 2 * (limit // _FLOAT_BYTES) + 1
        check_claim(pixels, path, f"an image of {pixels:,} pixels", limit)
        raise  # pragma: no cover - check_claim refused it
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with img:
        check_claim(img.width * img.height, path, f"a {img.width} x {img.height} image", limit)
        yield img
