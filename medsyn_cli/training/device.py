"""Device choice and mixed precision: ``auto`` takes the GPU when there is one; bf16 autocast on CUDA, and on
a CPU with native bf16 (avx512_bf16 or AMX) where a short measurement finds bf16 faster than fp32; fp32
elsewhere. The flag alone is not enough: an Intel Xeon with avx512_bf16 ran bf16 matmuls at half fp32's speed."""

from __future__ import annotations

import contextlib
import functools
import time
from datetime import datetime, timezone
from typing import Callable

import torch

from medsyn_cli.errors import InputError
from medsyn_cli.machine import cpu_model
from medsyn_cli.training.amp_probe import probe_path, probe_records, write_probe


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a device. Under torchrun, ``auto``/``cuda`` mean this rank's GPU."""
    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("--device mps: no Apple GPU available", hint="use --device cpu")
        return torch.device("mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: CUDA is not available on this machine",
                             hint="use --device cpu (or auto)")
        index = int(name.split(":", 1)[1]) if ":" in name else (local_rank or 0)
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    raise InputError(f"unknown --device {name!r}", hint="use auto, cpu, cuda or cuda:N")


def cpu_bf16() -> str | None:
    """The CPU's native bf16 instructions (``"avx512_bf16"``, ``"amx"``), or None: without them bf16 is
    emulated and slower than fp32. Asked of torch, else read from the CPU flags."""
    probes = (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for name, probe in probes:
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return name
        except RuntimeError:  # pragma: no cover - a build without the probe's kernel
            pass
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return None
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else None


# bf16 must beat fp32 by this much to be chosen: below it the speed gain does not pay for the lost precision
BF16_MIN_SPEEDUP = 1.15


def measure_bf16_speedup(rounds: int = 5) -> float:
    """fp32 time over bf16 time (> 1: bf16 is faster) of a small training-like workload on this CPU: a 3x3
    conv forward and backward and a 1024² matmul. The two precisions alternate and each keeps its best
    round, so other work on the machine slows both alike. About half a second."""
    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(8, 64, 32, 32, generator=gen, requires_grad=True)
    a, b = torch.randn(1024, 1024, generator=gen), torch.randn(1024, 1024, generator=gen)

    def seconds(amp: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            y = conv(x)
            (a @ b).sum()
        y.float().sum().backward()
        return time.perf_counter() - start

    seconds(False), seconds(True)  # warm-up: kernel selection, allocations
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for amp in (False, True):
            best[amp] = min(best[amp], seconds(amp))
    return best[False] / best[True]


def _cpu_key() -> str:
    return f"{cpu_model()} | {cpu_bf16()} | torch {torch.__version__}"


_SPEEDUPS: dict[tuple[str, str], float] = {}  # by (file, CPU key): this process asks the file once


def bf16_speedup() -> float:
    """:func:`measure_bf16_speedup`, measured once per CPU model and torch version and kept in the user cache
    dir (delete ``amp-probe.json`` there, or ``medsyn cache clear``, to measure again)."""
    key = _cpu_key()
    memo = (str(probe_path()), key)
    if memo in _SPEEDUPS:
        return _SPEEDUPS[memo]
    known = probe_records()
    try:
        speedup = float(known[key]["speedup"])
    except (KeyError, TypeError, ValueError):
        speedup = measure_bf16_speedup()
        record = {"speedup": round(speedup, 3), "threads": torch.get_num_threads(),
                  "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_probe(probe_path(), {**known, key: record})
    _SPEEDUPS[memo] = speedup
    return speedup


def amp_choice(device: torch.device, amp: bool | None) -> tuple[bool, str]:
    """(bf16 autocast on?, why): ``--amp``/``--no-amp`` force it; auto (None) turns it on for CUDA and for a
    CPU with native bf16 where :func:`bf16_speedup` finds it at least ``BF16_MIN_SPEEDUP`` times as fast as
    fp32; off elsewhere (MPS, CPUs that emulate bf16 or run it slower)."""
    if amp is not None:
        on = bool(amp) and device.type in ("cuda", "cpu")
        return on, ("--amp" if on else "--no-amp" if not amp else f"--amp: not on {device.type}")
    if device.type == "cuda":
        return True, "auto: CUDA"
    if device.type == "cpu":
        native = cpu_bf16()
        if not native:
            return False, "auto: CPU without native bf16"
        speedup = bf16_speedup()
        if speedup >= BF16_MIN_SPEEDUP:
            return True, f"auto: CPU with {native}, bf16 measured {speedup:.2f}x fp32"
        return False, f"auto: CPU with {native}, but bf16 measured {speedup:.2f}x fp32"
    return False, f"auto: {device.type}"


def amp_enabled(device: torch.device, amp: bool | None) -> bool:
    """Whether bf16 autocast is on (:func:`amp_choice` without the reason)."""
    return amp_choice(device, amp)[0]


def autocast_factory(device: torch.device, enabled: bool) -> Callable[[], contextlib.AbstractContextManager]:
    """What the trainer assigns to ``model.autocast``: a fresh bf16 autocast context per call."""
    if not enabled:
        return contextlib.nullcontext
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


def configure_backends(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA (fixed input shapes, so tuning pays off)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
