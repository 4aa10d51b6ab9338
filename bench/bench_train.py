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

``--amp``: the precision table instead (issue 36). For every registered model (both tasks, unless
``--models``) and for the PyTorch examples' DCGAN (``_dcgan_reference.py``), in the same process, four
configurations each: float32 and bf16 autocast, each with channels-last off and on (``fp32``,
``fp32_channels_last``, ``bf16``, ``bf16_channels_last``), a freshly built model for each; per model the
ratios bf16/fp32 (per layout), channels-last/plain (per precision), the fastest configuration, and its
images/s over the reference's in the same configuration. Batch 64 unless ``--batch-size``; translation
models take ``--translation-batch`` rows (default: the model's own batch) of a normal and a tumor image.

Prints one JSON object on stdout. Run: ``.venv/bin/python bench/bench_train.py [--batch-size 32 ...]``,
``.venv/bin/python bench/bench_train.py --amp [--models dcgan,hagan]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from _common import (AMP_CONFIGS, add_step_flags, against_matmul, amp_ratios,  # first: OpenMP policy
                     bench_steps, load_average, machine_report, matmul_flops_per_s, peak_memory, speed_flags,
                     training_batch, with_channels_last)

import torch  # noqa: E402

from medsyn_cli.config import build_config  # noqa: E402
from medsyn_cli.registry import all_models, get_model  # noqa: E402

DEFAULT_MODELS = "dcgan,wgan"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None,
                   help=f"comma-separated model names (default: {DEFAULT_MODELS}; with --amp every registered model)")
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--amp", action="store_true",
                   help="the precision table: fp32 and bf16 autocast, channels-last off and on, for each model "
                        "and the PyTorch DCGAN reference (--channels-last is then ignored)")
    p.add_argument("--translation-batch", type=int, default=None,
                   help="with --amp: rows per translation step (default: the model's batch size)")
    p.add_argument("--no-reference", action="store_true", help="with --amp: skip the PyTorch DCGAN reference")
    add_step_flags(p, batch_size=None, warmup=2, steps=5)
    args = p.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 64 if args.amp else 32
    return args


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model(name)
    torch.manual_seed(args.seed)
    model = spec.factory(build_config(spec.config_cls, {}), args.res, args.channels).to(device)
    image = torch.rand(args.batch_size, args.channels, args.res, args.res, device=device) * 2 - 1
    return {**bench_steps(model, image, args, device), "forward_flops_per_image": model.flops_per_image(),
            "parameters": model.parameter_counts(), "config": spec.default_config()}


def amp_configs(build, data: dict, args: argparse.Namespace, device: torch.device, images_per_step: int) -> dict:
    """The four precision x layout configurations of one model, a fresh model (same seed) for each."""
    configs = {}
    for label, (bf16, channels_last) in AMP_CONFIGS.items():
        print(f"bench_train --amp:   {label}", file=sys.stderr)
        figures = bench_steps(build(), dict(data), with_channels_last(args, channels_last), device, amp=bf16,
                              images_per_step=images_per_step)
        figures["losses_finite"] = all(math.isfinite(v) for v in figures["last_losses"].values())
        configs[label] = figures
    return configs


def amp_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    spec = get_model(name)
    res = args.res if args.res in spec.resolutions else min(spec.resolutions)
    rows = args.batch_size if spec.task == "unconditional" else (args.translation_batch or spec.default_batch_size)
    images = rows if spec.task == "unconditional" else 2 * rows  # a translation row: a normal and a tumor image

    def build():
        torch.manual_seed(args.seed)
        return spec.factory(build_config(spec.config_cls, {}), res, args.channels).to(device)

    data = training_batch(spec.task, rows, res, args.channels, device, seed=args.seed)
    configs = amp_configs(build, data, args, device, images)
    return {"task": spec.task, "res": res, "batch_size": rows, "images_per_step": images, "configs": configs,
            **amp_ratios(configs)}


def amp_reference(args: argparse.Namespace, device: torch.device) -> dict:
    from _dcgan_reference import RES, ReferenceDCGAN

    def build():
        torch.manual_seed(args.seed)
        return ReferenceDCGAN(1, device)

    data = training_batch("unconditional", args.batch_size, RES, 1, device, seed=args.seed)
    configs = amp_configs(build, data, args, device, args.batch_size)
    return {"name": "pytorch/examples dcgan/main.py (nz 100, ngf 64, ndf 64, BCELoss, Adam 2e-4 (0.5, 0.999), "
                    "torch's default Adam kernel)",
            "res": RES, "channels": 1, "batch_size": args.batch_size, "parameters": build().parameter_counts(),
            "configs": configs, **amp_ratios(configs)}


def amp_main(args: argparse.Namespace, device: torch.device, load_before: float | None) -> dict:
    from medsyn_cli.training.device import amp_choice, cpu_bf16

    names = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else sorted(all_models())
    matmul = {"fp32": [matmul_flops_per_s(args.matmul_size, device)],
              "bf16": [matmul_flops_per_s(args.matmul_size, device, dtype=torch.bfloat16)]}
    reference = None
    if not args.no_reference:
        print("bench_train --amp: the PyTorch DCGAN reference ...", file=sys.stderr)
        reference = amp_reference(args, device)
    models = {}
    for name in names:
        print(f"bench_train --amp: {name} ...", file=sys.stderr)
        models[name] = amp_model(name, args, device)
    matmul["fp32"].append(matmul_flops_per_s(args.matmul_size, device))
    matmul["bf16"].append(matmul_flops_per_s(args.matmul_size, device, dtype=torch.bfloat16))
    peak = {k: max(v) for k, v in matmul.items()}
    for entry in [*models.values(), *([reference] if reference else [])]:
        for label, figures in entry["configs"].items():  # each precision against its own matmul
            figures["fraction_of_matmul"] = round(
                figures["achieved_flops_per_s"] / peak["bf16" if figures["bf16_autocast"] else "fp32"], 4)
    if reference:  # where the model trains on the reference's images: unconditional, 64x64, the same batch
        for entry in models.values():
            comparable = (entry["task"] == "unconditional" and entry["res"] == reference["res"]
                          and entry["batch_size"] == reference["batch_size"])
            entry["over_reference"] = {
                label: round(f["images_per_s"] / reference["configs"][label]["images_per_s"], 3)
                for label, f in entry["configs"].items()} if comparable else None
    on, reason = amp_choice(device, None)
    return {
        "benchmark": "train_throughput_amp",
        **machine_report(device, load_before),
        "cpu_bf16": cpu_bf16() if device.type == "cpu" else None,
        "amp_auto": {"on": on, "reason": reason},
        "res": args.res,
        "channels": args.channels,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "compile": bool(args.compile),
        "configurations": list(AMP_CONFIGS),
        **peak_memory(device),
        "matmul": {"n": args.matmul_size, "flops_per_s": peak, "flops_per_s_before_after": matmul,
                   "bf16_over_fp32": round(peak["bf16"] / peak["fp32"], 3)},
        "reference": reference,
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = load_average()
    if args.amp:
        print(json.dumps(amp_main(args, device, load_before), indent=2))
        return 0
    names = [m.strip() for m in (args.models or DEFAULT_MODELS).split(",") if m.strip()]
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
