"""Benchmark: HAGAN training throughput on this machine, and as a fraction of its matmul rate.

Prints one JSON object: images/s of real ``train_step`` calls (default 64x64, batch 32; batch / the
median timed step, ``images_per_s_mean`` from the mean) in the warm-up phase (conventional training) and in the AttnMix phase, the FLOPs one training image costs
(forward + backward of every network, counted by ``torch.utils.flop_counter.FlopCounterMode``:
convolutions, matmuls and the attention bmm; element-wise work is not counted), the FLOP/s of a
large fp32 matmul measured in the same run, and the fraction of that rate the training reaches.

    .venv/bin/python bench/bench_hagan.py               # paper widths, 64x64, batch 32
    .venv/bin/python bench/bench_hagan.py --steps 5 --ablation base
    .venv/bin/python bench/bench_hagan.py --channels-last      # or --compile, as medsyn train has them
    .venv/bin/python bench/bench_hagan.py --amp                # also under bf16 autocast: "bf16", "bf16_over_fp32"

The JSON also records the flags, each phase's warm-up seconds (the compilation, with ``--compile``) and
the process's peak resident memory (``peak_rss_mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from _common import (add_speed_flags, apply_speed_flags, matmul_flops_per_s, peak_memory,  # first: OpenMP
                     set_amp, speed_flags, time_train_steps)

import torch

from medsyn_plugins.hagan import HAGANConfig
from medsyn_plugins.hagan.model import HAGAN

#: warm-up length used to pin each phase: steps below it are conventional, steps above it AttnMix.
PHASE_SWITCH = 10**6


def time_phase(model: HAGAN, batch: dict, first_step: int, warmup: int, steps: int) -> dict:
    """One phase's figures: the step numbers start at ``first_step``, which pins the phase."""
    timing = time_train_steps(model, batch, warmup=warmup, steps=steps, first_step=first_step)
    n = batch["image"].shape[0]
    return {"attnmix_active": bool(timing["last_losses"]["attnmix"]), "step_seconds": timing["step_seconds"],
            "warmup_seconds": timing["warmup_seconds"], "images_per_s": n / timing["median_seconds"],
            "images_per_s_mean": n * steps / sum(timing["step_seconds"]),
            "flops_per_training_image": timing["flops_per_step"] // n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--ablation", default="full")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per phase")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase")
    parser.add_argument("--amp", action="store_true",
                        help="also time both phases under bf16 autocast (a fresh model, same seed): the JSON's "
                             "bf16 and bf16_over_fp32; the figures at the top stay float32")
    add_speed_flags(parser)
    args = parser.parse_args()

    def build(bf16: bool):
        torch.manual_seed(0)
        model = HAGAN(HAGANConfig(ablation=args.ablation, warmup_steps=PHASE_SWITCH), args.res, args.channels)
        set_amp(model, torch.device("cpu"), bf16)
        batch = {"image": torch.rand(args.batch, args.channels, args.res, args.res) * 2 - 1}
        return model, apply_speed_flags(model, batch, args, torch.device("cpu"))

    model, batch = build(False)
    phases = {"warmup_phase": 0, "attnmix_phase": PHASE_SWITCH}

    result = {
        "model": "hagan", "ablation": args.ablation, "res": args.res, "batch": args.batch,
        "channels": args.channels, "device": "cpu", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "load_average_1min": os.getloadavg()[0], **speed_flags(args),
        "parameters": model.parameter_counts(), "paper_parameters_64": {"generator": 3.6e6, "discriminator": 2.8e6},
        "forward_flops_per_image": model.flops_per_image(),
    }
    matmul_before = matmul_flops_per_s()
    for name, step in phases.items():
        result[name] = time_phase(model, batch, step, args.warmup, args.steps)
    if args.amp:
        model, batch = build(True)
        result["bf16"] = {name: time_phase(model, batch, step, args.warmup, args.steps)
                          for name, step in phases.items()}
        result["bf16_over_fp32"] = {name: result["bf16"][name]["images_per_s"] / result[name]["images_per_s"]
                                    for name in phases}
    result["amp"] = bool(args.amp)
    matmul_after = matmul_flops_per_s()
    result["matmul_fp32_flops_per_s"] = max(matmul_before, matmul_after)
    result["matmul_fp32_flops_per_s_before_after"] = [matmul_before, matmul_after]
    for name in phases:
        phase = result[name]
        achieved = phase["images_per_s"] * phase["flops_per_training_image"]
        phase["achieved_flops_per_s"] = achieved
        phase["fraction_of_matmul_rate"] = achieved / result["matmul_fp32_flops_per_s"]
    result.update(peak_memory("cpu"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
