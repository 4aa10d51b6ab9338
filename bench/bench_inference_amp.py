"""Inference speed in float32 and under bf16 autocast: sampling (unconditional models) and translation
(translation models), as ``medsyn sample`` and ``medsyn translate`` run the generator.

For each model (default dcgan, hagan, sag-gan; untrained, default settings, 64x64, eval mode, under
``torch.inference_mode``) it times ``--batches`` forward batches in each precision, the two precisions
alternating batch by batch so that a neighbour's load falls on both alike, after one untimed batch of
each. It reports per model:

* ``fp32_images_per_s``, ``bf16_images_per_s``: batch / the median timed batch;
* ``bf16_over_fp32``: the ratio (above 1: bf16 is faster);
* ``mean_abs_diff``: the mean absolute difference of the bf16 and fp32 outputs of the same seed
  (images in [-1, 1]), beside ``mean_abs_fp32``, the fp32 outputs' mean magnitude (an untrained
  generator's outputs can be small).

It measured bf16 1.6-2.0x faster for every model on the development CPU (avx512_bf16), which is why
``medsyn sample``/``translate`` take the training rule (``amp_choice``) for ``--amp auto`` too.
Prints one JSON object. Run: ``.venv/bin/python bench/bench_inference_amp.py [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import cpu_name, load_average, synchronize  # first: sets the OpenMP policy

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import get_model  # noqa: E402
from medsyn_cli.training.device import autocast_factory, cpu_bf16  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="dcgan,hagan,sag-gan", help="comma-separated model names")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64, help="images per sampling batch (medsyn sample's default)")
    p.add_argument("--translate-batch", type=int, default=16, help="slices per batch (medsyn translate's default)")
    p.add_argument("--batches", type=int, default=5, help="timed batches per precision")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    return p.parse_args(argv)


def run_once(model, task: str, n: int, seed: int, device: torch.device) -> torch.Tensor:
    if task == "unconditional":
        return model.sample(n, generator=torch.Generator().manual_seed(seed))
    x = torch.rand(n, model.channels, model.res, model.res, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return model.translate(x.to(device), "tumor")[0]


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model(name)
    torch.manual_seed(0)
    model = spec.factory(build_config(spec.config_cls, {}), args.res, 1).to(device).eval()
    n = args.batch_size if spec.task == "unconditional" else args.translate_batch
    contexts = {"fp32": autocast_factory(device, False), "bf16": autocast_factory(device, True)}
    seconds: dict[str, list[float]] = {k: [] for k in contexts}
    outputs = {}
    with torch.inference_mode():
        for precision, ctx in contexts.items():  # untimed: allocator, oneDNN primitives
            model.autocast = ctx
            outputs[precision] = run_once(model, spec.task, n, 0, device).float().cpu()
        for i in range(args.batches):
            for precision, ctx in contexts.items():
                model.autocast = ctx
                synchronize(device)
                start = time.perf_counter()
                run_once(model, spec.task, n, i + 1, device)
                synchronize(device)
                seconds[precision].append(time.perf_counter() - start)
    rate = {k: n / statistics.median(v) for k, v in seconds.items()}
    return {"task": spec.task, "batch": n,
            "fp32_images_per_s": round(rate["fp32"], 2), "bf16_images_per_s": round(rate["bf16"], 2),
            "bf16_over_fp32": round(rate["bf16"] / rate["fp32"], 3),
            "fp32_batch_seconds": [round(t, 4) for t in seconds["fp32"]],
            "bf16_batch_seconds": [round(t, 4) for t in seconds["bf16"]],
            "mean_abs_diff": float(f"{float((outputs['bf16'] - outputs['fp32']).abs().mean()):.3g}"),
            "mean_abs_fp32": float(f"{float(outputs['fp32'].abs().mean()):.3g}")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = load_average()
    models = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"bench_inference_amp: {name} ...", file=sys.stderr)
        models[name] = bench_model(name, args, device)
    load_after = load_average()
    print(json.dumps({
        "benchmark": "inference_amp",
        "torch": torch.__version__, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_bf16": cpu_bf16() if device.type == "cpu" else None,
        "threads": torch.get_num_threads(), "res": args.res, "timed_batches": args.batches,
        "load_average_1min_before": None if load_before is None else round(load_before, 2),
        "load_average_1min_after": None if load_after is None else round(load_after, 2),
        "models": models,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
