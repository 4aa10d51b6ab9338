"""BraTS-style cases -> two-domain slices: tumor-free brain slices, tumor-bearing slices, whole-tumor masks.

A case is a folder with one NIfTI per modality (``<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair``) and
the labels ``<case>_seg.nii.gz``. For the chosen modality each volume is sliced axially with
:func:`medsyn_cli.data.volumes.slice_volume` (the same slicing ``medsyn translate`` uses) and:

* intensities are normalised per volume: the 0.5 / 99.5 percentiles of the brain (voxels > 0) map to
  [-1, 1] (:func:`medsyn_cli.data.intensity.percentile_mapping`), one mapping per source volume;
* a slice whose brain area (pixels > 0 in the modality) is below ``min_brain_area`` is dropped;
* a slice with no tumor label is a **normal** slice; one with a whole-tumor area (``seg > 0``) of at least
  ``min_tumor_area`` pixels is a **tumor** slice; slices with a smaller, non-zero tumor area are ambiguous
  and dropped from both sets;
* masks (``seg > 0``) are kept for a seeded ``mask_fraction`` share of the tumor slices (the paper's
  semi-supervised setting; BraTS_S labels 1/8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.data import readers
from medsyn_cli.data.intensity import apply_mapping, percentile_mapping
from medsyn_cli.data.volumes import slice_volume
from medsyn_cli.errors import InputError

MODALITIES = ("t1", "t1ce", "t2", "flair")
MIN_TUMOR_AREA = 100
MIN_BRAIN_AREA = 1000
PERCENTILES = (0.5, 99.5)


@dataclass
class Slice:
    """One kept slice: ``image`` in [-1, 1] at native size, ``mask`` {0, 1} (tumor slices only)."""

    name: str  # e.g. "Brats18_2013_2_1_z077.png"
    source: str  # e.g. "Brats18_2013_2_1/Brats18_2013_2_1_t1ce.nii.gz#z=77"
    image: np.ndarray
    mask: np.ndarray | None = None
    tumor_area: int = 0
    brain_area: int = 0


@dataclass
class Prepared:
    normal: list[Slice] = field(default_factory=list)
    tumor: list[Slice] = field(default_factory=list)
    has_mask: list[bool] = field(default_factory=list)
    mappings: dict[str, dict[str, Any]] = field(default_factory=dict)  # source volume -> mapping
    dropped: dict[str, int] = field(default_factory=lambda: {"small_brain": 0, "ambiguous_tumor": 0})


def find_cases(folder: str | Path, modality: str = "t1ce") -> list[tuple[str, Path, Path]]:
    """``(case name, modality file, seg file)`` for every case under ``folder`` (or ``folder`` itself)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder of BraTS cases", path=root)
    cases = []
    for seg in sorted(root.rglob("*_seg.nii*")):
        if any(part.startswith(".") for part in seg.relative_to(root).parts):
            continue
        case = seg.name.split("_seg.nii", 1)[0]
        ext = seg.name[len(case) + len("_seg"):]
        image = seg.with_name(f"{case}_{modality}{ext}")
        if not image.is_file():
            raise InputError(f"case {case} has no {modality} volume ({image.name})", path=seg.parent,
                             hint=f"pick another --modality ({', '.join(MODALITIES)})")
        cases.append((case, image, seg))
    return cases


def is_brats_folder(folder: str | Path) -> bool:
    root = Path(folder)
    return root.is_dir() and any(root.rglob("*_seg.nii*"))


