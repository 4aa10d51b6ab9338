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

``--amp`` also times each variant under bf16 autocast (a fresh model, same seed): ``bf16`` (the same
figures, no fraction) and ``bf16_over_fp32`` in each variant; the variant's own figures stay float32.

Prints one JSON object on stdout. Run: ``.venv/bin/python bench/bench_ct_kernel.py [--batch-size 16] [--amp]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (add_step_flags, against_matmul, bench_steps, load_average,  # noqa: E402  (first)
                     machine_report, peak_memory, speed_flags)

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import get_model  # noqa: E402

VARIANTS = {"small": 64, "large-v1": 128, "large-v2": 128}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--amp", action="store_true", help="also time each variant under bf16 autocast")
    add_step_flags(p, batch_size=16, warmup=1, steps=3)
    return p.parse_args(argv)


def bench_variant(variant: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model("ct-kernel-wgan")
    res = VARIANTS[variant]
    config = build_config(spec.config_cls, {"variant": variant})

    def build():
        torch.manual_seed(args.seed)
        return spec.factory(config, res, 1).to(device)

    model = build()
    image = torch.rand(args.batch_size, 1, res, res, device=device) * 2 - 1
    base = bench_steps(model, image, args, device, amp=False if args.amp else None)  # --amp: fp32 also on CUDA
    result = {"res": res, **base, "parameters": model.parameter_counts(),
              "use_kernel": model.use_kernel, "n_critic": config.n_critic}
    if args.amp:
        result["bf16"] = bench_steps(build(), image, args, device, amp=True)
        result["bf16_over_fp32"] = round(result["bf16"]["images_per_s"] / result["images_per_s"], 3)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = load_average()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    variants, matmul = against_matmul(args, device, names, lambda v: bench_variant(v, args, device),
                                      "bench_ct_kernel")
    print(json.dumps({
        "benchmark": "ct_kernel_wgan_train_throughput",
        **machine_report(device, load_before),
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        **speed_flags(args),
        "amp": bool(args.amp),
        **peak_memory(device),
        "matmul": matmul,
        "variants": variants,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
