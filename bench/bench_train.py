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
import sys

from _common import (add_step_flags, against_matmul, bench_steps, load_average,  # first: OpenMP policy
                     machine_report, peak_memory, speed_flags)

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import get_model  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="dcgan,wgan", help="comma-separated model names")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--channels", type=int, default=1)
    add_step_flags(p, batch_size=32, warmup=2, steps=5)
    return p.parse_args(argv)


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model(name)
    torch.manual_seed(args.seed)
    model = spec.factory(build_config(spec.config_cls, {}), args.res, args.channels).to(device)
    image = torch.rand(args.batch_size, args.channels, args.res, args.res, device=device) * 2 - 1
    return {**bench_steps(model, image, args, device), "forward_flops_per_image": model.flops_per_image(),
            "parameters": model.parameter_counts(), "config": spec.default_config()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = load_average()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models, matmul = against_matmul(args, device, names, lambda n: bench_model(n, args, device), "bench_train")
    report = {
        "benchmark": "train_throughput",
        **machine_report(device, load_before),
        "res": args.res,
        "channels": args.channels,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        **speed_flags(args),
        **peak_memory(device),
        "matmul": matmul,
        "models": models,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
