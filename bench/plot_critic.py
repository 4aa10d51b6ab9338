"""Is the critic memorising? The critic's mean score on training, held-out and generated images over a run
(`medsyn train --holdout F`), with FID on a second axis where the run scored it (`--eval-every`): the figure
of the report's "Is the critic memorising?" section, from the run's stats.jsonl, for notebooks and the lab.

    python bench/plot_critic.py runs/wgan64 --out critic.png      # default: RUN/critic.png
    python bench/plot_critic.py runs/a runs/b --out both.png       # one panel per run, one figure

In a notebook (``sys.path`` holding ``bench/``)::

    import matplotlib.pyplot as plt
    from plot_critic import draw_run
    fig, ax = plt.subplots(); draw_run(ax, "runs/wgan64")

A train-holdout gap that opens (held-out images scored like fakes) while FID rises is the critic memorising
its training images (Karras et al. 2020); curves that move together while FID rises point elsewhere.
Each record's ``r_v`` = (train - holdout) / (train - fake) is printed for the last record of each run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medsyn_cli.report.figures import CRITIC_READING, draw_critic
from medsyn_cli.report.run import critic_records


def read_run(run: str | Path) -> tuple[list[dict], list[tuple[int, float]]]:
    """(the critic records, the FID points) of a run directory's stats.jsonl (a torn last line skipped)."""
    path = Path(run) / "stats.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SystemExit(f"plot_critic: {path}: cannot read ({exc.strerror or exc})") from None
    stats = []
    for line in lines:
        try:
            stats.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    fid = [(int(r["step"]), float(r["fid"])) for r in stats
           if isinstance(r.get("fid"), (int, float)) and isinstance(r.get("step"), (int, float))]
    return critic_records(stats), fid


def draw_run(ax, run: str | Path) -> list[dict]:
    """Draw ``run``'s critic scores (and FID) on ``ax``; returns its critic records."""
    records, fid = read_run(run)
    if not records:
        raise SystemExit(f"plot_critic: {run}: no critic records in stats.jsonl (train with --holdout F)")
    draw_critic(ax, records, fid)
    ax.set_title(Path(run).resolve().name, fontsize=10)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (trained with --holdout)")
    parser.add_argument("--out", help="PNG to write (default: RUN/critic.png of the first run)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(args.runs), 1, figsize=(8.0, 3.4 * len(args.runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], args.runs):
        last = draw_run(ax, run)[-1]
        r_v = last.get("r_v")
        print(f"{run}: step {last['step']}: train {last['train']:.4g} holdout {last['holdout']:.4g} "
              f"fake {last['fake']:.4g} gap {last['train'] - last['holdout']:.4g} "
              f"r_v {'-' if r_v is None else f'{r_v:.3f}'}", file=sys.stderr)
    fig.tight_layout()
    out = Path(args.out) if args.out else Path(args.runs[0]) / "critic.png"
    fig.savefig(out, dpi=100)
    print(out)
    print(CRITIC_READING, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
