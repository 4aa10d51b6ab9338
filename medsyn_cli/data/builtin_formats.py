"""The built-in file formats, a default plugin: registered through ``register_formats`` like a third party's.

Each ``read`` gives every 2D image of a file mapped to [-1, 1] by the same rules training uses
(:mod:`medsyn_cli.data.readers`, :mod:`medsyn_cli.data.volumes`); NIfTI and multi-frame DICOM are
sliced axially with empty slices dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsyn_cli.data import readers
from medsyn_cli.data.intensity import apply_mapping
from medsyn_cli.formats import FileFormat, Plane
from medsyn_cli.hookspecs import hookimpl


def read_image(path: Path) -> list[Plane]:
    raw, mapping = readers.read_image_raw(path)
    return [(path.name, apply_mapping(raw, mapping)[None].astype(np.float32), mapping)]


def write_png(image: np.ndarray, path: Path) -> None:
    """(C, H, W) in [-1, 1] -> 8-bit PNG (grey for one channel), as ``medsyn sample`` writes."""
    from PIL import Image

    pixels = np.clip(np.rint((np.asarray(image, dtype=np.float64) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    Image.fromarray(pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1)).save(path, format="PNG")


def read_nifti(path: Path) -> list[Plane]:
    from medsyn_cli.data.volumes import volume_mapping, volume_slices

    vol, img = readers.read_volume(path)
    mapping = volume_mapping(vol)
    return [(f"{path.name}#z={k}", plane[None].astype(np.float32), mapping)
            for k, plane in volume_slices(vol, img.affine, "axial", mapping)]


def read_dicom(path: Path) -> list[Plane]:
    from medsyn_cli.data.volumes import keep_slice, volume_mapping

    frames, info = readers.read_dicom(path)
    mapping = volume_mapping(frames, info["modality"] if info["modality"] == "CT" else "MR")
    planes = []
    for k, frame in enumerate(frames):
        mapped = apply_mapping(frame, mapping)
        if len(frames) > 1 and not keep_slice(mapped):  # a multi-frame file is a volume
            continue
        planes.append((f"{path.name}#frame={k}" if len(frames) > 1 else path.name, mapped[None], mapping))
    return planes


def read_array(path: Path) -> list[Plane]:
    arr = readers.read_array(path)
    mapping = readers.array_mapping(arr)
    return [(f"{path.name}#{k}", apply_mapping(a, mapping).astype(np.float32), mapping) for k, a in enumerate(arr)]


IMAGE = FileFormat("image", (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".webp"),
                   "2D images (PNG, JPEG, TIFF, BMP, PGM/PPM, WebP)", read_image, write=write_png)
NIFTI = FileFormat("nifti", (".nii", ".nii.gz"), "NIfTI volumes", read_nifti)
DICOM = FileFormat("dicom", (".dcm", ".dicom"), "DICOM", read_dicom, sniff=readers.has_dicom_preamble)
ARRAY = FileFormat("array", (".npy", ".npz"), "NumPy stacks (.npy/.npz)", read_array)


@hookimpl
def register_formats(register):
    for fmt in (IMAGE, NIFTI, DICOM, ARRAY):
        register(fmt)
