"""Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991).

Each set of features spans a manifold estimate: the union of balls around its samples, each ball's
radius the distance to that sample's k-th nearest neighbour within the set (k = 3, the sample
itself not counted). Precision is the fraction of fake samples inside the real manifold (fidelity);
recall is the fraction of real samples inside the fake manifold (coverage). A point on a ball's
boundary counts as inside, as in the authors' code (``<=``). Distances are Euclidean, in float64,
computed in row blocks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np

DEFAULT_K = 3


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) in float64, via |a|² + |b|² - 2 a·b, clipped at 0."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def knn_radii(features: np.ndarray, k: int = DEFAULT_K, block: int = 1024) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample of the same set."""
    f = np.asarray(features, dtype=np.float64)
    if len(f) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images per side")
    radii = np.empty(len(f))
    for s in range(0, len(f), block):
        d = _pairwise_distances(f[s:s + block], f)
        d[np.arange(d.shape[0]), np.arange(s, s + d.shape[0])] = -np.inf  # the sample itself
        radii[s:s + block] = np.partition(d, k, axis=1)[:, k]  # index 0 is the excluded self
    return radii


def coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray, block: int = 1024) -> float:
    """Fraction of ``queries`` within distance ``radii[i]`` of some ``manifold[i]``."""
    m = np.asarray(manifold, dtype=np.float64)
    q = np.asarray(queries, dtype=np.float64)
    inside = np.zeros(len(q), dtype=bool)
    for s in range(0, len(q), block):
        d = _pairwise_distances(q[s:s + block], m)
        inside[s:s + block] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K) -> dict[str, float | int]:
    real_radii = knn_radii(real, k)
    fake_radii = knn_radii(fake, k)
    return {"precision": coverage(real, real_radii, fake), "recall": coverage(fake, fake_radii, real),
            "k": k}
