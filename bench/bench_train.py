"""Training throughput of the baseline GANs, and how it compares with what the machine can do.

For each model (dcgan, wgan by default) this builds the model with its default settings, runs real
``train_step`` calls (forward, backward, optimizer steps) on a synthetic batch, and reports:

* images/s: real images consumed per second of training, from the median timed step (warm-up steps
  are not timed; the median keeps a moment of contention on a shared machine out of the figure);
* train FLOPs per image: everything one ``train_step`` computes (all critic iterations and the
  gradient penalty's double backward for wgan), counted with ``torch.utils.flop_counter.FlopCounterMode``
  and divided by the real images the step consumed;
* achieved FLOP/s and its fraction of a large float32 matrix product timed in the same process, the
  best the same device reaches on dense work. The matmul is timed before and after the models and the
  faster figure is kept, so a busy shared machine lowers the fraction rather than inflating it;
* the seconds of the warm-up steps (with ``--compile`` they hold the compilation) and the process's
  peak memory (``peak_rss_mb``; on CUDA also ``cuda_max_memory_allocated_mb``).

``--compile`` and ``--channels-last`` prepare the networks and the batch as ``medsyn train`` does.

Prints one JSON object on stdout. Run: ``.venv/bin/python bench/bench_train.py [--batch-size 32 ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from _common import (add_speed_flags, apply_speed_flags, cpu_name, matmul_flops_per_s,  # first: OpenMP policy
                     peak_memory, speed_flags, time_train_steps)

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import get_model  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="dcgan,wgan", help="comma-separated model names")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32, help="real images per train_step")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--steps", type=int, default=5, help="timed steps")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n float32 matmul")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    add_speed_flags(p)
    return p.parse_args(argv)


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model(name)
    torch.manual_seed(args.seed)
    model = spec.factory(build_config(spec.config_cls, {}), args.res, args.channels).to(device)
    model.train()
    if device.type == "cuda":  # what the trainer does on a GPU
        model.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    batch = {"image": torch.rand(args.batch_size, args.channels, args.res, args.res, device=device) * 2 - 1}
    batch = apply_speed_flags(model, batch, args, device)

    timing = time_train_steps(model, batch, warmup=args.warmup, steps=args.steps, device=device)
    median = timing["median_seconds"]
    return {
        "images_per_s": round(args.batch_size / median, 2),
        "images_per_s_mean": round(args.batch_size * args.steps / sum(timing["step_seconds"]), 2),
        "seconds_per_step_median": round(median, 4),
        "step_seconds": [round(t, 3) for t in timing["step_seconds"]],
        "warmup_seconds": round(timing["warmup_seconds"], 2),
        "train_flops_per_image": int(timing["flops_per_step"] / args.batch_size),
        "achieved_flops_per_s": timing["flops_per_step"] / median,
        "forward_flops_per_image": model.flops_per_image(),
        "parameters": model.parameter_counts(),
        "config": spec.default_config(),
        "last_losses": timing["last_losses"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None

    matmul = [matmul_flops_per_s(args.matmul_size, device)]
    models = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"bench_train: {name} ...", file=sys.stderr)
        models[name] = bench_model(name, args, device)
    matmul.append(matmul_flops_per_s(args.matmul_size, device))
    peak = max(matmul)
    for result in models.values():
        result["fraction_of_matmul"] = round(result["achieved_flops_per_s"] / peak, 4)

    report = {
        "benchmark": "train_throughput",
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": None if load_before is None else round(load_before[0], 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "res": args.res,
        "channels": args.channels,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        **speed_flags(args),
        **peak_memory(device),
        "matmul": {"n": args.matmul_size, "dtype": "float32", "flops_per_s": peak,
                   "flops_per_s_before_after": matmul},
        "models": models,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
