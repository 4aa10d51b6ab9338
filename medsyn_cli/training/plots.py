"""``loss.png``: each loss against the step, raw (faint) and smoothed, from ``stats.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medsyn_cli.fileio import atomic_path


def smooth(values: np.ndarray, weight: float = 0.9) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing), robust to short series."""
    out = np.empty_like(values, dtype=float)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def _save(fig, path: Path) -> Path:
    """Lay out, write atomically as PNG, and free the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def plot_losses(records: list[dict[str, Any]], path: Path, *, title: str = "") -> Path | None:
    """One panel per loss; nothing is written when there is nothing to plot."""
    records = [r for r in records if r.get("losses")]
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(k for r in records for k in r["losses"]))
    cols = min(len(names), 2)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        pts = [(r["step"], r["losses"][name]) for r in records if name in r["losses"]]
        steps = np.array([p[0] for p in pts], dtype=float)
        vals = np.array([p[1] for p in pts], dtype=float)
        ax.plot(steps, vals, color="tab:blue", alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(vals, 0.9 if len(vals) > 20 else 0.6), color="tab:blue", linewidth=1.8)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_fid(records: list[dict[str, Any]], path: Path, *, title: str = "") -> Path | None:
    """``fid.png``: FID against the step (``--eval-every``), the best point marked."""
    pts = [(r["step"], r["fid"]) for r in records if isinstance(r.get("fid"), (int, float))]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, vals = zip(*pts)
    best = int(np.argmin(vals))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(steps, vals, marker="o", color="tab:red", linewidth=1.5)
    ax.scatter([steps[best]], [vals[best]], s=90, facecolors="none", edgecolors="black", zorder=3,
               label=f"best {vals[best]:.2f} at step {steps[best]}")
    ax.set_xlabel("step")
    ax.set_ylabel("FID (training set, equal counts)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return _save(fig, path)
