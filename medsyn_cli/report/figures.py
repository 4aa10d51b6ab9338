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


#: How to read the critic figure (the report's note and bench/plot_critic.py's caption).
CRITIC_READING = ("The critic's mean raw score on training images, on held-out images it never trained on and on "
                  "generated images: a train-holdout gap that opens (held-out images scored more like fakes) "
                  "while FID rises means the critic is memorising its training images; curves that move "
                  "together while FID rises point elsewhere.")


def draw_critic(ax, records: list[dict[str, Any]], fid_points: list[tuple[int, float]] | None = None) -> None:
    """On the matplotlib axes ``ax``: the critic's mean score on training, held-out and generated images
    against the step (the gap shaded), and FID on a second axis when ``fid_points`` are given.
    ``records`` are :func:`medsyn_cli.report.run.critic_records`."""
    steps = np.array([r["step"] for r in records], dtype=float)
    train, held, fake = (np.array([float(r[k]) for r in records]) for k in ("train", "holdout", "fake"))
    marker = "o" if len(steps) < 30 else None
    lines = ax.plot(steps, train, "-", marker=marker, markersize=3, color="tab:blue", label="training images")
    lines += ax.plot(steps, held, "-", marker=marker, markersize=3, color="tab:orange", label="held-out images")
    lines += ax.plot(steps, fake, "--", color="tab:red", linewidth=1.2, label="generated images")
    ax.fill_between(steps, train, held, color="tab:orange", alpha=0.15, linewidth=0)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel("critic's mean score", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if fid_points:
        fid_ax = ax.twinx()
        f_steps, fids = zip(*fid_points)
        lines += fid_ax.plot(f_steps, fids, "-s", color="tab:purple", markersize=3.5, linewidth=1.2, label="FID")
        fid_ax.set_ylabel("FID (lower is better)", fontsize=9, color="tab:purple")
        fid_ax.tick_params(labelsize=8, colors="tab:purple")
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="best")


def critic_curve(records: list[dict[str, Any]], fid_points: list[tuple[int, float]] | None = None) -> bytes | None:
    """:func:`draw_critic` as PNG bytes."""
    if not records:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 3.4))
    draw_critic(ax, records, fid_points)
    fig.tight_layout()
    return _png(fig)
