"""Cached features and statistics of reference image sets, in ``cache_dir()/fid-stats``.

An entry is keyed by the sha256 of: the images' content in order (file bytes, or pixels for
arrays and volumes), their count, the weights' sha256, and the preprocessing/network version
(:data:`features.PIPELINE_VERSION`, which names the resize). Renaming or moving a folder keeps its
entry; changing one byte of one image, the weights or the pipeline makes a new one. An entry holds
the float32 features (KID and precision/recall need them), the float64 mean and covariance (so a
repeat skips the covariance too) and the channel counts seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsyn_cli import paths
from medsyn_cli.fileio import atomic_path


def stats_dir() -> Path:
    return paths.cache_dir() / "fid-stats"


def cache_key(content_digest: str, count: int, weights_sha256: str, pipeline: str) -> str:
    payload = json.dumps({"content": content_digest, "count": count, "weights_sha256": weights_sha256,
                          "pipeline": pipeline}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class CachedStats:
    features: np.ndarray  # (N, 2048) float32
    mu: np.ndarray  # (2048,) float64
    sigma: np.ndarray  # (2048, 2048) float64
    channels: set[int]
    path: Path | None = None


def load(key: str) -> CachedStats | None:
    p = stats_dir() / f"{key}.npz"
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return CachedStats(z["features"], z["mu"], z["sigma"], set(int(c) for c in z["channels"]), p)
    except (OSError, ValueError, KeyError):  # a damaged entry is recomputed, not fatal
        return None


def save(key: str, stats: CachedStats, meta: dict) -> Path:
    p = stats_dir() / f"{key}.npz"
    paths.ensure(stats_dir())
    with atomic_path(p) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, features=stats.features, mu=stats.mu, sigma=stats.sigma,
                 channels=np.array(sorted(stats.channels), dtype=np.int64),
                 meta=np.array(json.dumps(meta, default=str)))
    return p