def prepare(folder: str | Path, modality: str = "t1ce", *, mask_fraction: float = 1.0, seed: int = 0,
            min_tumor_area: int = MIN_TUMOR_AREA, min_brain_area: int = MIN_BRAIN_AREA) -> Prepared:
    """Split every case's axial slices into normal and tumor slices (see the module docstring)."""
    if not 0.0 <= mask_fraction <= 1.0:
        raise InputError(f"--mask-fraction must be in [0, 1], got {mask_fraction}")
    root = Path(folder)
    cases = find_cases(root, modality)
    if not cases:
        raise InputError("no BraTS cases found (no *_seg.nii.gz file)", path=root)
    out = Prepared()
    for case, image_path, seg_path in cases:
        vol, img = readers.read_volume(image_path)
        seg, _ = readers.read_volume(seg_path)
        if seg.shape != vol.shape:
            raise InputError(f"segmentation shape {seg.shape} differs from the {modality} volume {vol.shape}",
                             path=seg_path)
        rel = image_path.relative_to(root).as_posix() if image_path != root else image_path.name
        mapping = percentile_mapping(vol, *PERCENTILES, mask=vol > 0)
        out.mappings[rel] = mapping
        for (k, plane), (_, labels) in zip(slice_volume(vol, "axial", img.affine),
                                           slice_volume(seg, "axial", img.affine)):
            brain_area = int(np.count_nonzero(plane > 0))
            tumor_area = int(np.count_nonzero(labels > 0))
            if brain_area < min_brain_area:
                out.dropped["small_brain"] += 1
                continue
            if 0 < tumor_area < min_tumor_area:
                out.dropped["ambiguous_tumor"] += 1
                continue
            item = Slice(name=f"{case}_z{k:03d}.png", source=f"{rel}#z={k}", image=apply_mapping(plane, mapping),
                         tumor_area=tumor_area, brain_area=brain_area)
            if tumor_area:
                item.mask = (labels > 0).astype(np.float32)
                out.tumor.append(item)
            else:
                out.normal.append(item)
    out.has_mask = mask_selection(len(out.tumor), mask_fraction, seed)
    return out


def mask_selection(n: int, fraction: float, seed: int) -> list[bool]:
    """Which of ``n`` tumor slices keep their mask: ``round(fraction * n)`` of them, chosen by ``seed``."""
    keep = int(round(fraction * n))
    chosen = np.zeros(n, dtype=bool)
    if keep:
        chosen[np.random.default_rng(seed).choice(n, size=keep, replace=False)] = True
    return chosen.tolist()


def write(prep: Prepared, folder: Path, *, res: int = 0, settings: dict[str, Any] | None = None) -> dict[str, int]:
    """Write ``prep`` into ``folder`` (normal/, tumor/, masks/ as 8-bit PNGs; intensity.json); returns counts.

    ``res`` 0 keeps the native slice size; otherwise slices are squared with
    :func:`medsyn_cli.data.geometry.to_square` (masks padded with 0 and thresholded at 0.5).
    """
    import json

    from medsyn_cli.data.geometry import to_square
    from medsyn_cli.data.writing import save_mask, save_png

    def fit(plane: np.ndarray, pad: float) -> np.ndarray:
        return plane if not res else to_square(plane[None], res, pad_value=pad)[0]

    for name in ("normal", "tumor", "masks"):
        (folder / name).mkdir()
    for s in prep.normal:
        save_png(fit(s.image, -1.0), folder / "normal" / s.name)
    for s, labelled in zip(prep.tumor, prep.has_mask):
        save_png(fit(s.image, -1.0), folder / "tumor" / s.name)
        if labelled:
            save_mask(fit(s.mask, 0.0) > 0.5, folder / "masks" / s.name)
    counts = {"normal": len(prep.normal), "tumor": len(prep.tumor), "masks": int(sum(prep.has_mask)),
              "dropped_small_brain": prep.dropped["small_brain"],
              "dropped_ambiguous_tumor": prep.dropped["ambiguous_tumor"]}
    doc = {"format": "medsyn-brats-1", "png": "uint8 = round((mapped + 1) * 127.5), mapped in [-1, 1]",
           "normalisation": {"kind": "percentile", "low": PERCENTILES[0], "high": PERCENTILES[1],
                             "within": "brain (voxels > 0), per volume"},
           "volumes": prep.mappings, "counts": counts, "settings": settings or {}}
    (folder / "intensity.json").write_text(json.dumps(doc, indent=1))
    return counts
