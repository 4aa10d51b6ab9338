"""The preprocessed-dataset cache: decoded, resized datasets saved once, loaded at once next time.

Each entry is ``<cache_dir>/datasets/<key>.npz`` (float32 arrays) plus ``<key>.json`` (sources, intensity
mappings, what it is, when it was made). The key is a sha256 over :data:`FORMAT`, every preprocessing
setting and, for each input file, its path relative to the dataset root, its size and the sha256 of its
bytes: editing, adding, removing or renaming a file, or changing a setting, gives a new key. Both files are
written atomically (temporary file, then rename; the ``.json`` last, so an entry without it is ignored).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from medsyn_cli import paths
from medsyn_cli.data.readers import UNREADABLE_HINT
from medsyn_cli.errors import from_os_error
from medsyn_cli.fileio import atomic_path

if TYPE_CHECKING:  # torch is imported only when an entry is read or written
    from medsyn_cli.data.types import ImageSet, TwoDomainSet

#: Bump when the preprocessing or the entry layout changes: old entries are then never read.
FORMAT = "medsyn-dataset-cache-1"
_CHUNK = 1 << 20


def datasets_dir() -> Path:
    return paths.cache_dir() / "datasets"


def file_digest(path: Path) -> str:
    """sha256 of an input file; one it may not read is bad input naming it (not a fault of the output)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(_CHUNK), b""):
                h.update(block)
    except OSError as exc:
        raise from_os_error(exc, hint=UNREADABLE_HINT) from None
    return h.hexdigest()


def dataset_key(files: Iterable[tuple[str, Path]], settings: dict[str, Any]) -> str:
    """sha256 over the format version, the settings and each ``(relative path, file)``'s size and content."""
    h = hashlib.sha256()
    h.update(FORMAT.encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for rel, path in sorted(files, key=lambda item: item[0]):
        h.update(b"\0" + rel.encode() + b"\0" + str(path.stat().st_size).encode() + b"\0")
        h.update(file_digest(path).encode())
    return h.hexdigest()


def _arrays(prefix: str, s: ImageSet) -> dict[str, np.ndarray]:
    out = {f"{prefix}images": s.images.numpy()}
    if s.masks is not None:
        out[f"{prefix}masks"] = s.masks.numpy()
    if s.has_mask is not None:
        out[f"{prefix}has_mask"] = s.has_mask.numpy()
    return out


def save(key: str, data: ImageSet | TwoDomainSet, what: dict[str, Any]) -> Path:
    """Write one entry atomically; ``what`` describes it for ``medsyn cache ls`` (path, res, task, ...)."""
    from medsyn_cli.data.types import TwoDomainSet

    folder = paths.ensure(datasets_dir())
    if isinstance(data, TwoDomainSet):
        arrays = {**_arrays("normal.", data.normal), **_arrays("tumor.", data.tumor)}
        meta = {"normal": {"sources": data.normal.sources, "intensity": data.normal.intensity},
                "tumor": {"sources": data.tumor.sources, "intensity": data.tumor.intensity}}
        count = {"normal": len(data.normal), "tumor": len(data.tumor)}
    else:
        arrays = _arrays("", data)
        meta = {"sources": data.sources, "intensity": data.intensity}
        count = len(data)
    target = folder / f"{key}.npz"
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    doc = {"format": FORMAT, "key": key, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "two_domain": isinstance(data, TwoDomainSet), "count": count, "what": what, "data": meta}
    with atomic_path(folder / f"{key}.json") as tmp:
        tmp.write_text(json.dumps(doc, default=str))
    return target


def _image_set(arrays, prefix: str, meta: dict[str, Any]) -> ImageSet:
    import torch

    from medsyn_cli.data.types import ImageSet

    def get(name):
        key = prefix + name
        return torch.from_numpy(np.array(arrays[key])) if key in arrays.files else None

    return ImageSet(images=get("images"), sources=list(meta["sources"]), intensity=meta["intensity"],
                    masks=get("masks"), has_mask=get("has_mask"))


def load(key: str) -> ImageSet | TwoDomainSet | None:
    """The cached dataset for ``key``, or None when absent or unreadable (it is then rebuilt)."""
    from medsyn_cli.data.types import TwoDomainSet

    folder = datasets_dir()
    meta_path, npz_path = folder / f"{key}.json", folder / f"{key}.npz"
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    try:
        doc = json.loads(meta_path.read_text())
        if doc.get("format") != FORMAT:
            return None
        with np.load(npz_path, allow_pickle=False) as arrays:
            if doc["two_domain"]:
                return TwoDomainSet(_image_set(arrays, "normal.", doc["data"]["normal"]),
                                    _image_set(arrays, "tumor.", doc["data"]["tumor"]))
            return _image_set(arrays, "", doc["data"])
    except (OSError, ValueError, KeyError):  # a damaged entry is a cache miss, not an error
        return None


def entries() -> list[dict[str, Any]]:
    """Every entry: key, size in bytes, what it holds (path, res, task, ...), count and creation time."""
    folder = datasets_dir()
    if not folder.is_dir():
        return []
    out = []
    for meta_path in sorted(folder.glob("*.json")):
        key = meta_path.stem
        try:
            doc = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            doc = {}
        size = sum(p.stat().st_size for p in (meta_path, folder / f"{key}.npz") if p.is_file())
        out.append({"key": key, "size": size, "what": doc.get("what", {}), "count": doc.get("count"),
                    "created": doc.get("created")})
    return out


def clear() -> tuple[int, int]:
    """Remove every entry (and stray temporary files); returns (entries removed, bytes freed)."""
    folder = datasets_dir()
    if not folder.is_dir():
        return 0, 0
    keys, freed = set(), 0
    for p in folder.iterdir():
        if p.is_file() and (p.suffix in (".npz", ".json") or p.name.endswith(".tmp") or ".tmp-" in p.name):
            if p.suffix == ".json":
                keys.add(p.stem)
            freed += p.stat().st_size
            os.unlink(p)
    return len(keys), freed
