"""The report's plots, drawn with matplotlib straight to PNG bytes (nothing written beside the run)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from medsyn_cli.training.plots import smooth


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _pyplot().close(fig)
    return buf.getvalue()


def loss_curves(records: list[dict[str, Any]]) -> bytes | None:
    """Each loss against the step (raw faint, smoothed solid), one panel per loss, two or three a row."""
    names = list(dict.fromkeys(k for r in records for k in r.get("losses", {})))
    if not names:
        return None
    plt = _pyplot()
    cols = min(len(names), 2 if len(names) <= 4 else 3)
    rows = -(-len(names) // cols)
    width = 11.2 / cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 2.7 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        pts = [(r["step"], r["losses"][name]) for r in records if name in r.get("losses", {})]
        steps = np.array([p[0] for p in pts], dtype=float)
        vals = np.array([p[1] for p in pts], dtype=float)
        ax.plot(steps, vals, color="tab:blue", alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(vals, 0.9 if len(vals) > 20 else 0.6), color="tab:blue", linewidth=1.6)
        if len(steps) == 1:
            ax.plot(steps, vals, "o", color="tab:blue")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def fid_curve(points: list[tuple[int, float]], best: tuple[int, float] | None) -> bytes | None:
    """FID against the step, the best (lowest) score marked."""
    if not points:
        return None
    plt = _pyplot()
    steps, fids = zip(*points)
    fig, ax = plt.subplots(figsize=(7.0, 3.0))
    ax.plot(steps, fids, "-o", color="tab:purple", markersize=3.5, linewidth=1.4)
    if best is not None:
        ax.plot([best[0]], [best[1]], "*", color="tab:orange", markersize=15, markeredgecolor="black",
                label=f"best: {best[1]:.2f} at step {best[0]}")
        ax.legend(fontsize=9)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("FID (lower is better)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)
