"""``medsyn data info``: what an input is, how much it holds, and the intensity mapping medsyn would use.

Every file is decoded (in a thread pool), so a corrupt file is reported here, before a training run.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from medsyn_cli.data import readers
from medsyn_cli.data.intensity import combine_mappings
from medsyn_cli.data.volumes import describe_volume, keep_slice, volume_mapping, volume_slices
from medsyn_cli.errors import InputError


def describe_file(path: Path, axis: str = "axial") -> dict[str, Any]:
    """Kind, shape, dtype/mode, value range, the mapping and how many 2D images the file gives."""
    kind = readers.file_kind(path)
    if kind == "image":
        from PIL import Image

        raw, mapping = readers.read_image_raw(path)
        with Image.open(path) as img:
            mode = img.mode
        return {"kind": "image", "images": 1, "shape": list(raw.shape), "mode": mode, "dtype": str(raw.dtype),
                "min": float(raw.min()), "max": float(raw.max()), "mapping": mapping}
    if kind == "nifti":
        vol, img = readers.read_volume(path)
        mapping = volume_mapping(vol)
        kept = len(volume_slices(vol, img.affine, axis, mapping))
        return {"kind": "nifti", "images": kept, "slices_total": int(vol.shape[{"sagittal": 0, "coronal": 1}.get(axis, 2)]),
                "axis": axis, **describe_volume(vol, img), "mapping": mapping}
    if kind == "dicom":
        from medsyn_cli.data.intensity import apply_mapping

        frames, info = readers.read_dicom(path)
        mapping = volume_mapping(frames, info["modality"] if info["modality"] == "CT" else "MR")
        kept = sum(keep_slice(apply_mapping(f, mapping)) for f in frames) if len(frames) > 1 else 1
        return {"kind": "dicom", "images": int(kept), "shape": list(frames.shape[1:]), "frames": len(frames),
                "modality": info["modality"], "dtype": "float32 (rescaled)", "min": float(frames.min()),
                "max": float(frames.max()), "mapping": mapping}
    if kind == "array":
        arr = readers.read_array(path)
        return {"kind": "array", "images": int(arr.shape[0]), "shape": list(arr.shape), "dtype": str(arr.dtype),
                "min": float(arr.min()), "max": float(arr.max()), "mapping": readers.array_mapping(arr)}
    from medsyn_cli.data.datasets import supported
    from medsyn_cli.formats import format_of

    fmt = format_of(path)
    if fmt is None:
        raise InputError(f"unsupported format (medsyn reads {supported()})", path=path)
    planes = fmt.read(path)  # a plugin's format: described by what its reader gives
    values = [float(v) for _, image, _ in planes for v in (image.min(), image.max())] or [0.0]
    return {"kind": fmt.name, "images": len(planes), "shape": list(planes[0][1].shape) if planes else [],
            "min": min(values), "max": max(values), "mapping": planes[0][2] if planes else None}


def _summarise(files: list[Path], base: Path, axis: str) -> dict[str, Any]:
    workers = max(1, min(8, os.cpu_count() or 1, len(files)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        infos = list(pool.map(lambda f: describe_file(f, axis), files))
    shapes = [tuple(i["shape"][-2:]) for i in infos]
    out: dict[str, Any] = {
        "files": len(files),
        "images": int(sum(i["images"] for i in infos)),
        "kinds": dict(Counter(i["kind"] for i in infos)),
        "dtypes": dict(Counter(i["dtype"] for i in infos)),
        "min": float(min(i["min"] for i in infos)),
        "max": float(max(i["max"] for i in infos)),
        "height": [min(s[0] for s in shapes), max(s[0] for s in shapes)],
        "width": [min(s[1] for s in shapes), max(s[1] for s in shapes)],
        "mapping": combine_mappings({f.relative_to(base).as_posix(): i["mapping"] for f, i in zip(files, infos)}),
    }
    modes = Counter(i["mode"] for i in infos if "mode" in i)
    if modes:
        out["modes"] = dict(modes)
    return out


def describe(path: str, axis: str = "axial", modality: str = "auto") -> dict[str, Any]:
    """The ``medsyn data info`` object for ``path`` (a file, a folder, a two-domain or BraTS folder, a phantom)."""
    from medsyn_cli.data import brats
    from medsyn_cli.data.datasets import _input_files, parse_phantom

    if path.startswith("phantom:"):
        from medsyn_cli.data import phantoms

        kind, params = parse_phantom(path)
        mapping = phantoms.CT_WINDOW if kind == "ct" else phantoms.BRAIN_MAPPING
        return {"path": path, "kind": f"phantom-{kind}", "images": params["n"], **params,
                "masks": kind == "brain", "mapping": mapping}
    root = Path(path)
    if not root.exists():
        raise InputError("no such file or directory", path=root)
    if root.is_file():
        return {"path": str(root), **describe_file(root, axis)}
    if (root / "normal").is_dir() and (root / "tumor").is_dir():
        out: dict[str, Any] = {"path": str(root), "kind": "two-domain"}
        for name in ("normal", "tumor"):
            folder = root / name
            out[name] = _summarise(_input_files(folder), folder, axis)
        masks = root / "masks"
        if masks.is_dir():
            tumor_files = {f.relative_to(root / "tumor").as_posix() for f in readers.list_images(root / "tumor")}
            names = {f.relative_to(masks).as_posix() for f in readers.list_images(masks)}
            out["masks"] = len(tumor_files & names)
        else:
            out["masks"] = 0
        return out
    if brats.is_brats_folder(root):
        modality = brats.pick_modality(root, modality)
        cases = brats.find_cases(root, modality)
        first, img = readers.read_volume(cases[0][1])
        return {"path": str(root), "kind": "brats", "cases": len(cases), "modality": modality,
                "case_names": [c[0] for c in cases], **describe_volume(first, img),
                "mapping": {"kind": "percentile", "low": brats.PERCENTILES[0], "high": brats.PERCENTILES[1],
                            "within": "brain (voxels > 0), per volume"},
                "thresholds": {"min_tumor_area": brats.MIN_TUMOR_AREA, "min_brain_area": brats.MIN_BRAIN_AREA}}
    files = _input_files(root)
    return {"path": str(root), "kind": "folder", **_summarise(files, root, axis)}


def as_lines(info: dict[str, Any]) -> list[str]:
    """The human-readable form: ``key: value`` lines, nested objects indented."""
    import json

    lines = []
    for key, value in info.items():
        if isinstance(value, dict) and key not in ("mapping", "kinds", "dtypes", "modes"):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in value.items())
        else:
            lines.append(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    return lines

