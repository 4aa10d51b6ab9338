"""NIfTI volumes -> a folder of 2D slices for unconditional training (the HAGAN paper's ACDC and BraTS2018).

``medsyn data prepare slices SOURCE --out DIR`` uses this module. SOURCE is a NIfTI file or a folder
searched recursively. Which volumes are used:

* ``modality`` picks files by name: the stem (name without ``.nii``/``.nii.gz``) equals the modality
  or ends with ``_<modality>``, case-insensitively. ``flair`` matches BraTS's ``<case>_flair.nii.gz``
  and the ``FLAIR.nii.gz`` of per-case folders; ``4d`` matches ACDC's ``patientNNN_4d.nii.gz``.
* without ``modality`` every NIfTI file is used except label volumes (stem ``seg``/``gt``, ending in
  ``_seg`` or ``_gt``, or starting with ``gt_``).

How a volume becomes slices:

* a 3D volume is sliced along ``axis`` (axial by default, after reorientation to RAS, as
  :func:`medsyn_cli.data.volumes.slice_volume` does everywhere in medsyn);
* a 4D cine volume (X, Y, Z, T) gives the acquired 2D slices (voxel axis Z, no reorientation: the
  short-axis stack of a cardiac cine is oblique to the body axes) of the chosen frames only. ``ed`` and
  ``es`` are read from the ``Info.cfg`` beside the volume (ACDC's ``ED: 1`` / ``ES: 12``, 1-based);
  ``all`` takes every frame; numbers are 1-based frames;
* intensities are mapped per 3D volume (per frame for 4D) to [-1, 1] with
  :func:`medsyn_cli.data.volumes.volume_mapping` (0.5/99.5 percentiles of the voxels above the
  volume's minimum for MR, a CT window for CT); each mapping is recorded in ``intensity.json``;
* a slice is kept when at least ``min_foreground`` of its pixels lie above the volume's minimum (for
  skull-stripped BraTS: "has brain"); 0 keeps every slice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.data import readers
from medsyn_cli.data.intensity import Mapping, apply_mapping
from medsyn_cli.data.volumes import slice_volume, volume_mapping
from medsyn_cli.errors import InputError

MIN_FOREGROUND = 0.02
LABEL_STEMS = ("seg", "gt")


@dataclass
class SliceSet:
    """Kept slices (name -> image in [-1, 1]), their sources, the mapping per source volume, and counts."""

    images: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    mappings: dict[str, Mapping] = field(default_factory=dict)
    volumes: int = 0
    dropped: int = 0


def stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def is_label(path: Path) -> bool:
    s = stem(path).lower()
    return s in LABEL_STEMS or s.startswith("gt_") or any(s.endswith(f"_{k}") for k in LABEL_STEMS)


def matches(path: Path, modality: str) -> bool:
    s, m = stem(path).lower(), modality.lower()
    return s == m or s.endswith(f"_{m}")


def find_volumes(source: str | Path, modality: str | None = None) -> list[Path]:
    """The NIfTI files under ``source`` selected by ``modality`` (see the module docstring), sorted."""
    root = Path(source)
    if not root.exists():
        raise InputError("no such file or directory", path=root)
    files = [root] if root.is_file() else [p for p in readers.list_inputs(root) if readers.file_kind(p) == "nifti"]
    if root.is_file() and readers.file_kind(root) != "nifti":
        raise InputError("not a NIfTI file (.nii or .nii.gz)", path=root)
    chosen = [p for p in files if (matches(p, modality) if modality else not is_label(p))]
    if not chosen:
        what = f"no NIfTI volume named *_{modality} or {modality}" if modality else "no NIfTI volume"
        raise InputError(f"{what} found", path=root, hint="check --modality (e.g. flair, t1, 4d)")
    return chosen


def cine_frames(path: Path, frames: str, n_frames: int) -> list[tuple[str, int]]:
    """``(tag, 0-based index)`` of the frames ``frames`` asks for in a 4D volume with ``n_frames``."""
    tokens = [t.strip().lower() for t in frames.split(",") if t.strip()]
    info: dict[str, str] | None = None
    out: list[tuple[str, int]] = []
    for t in tokens:
        if t == "all":
            out += [(f"t{i + 1:02d}", i) for i in range(n_frames)]
        elif t in ("ed", "es"):
            if info is None:
                info = read_info_cfg(path.parent / "Info.cfg")
            if t.upper() not in info:
                raise InputError(f"no {t.upper()} entry", path=path.parent / "Info.cfg")
            out.append((t, _frame_index(info[t.upper()], n_frames, path)))
        else:
            out.append((f"t{t}", _frame_index(t, n_frames, path)))
    if not out:
        raise InputError(f"--frames {frames!r} names no frame", hint="e.g. --frames ed,es or --frames all")
    return out


def _frame_index(text: str, n_frames: int, path: Path) -> int:
    try:
        k = int(text)
    except ValueError:
        raise InputError(f"frame {text!r} is not ed, es, all or a 1-based number", path=path) from None
    if not 1 <= k <= n_frames:
        raise InputError(f"frame {k} is outside 1..{n_frames}", path=path)
    return k - 1


def read_info_cfg(path: Path) -> dict[str, str]:
    """ACDC's ``Info.cfg`` (``KEY: value`` lines) as a dict with upper-case keys."""
    if not path.is_file():
        raise InputError("a 4D cine volume needs Info.cfg beside it for ED/ES", path=path,
                         hint="use --frames all or 1-based frame numbers")
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip().upper()] = value.strip()
    return out


