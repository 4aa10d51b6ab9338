"""Benchmark: CycleGAN and SAG-GAN training throughput, and the time to translate a whole volume.

Prints one JSON object:

* ``train``: for each model (default settings, 128x128, batch 1 by default - the papers' batch),
  real ``train_step`` calls on random images (and, for sag-gan, a mask on every other row):
  pairs/s (one normal + one tumor image each) and images/s (both counted) from the median timed
  step after warm-up steps, the FLOPs one training step costs (counted with
  ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matmuls), the FLOP/s reached and its
  ``fraction_of_matmul`` (of a 2048² float32 matmul timed in the same process before and after);
* ``translate``: ``medsyn_cli.translation.translate_volume`` of one 240x240x155 volume (the real
  BraTS 2018 t1ce from ../shared/data when present, else a synthetic head of that size) with an
  untrained sag-gan at 128 (default widths; weights do not change the cost): seconds end to end
  (read, slice, resize, forward passes in batches, resize back, write NIfTI), and slices/s.

    .venv/bin/python bench/bench_translation.py
    .venv/bin/python bench/bench_translation.py --steps 5 --threads 1 --translate-res 64
    .venv/bin/python bench/bench_translation.py --channels-last   # or --compile: the training part
    .venv/bin/python bench/bench_translation.py --amp             # also under bf16 autocast

``--amp`` also times each model's training under bf16 autocast (a fresh model, same seed: ``bf16`` and
``bf16_over_fp32`` in each ``train`` entry) and translates the volume again under bf16 autocast, as
``medsyn translate`` does by default where the CPU has native bf16 that measures faster (``translate_bf16``,
``translate_bf16_speedup``: fp32 seconds over bf16 seconds); the other figures stay float32.

The JSON also records the flags (applied to training as ``medsyn train`` applies them; the volume is
translated with plain networks), each model's warm-up seconds (the compilation, with ``--compile``) and
the process's peak resident memory (``peak_rss_mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from _common import (add_speed_flags, apply_speed_flags, matmul_flops_per_s, peak_memory,  # first: OpenMP
                     set_amp, speed_flags, time_train_steps)

import numpy as np
import torch

from medsyn_cli.config import build_config
from medsyn_cli.registry import get_model

ROOT = Path(__file__).resolve().parents[1]
BRATS = ROOT.parent / "shared" / "data" / "brats2018-sample"


def build(name: str, res: int):
    spec = get_model(name)
    torch.manual_seed(0)
    return spec.factory(build_config(spec.config_cls, {}), res, 1)


def random_batch(res: int, batch: int) -> dict[str, torch.Tensor]:
    mask = torch.zeros(batch, 1, res, res)
    mask[:, :, res // 3: res // 2, res // 3: res // 2] = 1
    return {"normal": torch.rand(batch, 1, res, res) * 2 - 1, "tumor": torch.rand(batch, 1, res, res) * 2 - 1,
            "tumor_mask": mask, "tumor_has_mask": torch.arange(batch) % 2 == 0}


def bench_training(name: str, res: int, batch: int, warmup: int, steps: int, args: argparse.Namespace,
                   bf16: bool = False) -> dict:
    model = build(name, res)
    set_amp(model, torch.device("cpu"), bf16)
    data = apply_speed_flags(model, random_batch(res, batch), args, torch.device("cpu"))
    timing = time_train_steps(model, data, warmup=warmup, steps=steps)
    median, flops = timing["median_seconds"], timing["flops_per_step"]
    return {"res": res, "batch_size": batch, "warmup_steps": warmup, "timed_steps": steps,
            "step_seconds": [round(t, 3) for t in timing["step_seconds"]],
            "warmup_seconds": round(timing["warmup_seconds"], 2),
            # a step consumes batch normal + batch tumor images
            "pairs_per_s": round(batch / median, 4), "images_per_s": round(2 * batch / median, 4),
            "train_flops_per_step": flops, "achieved_flops_per_s": round(flops / median)}


def synthetic_head(path: Path) -> None:
    import nibabel as nib

    x, y, z = np.meshgrid(np.linspace(-1, 1, 240), np.linspace(-1, 1, 240), np.linspace(-1, 1, 155), indexing="ij")
    head = (x / 0.7) ** 2 + (y / 0.85) ** 2 + (z / 0.8) ** 2 < 1
    vol = np.where(head, 400 + 150 * np.sin(6 * x) * np.cos(5 * y + 2 * z), 0).astype(np.int16)
    nib.save(nib.Nifti1Image(vol, np.diag([-1.0, -1.0, 1.0, 1.0])), str(path))


def bench_translate(res: int, batch_size: int, bf16: bool = False) -> dict:
    from medsyn_cli.translation import translate_volume

    model = build("sag-gan", res).eval()
    set_amp(model, torch.device("cpu"), bf16)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = sorted(BRATS.glob("*/*_t1ce.nii.gz")) if BRATS.is_dir() else []
        source = cases[0] if cases else tmp / "synthetic_head.nii.gz"
        if not cases:
            synthetic_head(source)
        with torch.inference_mode():
            t = time.perf_counter()
            outcome = translate_volume(model, source, tmp / "out.nii.gz", "tumor", tmp / "att.nii.gz",
                                       batch_size=batch_size)
            seconds = time.perf_counter() - t
    return {"input": source.name if cases else "synthetic 240x240x155 int16 head", "res": res, "bf16_autocast": bf16,
            "batch_size": batch_size, "seconds": round(seconds, 2),
            "slices_translated": outcome.slices_translated, "slices_skipped": outcome.slices_skipped,
            "slices_per_s": round(outcome.slices_translated / seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cyclegan,sag-gan")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--translate-res", type=int, default=128)
    ap.add_argument("--translate-batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--amp", action="store_true", help="also train and translate under bf16 autocast")
    add_speed_flags(ap)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    matmul_before = matmul_flops_per_s()
    train = {m: bench_training(m, args.res, args.batch_size, args.warmup, args.steps, args)
             for m in args.models.split(",") if m}
    matmul = max(matmul_before, matmul_flops_per_s())  # the faster of before and after, as bench_train does
    for figures in train.values():
        figures["fraction_of_matmul"] = round(figures["achieved_flops_per_s"] / matmul, 3)
    if args.amp:
        for m, figures in train.items():
            figures["bf16"] = bench_training(m, args.res, args.batch_size, args.warmup, args.steps, args, bf16=True)
            figures["bf16_over_fp32"] = round(figures["bf16"]["images_per_s"] / figures["images_per_s"], 3)
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "device": "cpu",
                    "load_average": [round(v, 2) for v in os.getloadavg()]},
        **speed_flags(args),
        "matmul": {"size": 2048, "flops_per_s": round(matmul)},
        "train": train,
        "translate": bench_translate(args.translate_res, args.translate_batch),
        "amp": bool(args.amp),
    }
    if args.amp:
        result["translate_bf16"] = bench_translate(args.translate_res, args.translate_batch, bf16=True)
        seconds = (result["translate"]["seconds"], result["translate_bf16"]["seconds"])
        result["translate_bf16_speedup"] = round(seconds[0] / seconds[1], 3)
    result.update(peak_memory("cpu"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
