"""Intensity mappings: how raw values become [-1, 1], recorded so outputs can be mapped back.

A mapping is a plain JSON-able dict (it travels with the dataset, the run and exported weights):

* ``{"kind": "uint8"}``: 8-bit images, ``x / 127.5 - 1``.
* ``{"kind": "percentile", "low": 0.5, "high": 99.5, "lo_value": a, "hi_value": b}``: values are clipped
  to the ``low``/``high`` percentiles ``[a, b]`` of the source (optionally within a mask) and scaled
  linearly; the usual choice for MRI.
* ``{"kind": "ct_window", "center": 40, "width": 400}``: Hounsfield units clipped to the window
  ``[center - width/2, center + width/2]`` and scaled linearly; the usual choice for CT.
* ``{"kind": "per_source", "by_source": {file: mapping, ...}}``: a dataset whose files were mapped
  differently (use :func:`mapping_for` to look one up).

Every linear kind is described by the raw value mapped to -1 and the one mapped to +1
(:func:`mapping_range`), so :func:`apply_mapping` and :func:`invert_mapping` share one code path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Mapping = dict[str, Any]


def percentile_mapping(values: np.ndarray, low: float = 0.5, high: float = 99.5,
                       mask: np.ndarray | None = None) -> Mapping:
    """The percentile mapping of ``values`` (within ``mask`` when given, e.g. the brain)."""
    vals = np.asarray(values)
    if mask is not None:
        vals = vals[np.asarray(mask, dtype=bool)]
    vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
    if vals.size == 0:
        lo_value, hi_value = 0.0, 1.0
    else:
        lo_value, hi_value = (float(v) for v in np.percentile(vals, [low, high]))
    if hi_value <= lo_value:  # a constant image: keep the mapping invertible
        hi_value = lo_value + 1.0
    return {"kind": "percentile", "low": float(low), "high": float(high),
            "lo_value": lo_value, "hi_value": hi_value}


def ct_window_mapping(center: float = 40.0, width: float = 400.0) -> Mapping:
    """A CT window in Hounsfield units (default: the soft-tissue window 40/400)."""
    if width <= 0:
        raise ValueError(f"CT window width must be positive, got {width}")
    return {"kind": "ct_window", "center": float(center), "width": float(width)}


def uint8_mapping() -> Mapping:
    return {"kind": "uint8"}


def mapping_range(mapping: Mapping) -> tuple[float, float]:
    """The raw values sent to -1 and +1 by a linear mapping."""
    kind = mapping.get("kind")
    if kind == "uint8":
        return 0.0, 255.0
    if kind == "uint16":
        return 0.0, 65535.0
    if kind == "percentile":
        return float(mapping["lo_value"]), float(mapping["hi_value"])
    if kind == "ct_window":
        half = float(mapping["width"]) / 2.0
        return float(mapping["center"]) - half, float(mapping["center"]) + half
    if kind == "range":
        return float(mapping["lo_value"]), float(mapping["hi_value"])
    raise ValueError(f"not a linear intensity mapping: {mapping!r}")


def apply_mapping(arr: np.ndarray, mapping: Mapping) -> np.ndarray:
    """Raw values -> float32 in [-1, 1] (clipped)."""
    lo, hi = mapping_range(mapping)
    out = (np.asarray(arr, dtype=np.float64) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def invert_mapping(arr: np.ndarray, mapping: Mapping) -> np.ndarray:
    """Values in [-1, 1] -> the raw scale (float64; the caller picks the output dtype)."""
    lo, hi = mapping_range(mapping)
    x = np.clip(np.asarray(arr, dtype=np.float64), -1.0, 1.0)
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def combine_mappings(by_source: dict[str, Mapping]) -> Mapping:
    """One mapping for a dataset: the shared one when all sources agree, else ``per_source``."""
    unique = {_key(m): m for m in by_source.values()}
    if len(unique) == 1:
        return dict(next(iter(unique.values())))
    if not unique:
        return {}
    return {"kind": "per_source", "by_source": dict(by_source)}


def mapping_for(intensity: Mapping, source: str) -> Mapping:
    """The mapping used for ``source`` (``file`` or ``file#z=77``) under a dataset's ``intensity``."""
    if intensity.get("kind") != "per_source":
        return intensity
    by_source = intensity["by_source"]
    if source in by_source:
        return by_source[source]
    return by_source[source.split("#", 1)[0]]


def _key(mapping: Mapping) -> str:
    import json

    return json.dumps(mapping, sort_keys=True)
