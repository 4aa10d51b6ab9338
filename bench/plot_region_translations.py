"""A tumor where it is asked for: held-out normal slices translated to tumor inside the regions of
`medsyn eval translation`'s paste reference (a real tumor mask of the judge's cases at its place, inside
the normal slice's brain), beside that real tumor pasted into the same region; one block per run.

    python bench/plot_region_translations.py runs/fast=fast runs/region=region --data brats-test \\
        --judge-data brats-train --out regions.png

Rows per block: the region on the input (outlined), the translation inside it, |difference|; then one
shared row of the paste reference. The slices are the first draw of `eval translation --seed SEED`, spread
evenly over the matched normal slices.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROWS = ("input + region", "to tumor in it", "|difference|")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="translation run folders, each optionally RUN=LABEL")
    ap.add_argument("--data", required=True, help="held-out cases (normal/, tumor/, masks/)")
    ap.add_argument("--judge-data", required=True, help="the cases whose tumor masks are the regions")
    ap.add_argument("--n", type=int, default=6, help="slices")
    ap.add_argument("--seed", type=int, default=0, help="as eval translation's --seed")
    ap.add_argument("--out", default="region-translations.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from medsyn_cli.data import load_dataset
    from medsyn_cli.metrics.translation import (paste_regions, paste_tumors, reference_picks, select_slices,
                                                 translate_all)
    from medsyn_cli.training.checkpoint import load_for_inference

    blocks = []
    sel = ref = regions = pick = None
    for item in args.runs:
        path, _, label = item.partition("=")
        model, meta = load_for_inference(path, torch.device("cpu"), weights="last")
        if sel is None:  # the slices and regions of the first run's resolution, for all runs
            test = load_dataset(args.data, res=model.res, channels=model.channels, task="translation")
            reference = load_dataset(args.judge_data, res=model.res, channels=model.channels, task="translation")
            sel = select_slices(test, seed=args.seed)
            ref = select_slices(reference, seed=args.seed)
            pick = reference_picks(args.seed, len(ref.tumor), len(sel.normal))[1][0]
            regions = paste_regions(ref, sel.normal_brain, pick)
            filled = np.flatnonzero(regions.flatten(1).sum(1).numpy() > 0)
            cols = filled[np.linspace(0, len(filled) - 1, min(args.n, len(filled))).round().astype(int)]
        y, _ = translate_all(model, sel.normal[cols], "tumor", regions=regions[cols])
        blocks.append((label or f"{Path(path).name} (step {meta.get('step')})", y))
    pasted = paste_tumors(sel.normal[cols], sel.normal_brain[cols], ref.tumor, ref.tumor_masks, pick[cols])

    n = len(cols)
    fig, axes = plt.subplots(3 * len(blocks) + 1, n, figsize=(1.3 * n, 1.3 * (3 * len(blocks) + 1)), squeeze=False)
    show = lambda ax, img: ax.imshow(img[0].numpy(), cmap="gray", vmin=-1, vmax=1)  # noqa: E731
    for b, (label, y) in enumerate(blocks):
        for j, i in enumerate(cols):
            x = sel.normal[i]
            show(axes[3 * b, j], x)
            axes[3 * b, j].contour(regions[i, 0].numpy(), levels=[0.5], colors="red", linewidths=0.6)
            show(axes[3 * b + 1, j], y[j])
            axes[3 * b + 2, j].imshow((y[j] - x).abs()[0].numpy() / 2, cmap="gray", vmin=0, vmax=1)
        for k in range(3):
            axes[3 * b + k, 0].set_ylabel(f"{label}\n{ROWS[k]}" if k == 0 else ROWS[k], fontsize=7)
    for j in range(n):
        show(axes[-1, j], pasted[j])
    axes[-1, 0].set_ylabel("real tumor\npasted in it", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
