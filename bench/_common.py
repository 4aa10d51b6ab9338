"""What the benchmarks share: the device's dense matmul rate, FLOP counting of a training step,
device synchronisation and the CPU's name.

Import this before torch where the OpenMP wait policy matters: idle OpenMP threads then sleep instead
of spinning. With spinning (libgomp's default), one busy neighbour on a shared machine stalls every
parallel region, and many-small-op steps (WGAN-GP's five critic iterations) measured 5-10x slower and
erratic. The variable must be set before torch starts its thread pool.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


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
    """Every FLOP ``step()`` computes (forward, backward, double backward), counted by PyTorch."""
    counter = GlobalFlopCounter()
    with counter:
        step()
    return int(counter.get_total_flops())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(n: int = 2048, device: torch.device | str = "cpu", min_seconds: float = 1.0) -> float:
    """Sustained FLOP/s of an n x n float32 matrix product (2 n^3 FLOPs each), the best the device
    reaches on dense work; timed for at least ``min_seconds`` and 3 products."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
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


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
