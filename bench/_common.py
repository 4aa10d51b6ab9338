"""What the benchmarks share: the device's dense matmul rate, FLOP counting of a training step, the
timing of training steps (warm-up, then the median of the timed steps), device synchronisation, the
CPU's name, peak memory, and the speed flags (``--compile``, ``--channels-last``) applied as the trainer
applies them.

Import this before torch where the OpenMP wait policy matters: idle OpenMP threads then sleep instead
of spinning. With spinning (libgomp's default), one busy neighbour on a shared machine stalls every
parallel region, and many-small-op steps (WGAN-GP's five critic iterations) measured 5-10x slower and
erratic. The variable must be set before torch starts its thread pool.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from medsyn_cli.machine import cpu_model as cpu_name  # noqa: E402,F401  (re-exported for the benches)


class _NoModuleTracking:
    """Stands in for FlopCounterMode's module tracker: all FLOPs go to "Global"."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class GlobalFlopCounter(FlopCounterMode):
    """FlopCounterMode without per-module attribution. Its module tracker hangs backward hooks on
    module inputs, which ``torch.autograd.grad`` (the gradient penalty's double backward) rejects."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()


def step_flops(step: Callable[[], Any]) -> int:
    """Every FLOP ``step()`` computes (forward, backward, double backward), counted by PyTorch. Compiled
    networks run eagerly here: the counter sees aten operators, which compiled kernels hide."""
    from medsyn_cli.nn.compiled import eager

    counter = GlobalFlopCounter()
    with eager(), counter:
        step()
    return int(counter.get_total_flops())


def time_train_steps(model: Any, batch: dict, *, warmup: int, steps: int, device: torch.device | str = "cpu",
                     first_step: int = 0) -> dict:
    """Run ``warmup`` untimed ``train_step`` calls (with ``--compile`` they hold the compiler), count one
    step's FLOPs, then time ``steps`` steps; the step numbers go on from ``first_step`` as in a run.

    Returns ``warmup_seconds``, ``step_seconds`` (each timed step), ``median_seconds`` (the figure the
    benches report: robust to a neighbour grabbing the cores for a moment), ``flops_per_step`` and the
    last step's losses as floats."""
    if steps < 1:
        raise ValueError("time_train_steps needs at least one timed step")
    device = torch.device(device)
    step = first_step
    synchronize(device)
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_step(batch, step)
        step += 1
    synchronize(device)
    warmup_seconds = time.perf_counter() - start
    flops = step_flops(lambda: model.train_step(batch, step))
    step += 1
    seconds, losses = [], {}
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        losses = model.train_step(batch, step)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        step += 1
    return {"warmup_seconds": warmup_seconds, "step_seconds": seconds, "median_seconds": statistics.median(seconds),
            "flops_per_step": flops, "last_losses": {k: float(v) for k, v in losses.items()}}


def add_speed_flags(parser: argparse.ArgumentParser) -> None:
    """``--compile`` and ``--channels-last``, as ``medsyn train`` has them."""
    parser.add_argument("--compile", action="store_true", help="torch.compile each network (as medsyn train --compile)")
    parser.add_argument("--channels-last", action="store_true",
                        help="networks and image batches in channels-last layout (as medsyn train --channels-last)")


def apply_speed_flags(model: Any, batch: dict, args: argparse.Namespace, device: torch.device) -> dict:
    """Prepare ``model``'s networks as the trainer does for these flags; returns the batch in the layout
    the trainer would hand over."""
    from medsyn_cli.training.speedups import prepare_networks

    prepare_networks(model, device, compile=args.compile, channels_last=args.channels_last)
    if args.channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
    return batch


def speed_flags(args: argparse.Namespace) -> dict:
    """The flags for the JSON report."""
    return {"compile": bool(args.compile), "channels_last": bool(args.channels_last)}


