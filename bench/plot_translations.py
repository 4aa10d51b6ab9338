"""Where does a translation model grow a tumor? Real normal slices (of held-out cases, with --data), their
translation to tumor, the attention and the difference, one block of four rows per run: the figure of
docs/results.md's BraTS section and of the report's "Real normal slices to tumor" section.

    python bench/plot_translations.py runs/fast-20 runs/paper-20 --data brats-test --out rows.png
    python bench/plot_translations.py runs/a=fast,20min runs/b=paper --n 6      # RUN=LABEL names a block

Slices come from the larger half of the normal set by brain area, spread evenly (the same for every run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medsyn_cli.report.run import open_run
from medsyn_cli.report.translation import translation_triplets

ROWS = ("normal (input)", "to tumor", "attention", "|difference|")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="translation run folders, each optionally RUN=LABEL")
    ap.add_argument("--data", help="the slices to translate (default: each run's training data)")
    ap.add_argument("--n", type=int, default=6, help="slices per run")
    ap.add_argument("--out", default="translations.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = []
    for item in args.runs:
        path, _, label = item.partition("=")
        result = translation_triplets(open_run(Path(path)), n=args.n, to="tumor", data_path=args.data)
        if result.unavailable:
            print(f"plot_translations: {path}: {result.unavailable}", file=sys.stderr)
            return 2
        blocks.append((label or f"{Path(path).name} (step {result.step})", result))
    n = max(len(r.rows) for _, r in blocks)
    fig, axes = plt.subplots(4 * len(blocks), n, figsize=(1.3 * n, 1.3 * 4 * len(blocks)), squeeze=False)
    for b, (label, result) in enumerate(blocks):
        for j in range(n):
            row = result.rows[j] if j < len(result.rows) else None
            images = (row.input, row.output, row.third, row.difference) if row else (None,) * 4
            for k, image in enumerate(images):
                ax = axes[4 * b + k, j]
                ax.set_xticks([]), ax.set_yticks([])
                if image is not None:
                    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
                if j == 0:
                    ax.set_ylabel(ROWS[k] if k else f"{label}\n{ROWS[k]}", fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
