"""FID against training minutes (or steps) of several quality-bench runs in one figure (for docs/results.md).

    python bench/plot_quality.py paper-s0.json fast-s0.json paper-s1.json fast-s1.json --out cmp.png
    python bench/plot_quality.py s0.json s1.json --x steps --out by-steps.png

The minutes are the budget the goals name, but a CPU's speed varies from day to day (the same hagan run made
42 to 68 steps a training minute here), so `--x steps` draws the same points against generator steps (and
`--x images` against training images seen), which separates a better trajectory from a faster machine.

Each input is the JSON object `bench/bench_quality.py` printed. A curve is labelled with its model,
recipe (and `--set` settings) and seed, or by the run's own `label` where one was added to the JSON by
hand; runs of the same name share a colour, and each seed has its line style. The real-vs-real floor is
drawn once per distinct value.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STYLES = ("-", "--", ":", "-.")
AXES = {"minutes": "training minutes", "steps": "generator steps", "images": "training images seen"}


def load(path: Path) -> dict:
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"plot_quality: {path}: not a bench_quality JSON ({exc})") from None
    if not isinstance(run, dict) or not run.get("points"):
        raise SystemExit(f"plot_quality: {path}: no scoring points (not a finished bench_quality run)")
    return run


def label(run: dict, batch: bool = False) -> str:
    """The curve's name: model, recipe, extra settings, and the batch size when the runs differ in it; a
    run's own ``label`` (set by hand, e.g. "seed 0, 2026-12-01") wins, for two runs of one recipe and seed."""
    if run.get("label"):
        return str(run["label"])
    what = f"{run['model']} {run.get('recipe') or 'paper'}"
    if run.get("sets"):
        what += " " + ",".join(run["sets"])
    if batch:
        what += f" batch {run.get('batch_size')}"
    return what


def x_values(run: dict, x: str, source: str = "") -> list[float]:
    """The points' positions on the chosen axis; a run that lacks them is named in one line."""
    key = "images_seen" if x == "images" else x
    try:
        return [p[key] for p in run["points"]]
    except KeyError:
        raise SystemExit(f"plot_quality: {source or run.get('model')}: its points have no {key!r}") from None


def fid_axis(runs: list[dict]) -> str:
    """The y axis's name: the papers' equal counts, or the sample count when `--samples N` scored fewer (N per run)."""
    counts = {str(run.get("samples") or "auto") for run in runs}
    if counts == {"auto"}:
        return "FID (equal counts, prepared reals)"
    if len(counts) == 1:
        return f"FID ({counts.pop()} samples, all prepared reals)"
    return "FID (sample counts differ: compare with care)"


def plot(runs: list[dict], out: Path, title: str, x: str = "minutes", xs: list[list[float]] | None = None) -> None:
    """Draw the runs' FID against ``x``; ``xs``, the positions already read (``x_values``), saves reading them again."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = xs if xs is not None else [x_values(run, x) for run in runs]
    colours: dict[str, str] = {}
    seeds = sorted({run.get("seed") or 0 for run in runs})
    batch = len({run.get("batch_size") for run in runs}) > 1
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for run, positions in zip(runs, xs):
        name = label(run, batch)
        colour = colours.setdefault(name, f"C{len(colours)}")
        style = STYLES[seeds.index(run.get("seed") or 0) % len(STYLES)]
        ax.plot(positions, [p["fid"] for p in run["points"]], marker="o", color=colour, linestyle=style,
                label=name if run.get("label") else f"{name}, seed {run.get('seed')}")
    for floor in sorted({r["real_split_half_fid"] for r in runs if r.get("real_split_half_fid") is not None}):
        ax.axhline(floor, color="grey", linestyle="--", linewidth=1)
        ax.text(0.01, floor, f" real vs real {floor:.1f}", transform=ax.get_yaxis_transform(), fontsize=8,
                color="grey", va="bottom")
    ax.set_xlabel(AXES[x])
    ax.set_ylabel(fid_axis(runs))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="bench_quality JSON files")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--title", default="", help="figure title (default: the data set and resolution)")
    ap.add_argument("--x", choices=sorted(AXES), default="minutes",
                    help="the horizontal axis: training minutes (default), generator steps or images seen")
    args = ap.parse_args(argv)
    runs = [load(p) for p in args.runs]
    xs = [x_values(run, args.x, str(p)) for run, p in zip(runs, args.runs)]  # every run checked before drawing
    first = runs[0]
    title = args.title or f"{Path(first.get('data', '')).name} {first.get('res', '')}²"
    plot(runs, args.out, title, args.x, xs)
    print(args.out)


if __name__ == "__main__":
    main()
