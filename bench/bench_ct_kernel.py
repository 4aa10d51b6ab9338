"""Training throughput of the three ct-kernel-wgan variants on this machine.

For each variant (small at 64x64; large-v1 and large-v2 at 128x128; default settings: n_critic 5,
kernel on for the 128 variants) this builds the model, runs real ``train_step`` calls (n_critic critic
steps with the gradient penalty, then one generator step) on a synthetic batch, and reports:

* images/s: real images per second, batch / median timed step (warm-up steps are not timed);
* train FLOPs per image: one whole ``train_step`` counted with ``torch.utils.flop_counter``
  (``bench/_common.py``'s ``GlobalFlopCounter``, which tolerates the penalty's ``autograd.grad``), / batch;
* achieved FLOP/s and its fraction of a large float32 matmul timed in the same process (before and
  after the models; the faster is kept).

``--compile`` and ``--channels-last`` prepare the networks and the batch as ``medsyn train`` does; the JSON
records them, each variant's warm-up seconds (the compilation, with ``--compile``) and the process's peak
memory (``peak_rss_mb``; on CUDA also ``cuda_max_memory_allocated_mb``).

Prints one JSON object on stdout. Run: ``.venv/bin/python bench/bench_ct_kernel.py [--batch-size 16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (add_speed_flags, apply_speed_flags, cpu_name, matmul_flops_per_s,  # noqa: E402  (first)
                     peak_memory, speed_flags, time_train_steps)

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import get_model  # noqa: E402

VARIANTS = {"small": 64, "large-v1": 128, "large-v2": 128}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--batch-size", type=int, default=16, help="real images per train_step")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n float32 matmul")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    add_speed_flags(p)
    return p.parse_args(argv)


def bench_variant(variant: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model("ct-kernel-wgan")
    res = VARIANTS[variant]
    torch.manual_seed(args.seed)
    config = build_config(spec.config_cls, {"variant": variant})
    model = spec.factory(config, res, 1).to(device)
    model.train()
    if device.type == "cuda":  # what the trainer does on a GPU
        model.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    batch = {"image": torch.rand(args.batch_size, 1, res, res, device=device) * 2 - 1}
    batch = apply_speed_flags(model, batch, args, device)

    timing = time_train_steps(model, batch, warmup=args.warmup, steps=args.steps, device=device)
    median = timing["median_seconds"]
    return {
        "res": res,
        "images_per_s": round(args.batch_size / median, 3),
        "seconds_per_step_median": round(median, 3),
        "step_seconds": [round(t, 3) for t in timing["step_seconds"]],
        "warmup_seconds": round(timing["warmup_seconds"], 2),
        "train_flops_per_image": int(timing["flops_per_step"] / args.batch_size),
        "achieved_flops_per_s": timing["flops_per_step"] / median,
        "parameters": model.parameter_counts(),
        "use_kernel": model.use_kernel,
        "n_critic": config.n_critic,
        "last_losses": timing["last_losses"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    matmul = [matmul_flops_per_s(args.matmul_size, device)]
    variants = {}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        print(f"bench_ct_kernel: {name} ...", file=sys.stderr)
        variants[name] = bench_variant(name, args, device)
    matmul.append(matmul_flops_per_s(args.matmul_size, device))
    peak = max(matmul)
    for result in variants.values():
        result["fraction_of_matmul"] = round(result["achieved_flops_per_s"] / peak, 4)

    print(json.dumps({
        "benchmark": "ct_kernel_wgan_train_throughput",
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": None if load_before is None else round(load_before, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        **speed_flags(args),
        **peak_memory(device),
        "matmul": {"n": args.matmul_size, "dtype": "float32", "flops_per_s": peak,
                   "flops_per_s_before_after": matmul},
        "variants": variants,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
