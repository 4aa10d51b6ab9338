"""Kernel Inception Distance (Bińkowski et al. 2018), as torch-fidelity computes it.

KID is the unbiased estimate of the squared MMD between the two feature distributions under the
polynomial kernel k(x, y) = (x·y / d + 1)^3 (d = feature dimension), averaged over random subsets:
for each of ``subsets`` draws, ``m`` features are picked from each side without replacement and

    MMD²_u = [Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)] / (m (m - 1)) - 2 Σ_{i,j} k(x_i, y_j) / m²

The mean and the (population) standard deviation over the subsets are reported. Draw order and
generator follow torch-fidelity (``np.random.RandomState(seed)``, first side then second side per
subset), so with the same features, seed and sizes the subsets are the same; medsyn computes the
kernels in float64 where torch-fidelity uses float32.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000
DEFAULT_SEED = 2020  # torch-fidelity's default rng_seed


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The unbiased MMD² from the three kernel matrices of two equal-size samples."""
    m = k_xx.shape[0]
    off_xx = k_xx.sum() - np.trace(k_xx)
    off_yy = k_yy.sum() - np.trace(k_yy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(features_1: np.ndarray, features_2: np.ndarray, *, subsets: int = DEFAULT_SUBSETS,
        subset_size: int | None = None, seed: int = DEFAULT_SEED, degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0) -> dict[str, float | int]:
    """KID mean and std over ``subsets`` subsets of size min(``subset_size`` or 1000, n1, n2)."""
    f1 = np.asarray(features_1, dtype=np.float64)
    f2 = np.asarray(features_2, dtype=np.float64)
    n1, n2 = len(f1), len(f2)
    m = min(subset_size or DEFAULT_SUBSET_SIZE, n1, n2)
    if m < 2:
        raise ValueError("KID needs at least 2 images per side")
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = f1[rng.choice(n1, m, replace=False)]
        y = f2[rng.choice(n2, m, replace=False)]
        k_xx = polynomial_kernel(x, x, degree, gamma, coef0)
        k_yy = polynomial_kernel(y, y, degree, gamma, coef0)
        k_xy = polynomial_kernel(x, y, degree, gamma, coef0)
        mmds[i] = mmd2_unbiased(k_xx, k_xy, k_yy)
    return {"mean": float(np.mean(mmds)), "std": float(np.std(mmds)), "subsets": subsets,
            "subset_size": m, "degree": degree, "coef0": coef0, "seed": seed,
            "gamma": gamma if gamma is not None else f"1/{f1.shape[1]}"}
