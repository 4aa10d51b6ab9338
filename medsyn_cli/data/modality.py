"""Which MR sequence (modality) a dataset or an input holds, so a run can record it and ``translate``
can warn when it is handed another one.

The modality comes from what prepared the data when it knows (BraTS cases are read for one modality;
``medsyn data prepare brats`` writes it to ``intensity.json``), else from the file names: a name token
``t1`` (also ``t1w``), ``t1ce`` (also ``t1c``, ``t1gd``, ``t1-ce``), ``t2`` (also ``t2w``) or ``flair``, case-insensitive, e.g.
``Brats18_2013_2_1_t1ce.nii.gz``, ``FLAIR.nii.gz``, ``T1.nii.gz``. A name without such a token, or a
dataset whose files disagree, has no recorded modality. It is a heuristic and says so in the warning.

The modality is stored in the dataset's intensity record (``intensity["modality"]``, per domain for
two-domain data), which the trainer copies to ``config.json`` and the weights' metadata.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

#: Name token -> modality.
_TOKENS = {"t1": "t1", "t1w": "t1", "t2w": "t2", "t1ce": "t1ce", "t1c": "t1ce", "t1gd": "t1ce", "t1-ce": "t1ce", "t1_ce": "t1ce",
           "t2": "t2", "flair": "flair"}
_SUFFIXES = (".nii.gz", ".nii", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", ".npz", ".dcm")


def modality_from_name(name: str | Path) -> str | None:
    """``t1``, ``t1ce``, ``t2`` or ``flair`` from a file name's tokens (the last one that matches)."""
    stem = Path(str(name).split("#", 1)[0]).name.lower()
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = re.sub(r"t1[-_]ce", "t1ce", stem)
    tokens = [t for t in re.split(r"[^a-z0-9]+", stem) if t]
    for token in reversed(tokens):
        if token in _TOKENS:
            return _TOKENS[token]
    return None


def modality_of_sources(sources: Iterable[str]) -> str | None:
    """The one modality every source's name gives, else None."""
    found = {modality_from_name(s) for s in sources}
    return found.pop() if len(found) == 1 else None


def prepared_modality(folder: Path) -> str | None:
    """The modality ``medsyn data prepare brats`` recorded in ``folder/intensity.json``, if any."""
    try:
        doc = json.loads((folder / "intensity.json").read_text())
        value = doc.get("settings", {}).get("modality")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value).lower() if value else None


def record(data: Any, modality: str | None = None) -> Any:
    """Store ``modality`` (or, when None, the one the source names agree on) in ``data``'s intensity
    record; a TwoDomainSet gets it in both domains. Returns ``data``."""
    sets = [data.normal, data.tumor] if hasattr(data, "normal") else [data]
    for s in sets:
        found = modality or modality_of_sources(getattr(s, "sources", []) or [])
        if found and isinstance(s.intensity, dict):
            s.intensity = {**s.intensity, "modality": found}
    return data


def trained_modality(intensity: Any) -> str | None:
    """The modality recorded in a run's intensity record (one mapping, or per domain)."""
    if not isinstance(intensity, dict):
        return None
    if intensity.get("modality"):
        return str(intensity["modality"])
    found = {str(v["modality"]) for v in intensity.values() if isinstance(v, dict) and v.get("modality")}
    return found.pop() if len(found) == 1 else None
