"""How much of a translation's FID is fine speckle? Scores a translation run as `medsyn eval translation`
does, but with each normal -> tumor output smoothed inside its attended region (the weight is the
attention map: A * smooth(y) + (1 - A) * y), and prints one JSON line per filter.

    python bench/translation_smoothing.py runs/fast-s0 --data brats-test --judge-data brats-train \
        --fid-weights ../shared/weights/fid-inception-pool3.pth --filters none median3 gauss0.7

An analysis of the yardstick, not a feature: if smoothing moved FID far, speckle would be what keeps the
translation from real tumors (docs/lab/brats-translation-yardstick.md).
"""

from __future__ import annotations

import argparse
import json
import sys


def smoother(name: str):
    """``name`` -> f(array N x C x H x W) -> smoothed array, or None for 'none'."""
    from scipy.ndimage import gaussian_filter, median_filter

    if name == "none":
        return None
    if name.startswith("median"):
        k = int(name[len("median"):] or 3)
        return lambda a: median_filter(a, size=(1, 1, k, k))
    if name.startswith("gauss"):
        s = float(name[len("gauss"):] or 1.0)
        return lambda a: gaussian_filter(a, sigma=(0, 0, s, s))
    raise SystemExit(f"unknown filter {name!r}: none, medianK or gaussSIGMA")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--data", required=True, help="held-out cases (with masks)")
    ap.add_argument("--judge-data", required=True, help="the training cases")
    ap.add_argument("--fid-weights", required=True)
    ap.add_argument("--filters", nargs="+", default=["none", "median3", "gauss0.7"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    from medsyn_cli.cli.eval_translation import _inception
    from medsyn_cli.data import load_dataset
    from medsyn_cli.metrics.judge import JudgeSettings, load_or_train
    from medsyn_cli.metrics.translation import score_translation
    from medsyn_cli.training.checkpoint import load_for_inference

    model, _ = load_for_inference(args.run, "cpu", weights="last")
    test = load_dataset(args.data, res=model.res, channels=model.channels, task="translation")
    train = load_dataset(args.judge_data, res=model.res, channels=model.channels, task="translation")
    judge, _ = load_or_train(train, JudgeSettings(seed=args.seed), "cpu")
    features, _ = _inception(args.fid_weights, "cpu")
    translate = model.translate
    for name in args.filters:
        smooth = smoother(name)

        def filtered(x, to, smooth=smooth):
            y, a = translate(x, to=to)
            if smooth is None or to != "tumor" or a is None:
                return y, a
            yn, w = y.float().cpu().numpy(), a.float().cpu().numpy()
            return torch.from_numpy(w * smooth(yn) + (1 - w) * yn).to(y.device, y.dtype), a

        model.translate = filtered
        r = score_translation(model, test, judge, seed=args.seed, features=features)
        d = r["distances"]
        print(json.dumps({"run": args.run, "filter": name, "conversion_to_tumor": r["to_tumor"]["conversion"],
                          "fid_translated": round(d["fid_translated_normal_vs_tumor"], 2),
                          "fid_untouched": round(d["fid_normal_vs_tumor"], 2),
                          "fid_ratio": round(d["fid_ratio_to_tumor"], 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