def volume_name(path: Path) -> str:
    """An id for a volume's slices: its stem, prefixed with its folder's name unless the stem starts
    with it (``Brats18_CBICA_AAB_1/FLAIR.nii.gz`` -> ``Brats18_CBICA_AAB_1_FLAIR``)."""
    s, parent = stem(path), path.parent.name
    return s if not parent or s.startswith(parent) else f"{parent}_{s}"


def prepare(source: str | Path, *, modality: str | None = None, frames: str = "ed,es", axis: str = "axial",
            min_foreground: float = MIN_FOREGROUND) -> SliceSet:
    """Slice every selected volume under ``source`` (see the module docstring)."""
    if not 0.0 <= min_foreground <= 1.0:
        raise InputError(f"--min-foreground must be in [0, 1], got {min_foreground}")
    root = Path(source)
    base = root if root.is_dir() else root.parent
    out = SliceSet()
    for path in find_volumes(root, modality):
        rel, name = path.relative_to(base).as_posix(), volume_name(path)
        shape = volume_shape(path)
        if len(shape) == 4 and shape[3] > 1:  # a cine: the acquired slices (voxel axis Z) of some frames
            parts: list[tuple[str, int | None]] = cine_frames(path, frames, shape[3])
            slice_axis: str | int = 2
        else:
            parts, slice_axis = [("", None)], axis
        for tag, index in parts:
            vol, img = readers.read_volume(path, index)
            mapping = volume_mapping(vol)
            key = f"{rel}#t={index + 1}" if index is not None else rel
            out.mappings[key] = mapping
            out.volumes += 1
            floor = float(vol.min())
            affine = img.affine if isinstance(slice_axis, str) else None
            for k, plane in slice_volume(vol, slice_axis, affine):
                if np.mean(plane > floor) < min_foreground:
                    out.dropped += 1
                    continue
                slice_name = f"{name}_{tag}_z{k:03d}.png" if tag else f"{name}_z{k:03d}.png"
                out.images[slice_name] = apply_mapping(plane, mapping)
                out.sources[slice_name] = f"{key}#z={k}"
    return out


def volume_shape(path: Path) -> tuple[int, ...]:
    """The shape of a NIfTI file from its header (no data read)."""
    import nibabel as nib

    try:
        return tuple(int(s) for s in nib.load(str(path)).shape)
    except Exception as exc:  # nibabel raises many types for a bad header
        raise InputError(f"not a readable NIfTI file ({type(exc).__name__})", path=path) from exc


def write(slices: SliceSet, folder: Path, *, res: int = 0, settings: dict[str, Any] | None = None) -> dict[str, int]:
    """Write 8-bit PNGs (squared to ``res`` with padding if ``res``) and ``intensity.json``; returns counts."""
    from medsyn_cli.data.geometry import to_square
    from medsyn_cli.data.writing import save_png

    for name, image in slices.images.items():
        save_png(image if not res else to_square(image[None], res, pad_value=-1.0)[0], folder / name)
    counts = {"slices": len(slices.images), "volumes": slices.volumes, "dropped": slices.dropped}
    doc = {"format": "medsyn-slices-1", "png": "uint8 = round((mapped + 1) * 127.5), mapped in [-1, 1]",
           "volumes": slices.mappings, "sources": slices.sources, "counts": counts, "settings": settings or {}}
    (folder / "intensity.json").write_text(json.dumps(doc, indent=1))
    return counts