def peak_memory(device: torch.device | str = "cpu") -> dict:
    """The process's peak resident memory so far (MiB; ``ru_maxrss`` is KiB on Linux, bytes on macOS)
    and, on CUDA, the most memory torch's allocator held for tensors (MiB)."""
    import resource  # Unix only, as these benchmarks

    device = torch.device(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"peak_rss_mb": round(rss_mb, 1),
            "cuda_max_memory_allocated_mb": None if cuda is None else round(cuda, 1)}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(n: int = 2048, device: torch.device | str = "cpu", min_seconds: float = 1.0,
                       dtype: torch.dtype = torch.float32) -> float:
    """Sustained FLOP/s of an n x n matrix product (2 n^3 FLOPs each; float32 unless ``dtype``), the best
    the device reaches on dense work; timed for at least ``min_seconds`` and 3 products."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):  # warm-up: thread pool, caches, cuBLAS handles
        a @ b
    synchronize(device)
    reps, start = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and reps >= 3:
            return 2 * n**3 * reps / elapsed


def add_step_flags(parser: argparse.ArgumentParser, *, batch_size: int | None, warmup: int, steps: int) -> None:
    """The flags of a training-throughput bench: batch, warm-up and timed steps, the matmul size, device,
    threads, seed, and the speed flags."""
    parser.add_argument("--batch-size", type=int, default=batch_size, help="real images per train_step")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n float32 matmul")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    add_speed_flags(parser)


def set_amp(model: Any, device: torch.device, amp: bool | None) -> bool:
    """Give ``model`` the trainer's autocast: bf16 when ``amp`` (None: on CUDA only, the benches' default,
    so their figures stay comparable with those before bf16 became the CPU default), else float32.
    Returns whether bf16 is on."""
    from medsyn_cli.training.device import autocast_factory

    on = device.type == "cuda" if amp is None else bool(amp)
    model.autocast = autocast_factory(device, on)
    return on


def with_channels_last(args: argparse.Namespace, channels_last: bool) -> argparse.Namespace:
    """A copy of ``args`` with ``--channels-last`` set to ``channels_last``."""
    return argparse.Namespace(**{**vars(args), "channels_last": channels_last})


#: The four precision x layout configurations of the ``--amp`` tables, in the order they are timed.
AMP_CONFIGS = {"fp32": (False, False), "fp32_channels_last": (False, True),
               "bf16": (True, False), "bf16_channels_last": (True, True)}


def amp_ratios(configs: dict[str, dict]) -> dict:
    """bf16 over fp32 images/s for each layout, and channels-last over plain for each precision (None
    where a configuration is missing), and the fastest configuration."""
    def ratio(a: str, b: str):
        if a in configs and b in configs:
            return round(configs[a]["images_per_s"] / configs[b]["images_per_s"], 3)
        return None

    return {"bf16_over_fp32": ratio("bf16", "fp32"),
            "bf16_over_fp32_channels_last": ratio("bf16_channels_last", "fp32_channels_last"),
            "channels_last_over_plain_fp32": ratio("fp32_channels_last", "fp32"),
            "channels_last_over_plain_bf16": ratio("bf16_channels_last", "bf16"),
            "fastest": max(configs, key=lambda c: configs[c]["images_per_s"]) if configs else None}


def training_batch(task: str, batch: int, res: int, channels: int = 1, device: torch.device | str = "cpu",
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """A synthetic training batch in [-1, 1] (content does not change the arithmetic): ``image`` for an
    unconditional model; ``normal``, ``tumor`` and a tumor mask on every other row for a translation model."""
    g = torch.Generator().manual_seed(seed)

    def images() -> torch.Tensor:
        return (torch.rand(batch, channels, res, res, generator=g) * 2 - 1).to(device)

    if task == "unconditional":
        return {"image": images()}
    mask = torch.zeros(batch, 1, res, res)
    mask[:, :, res // 3: res // 2, res // 3: res // 2] = 1
    return {"normal": images(), "tumor": images(), "tumor_mask": mask.to(device),
            "tumor_has_mask": (torch.arange(batch) % 2 == 0).to(device)}


def bench_steps(model: Any, data: torch.Tensor | dict, args: argparse.Namespace, device: torch.device, *,
                amp: bool | None = None, images_per_step: int | None = None) -> dict:
    """Time ``model``'s ``train_step`` on ``data`` (an image batch, as ``{"image": data}``, or a whole batch
    dict) as the trainer would run it (train mode, the speed flags, bf16 autocast as :func:`set_amp` says);
    the figures every training bench reports. ``images_per_step``: the images one step consumes
    (default: the batch size; a translation step consumes a normal and a tumor image per row)."""
    model.train()
    bf16 = set_amp(model, device, amp)
    batch = apply_speed_flags(model, data if isinstance(data, dict) else {"image": data}, args, device)
    timing = time_train_steps(model, batch, warmup=args.warmup, steps=args.steps, device=device)
    median = timing["median_seconds"]
    n = images_per_step or next(iter(batch.values())).shape[0]
    return {
        "images_per_s": round(n / median, 3),
        "images_per_s_mean": round(n * args.steps / sum(timing["step_seconds"]), 3),
        "seconds_per_step_median": round(median, 4),
        "step_seconds": [round(t, 3) for t in timing["step_seconds"]],
        "warmup_seconds": round(timing["warmup_seconds"], 2),
        "train_flops_per_image": int(timing["flops_per_step"] / n),
        "achieved_flops_per_s": timing["flops_per_step"] / median,
        "last_losses": timing["last_losses"],
        "bf16_autocast": bf16,
    }


def against_matmul(args: argparse.Namespace, device: torch.device, names: list[str],
                   bench_one: Callable[[str], dict], label: str) -> tuple[dict, dict]:
    """Run ``bench_one`` for each name between two timings of the matmul, add each result's
    ``fraction_of_matmul`` (of the faster timing, so a busy neighbour lowers the fraction rather than
    inflating it); returns the results and the report's ``matmul`` entry."""
    matmul = [matmul_flops_per_s(args.matmul_size, device)]
    results = {}
    for name in names:
        print(f"{label}: {name} ...", file=sys.stderr)
        results[name] = bench_one(name)
    matmul.append(matmul_flops_per_s(args.matmul_size, device))
    peak = max(matmul)
    for result in results.values():
        result["fraction_of_matmul"] = round(result["achieved_flops_per_s"] / peak, 4)
    return results, {"n": args.matmul_size, "dtype": "float32", "flops_per_s": peak, "flops_per_s_before_after": matmul}


def machine_report(device: torch.device, load_before: float | None) -> dict:
    """The header of a bench's JSON: torch, the device and its name, threads, the OpenMP policy, cores and
    the 1-minute load before and after."""
    load_after = load_average()
    return {
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
        "load_average_1min_before": None if load_before is None else round(load_before, 2),
        "load_average_1min_after": None if load_after is None else round(load_after, 2),
    }


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None
