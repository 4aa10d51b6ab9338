"""Where fake images sit among real ones: PCA of Inception features, scatter and density plots.

The CT thesis shows the pool3 features of real and generated images projected by PCA. Here the
projection is fitted on REAL and FAKE together (centred on their joint mean; principal axes from
the SVD), so neither side defines the axes alone. Plots (matplotlib, Agg backend, PNG):

* ``pca_2d.png``: PC1 vs PC2 scatter, real and fake;
* ``pca_3d.png``: PC1-PC3 scatter in 3D;
* ``kde_1d.png``: Gaussian kernel density (``scipy.stats.gaussian_kde``, Scott's bandwidth) of each
  side along PC1 and along PC2;
* ``kde_2d.png``: the 2D density of each side over (PC1, PC2) as contour lines.

The thesis itself (section 4.3.1-4.3.2) plotted something else: it fitted a multivariate normal to
each side's features (the mean and covariance FID compares), drew N samples from each fitted normal
and applied PCA and KDE to those samples. :func:`plot_gaussian_embeddings` does that, writing the
same four plots with a ``gaussian_`` prefix, so both views can sit side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.fileio import atomic_path

REAL_COLOUR, FAKE_COLOUR = "#1f77b4", "#d62728"
FILES = ("pca_2d.png", "pca_3d.png", "kde_1d.png", "kde_2d.png")
GAUSSIAN_PREFIX = "gaussian_"
GAUSSIAN_FILES = tuple(GAUSSIAN_PREFIX + name for name in FILES)


def gaussian_samples(features: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from N(mu, Sigma), the normal fitted to ``features`` (m x d) as FID fits it: the
    mean and the unbiased covariance Sigma = Xc^T Xc / (m - 1) of the centred rows Xc.

    Drawn as mu + w Xc / sqrt(m - 1) with w ~ N(0, I_m): its covariance is exactly Sigma, so it is the
    same distribution as ``rng.multivariate_normal(mu, Sigma)``, without the d x d decomposition and
    exact when Sigma is singular (fewer images than the 2048 features).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 feature rows to fit a normal, got shape {x.shape}")
    mean = x.mean(0)
    centred = (x - mean) / np.sqrt(x.shape[0] - 1)
    return mean + rng.standard_normal((n, x.shape[0])) @ centred


def pca(real: np.ndarray, fake: np.ndarray, n_components: int = 3) -> dict[str, Any]:
    """Project both sides onto the joint principal axes (float64 SVD of the centred stack)."""
    x = np.concatenate([real, fake]).astype(np.float64)
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(n_components, vt.shape[0])
    comps = vt[:k]
    var = s ** 2
    return {"real": (real - mean) @ comps.T, "fake": (fake - mean) @ comps.T,
            "explained_variance_ratio": (var[:k] / var.sum()).tolist() if var.sum() > 0 else [0.0] * k}


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _kde(values: np.ndarray):
    from scipy.stats import gaussian_kde

    values = np.atleast_2d(np.asarray(values, dtype=np.float64))  # (dims, n)
    if values.shape[1] < 3 or np.ptp(values, axis=1).min() == 0:
        return None  # too few or identical points: no density to draw
    try:
        return gaussian_kde(values)
    except np.linalg.LinAlgError:  # singular covariance (points on a line)
        return None


def plot_gaussian_embeddings(real: np.ndarray, fake: np.ndarray, out_dir: str | Path, n: int,
                             seed: int = 0) -> dict[str, Any]:
    """The thesis's view: ``n`` samples from the normal fitted to each side, then the four plots
    (``gaussian_*.png``). Returns their paths, the explained variance, ``n`` and ``seed``."""
    rng = np.random.default_rng(seed)
    real_draws, fake_draws = gaussian_samples(real, n, rng), gaussian_samples(fake, n, rng)
    result = plot_embeddings(real_draws, fake_draws, out_dir, labels=("real normal", "fake normal"),
                             prefix=GAUSSIAN_PREFIX, what=f"{n} samples of each fitted normal")
    return {**result, "samples": n, "seed": seed}


def plot_embeddings(real: np.ndarray, fake: np.ndarray, out_dir: str | Path,
                    labels: tuple[str, str] = ("real", "fake"), prefix: str = "",
                    what: str = "Inception pool3 features") -> dict[str, Any]:
    """Write the four PNGs (``prefix`` + FILES) into ``out_dir``; returns their paths and the
    explained variance. ``what`` names the points in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)  # created by the first atomic write (and removed again if a later one fails)
    proj = pca(real, fake, 3)
    r, f = proj["real"], proj["fake"]
    evr = proj["explained_variance_ratio"]
    axis_label = [f"PC{i + 1} ({100 * v:.1f} %)" for i, v in enumerate(evr)]
    written: list[Path] = []
    style = dict(s=10, alpha=0.6, linewidths=0)

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(r[:, 0], r[:, 1], c=REAL_COLOUR, label=f"{labels[0]} (n={len(r)})", **style)
    ax.scatter(f[:, 0], f[:, 1], c=FAKE_COLOUR, label=f"{labels[1]} (n={len(f)})", **style)
    ax.set_xlabel(axis_label[0])
    ax.set_ylabel(axis_label[1])
    ax.set_title(f"{what}, PCA")
    ax.legend()
    written.append(out / (prefix + FILES[0]))
    _save(fig, written[-1])

    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    if r.shape[1] >= 3:
        ax.scatter(r[:, 0], r[:, 1], r[:, 2], c=REAL_COLOUR, label=labels[0], **style)
        ax.scatter(f[:, 0], f[:, 1], f[:, 2], c=FAKE_COLOUR, label=labels[1], **style)
        ax.set_zlabel(axis_label[2])
    ax.set_xlabel(axis_label[0])
    ax.set_ylabel(axis_label[1])
    ax.set_title(f"{what}, PCA (3D)")
    ax.legend()
    written.append(out / (prefix + FILES[1]))
    _save(fig, written[-1])

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, ax in enumerate(axes):
        lo = min(r[:, i].min(), f[:, i].min())
        hi = max(r[:, i].max(), f[:, i].max())
        pad = 0.1 * (hi - lo or 1.0)
        grid = np.linspace(lo - pad, hi + pad, 400)
        for vals, colour, name in ((r[:, i], REAL_COLOUR, labels[0]), (f[:, i], FAKE_COLOUR, labels[1])):
            kde = _kde(vals)
            if kde is not None:
                ax.plot(grid, kde(grid), color=colour, label=name)
                ax.fill_between(grid, kde(grid), color=colour, alpha=0.15)
        ax.set_xlabel(axis_label[i])
        ax.set_ylabel("density")
        ax.legend()
    fig.suptitle(f"{what}: kernel density along the principal axes")
    written.append(out / (prefix + FILES[2]))
    _save(fig, written[-1])

    fig, ax = plt.subplots(figsize=(6, 5))
    both = np.concatenate([r[:, :2], f[:, :2]])
    (x0, y0), (x1, y1) = both.min(0), both.max(0)
    px, py = 0.1 * ((x1 - x0) or 1.0), 0.1 * ((y1 - y0) or 1.0)
    gx, gy = np.meshgrid(np.linspace(x0 - px, x1 + px, 150), np.linspace(y0 - py, y1 + py, 150))
    for vals, colour, name in ((r, REAL_COLOUR, labels[0]), (f, FAKE_COLOUR, labels[1])):
        kde = _kde(vals[:, :2].T)
        if kde is not None:
            z = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
            ax.contour(gx, gy, z, levels=6, colors=colour)
        ax.scatter(vals[:, 0], vals[:, 1], c=colour, s=4, alpha=0.3, linewidths=0, label=name)
    ax.set_xlabel(axis_label[0])
    ax.set_ylabel(axis_label[1])
    ax.set_title(f"{what}: kernel density over (PC1, PC2)")
    ax.legend(markerscale=4)
    written.append(out / (prefix + FILES[3]))
    _save(fig, written[-1])
    return {"files": [str(p) for p in written], "explained_variance_ratio": evr}
