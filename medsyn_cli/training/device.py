"""Device choice and mixed precision: ``auto`` takes the GPU when there is one; bf16 autocast where the
device computes bf16 natively (CUDA, CPUs with avx512_bf16 or AMX), fp32 elsewhere."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable

import torch

from medsyn_cli.errors import InputError


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


def amp_choice(device: torch.device, amp: bool | None) -> tuple[bool, str]:
    """(bf16 autocast on?, why): ``--amp``/``--no-amp`` force it; auto (None) turns it on for CUDA and for a
    CPU with native bf16, off elsewhere (MPS, CPUs that would emulate it)."""
    if amp is not None:
        on = bool(amp) and device.type in ("cuda", "cpu")
        return on, ("--amp" if on else "--no-amp" if not amp else f"--amp: not on {device.type}")
    if device.type == "cuda":
        return True, "auto: CUDA"
    if device.type == "cpu":
        native = cpu_bf16()
        return (True, f"auto: CPU with {native}") if native else (False, "auto: CPU without native bf16")
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
