"""Device choice and mixed precision: ``auto`` takes the GPU when there is one; bf16 autocast on CUDA."""

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


def amp_enabled(device: torch.device, amp: bool | None) -> bool:
    """bf16 autocast by default on CUDA; on the CPU only when asked for (``--amp``)."""
    if amp is None:
        return device.type == "cuda"
    return bool(amp) and device.type in ("cuda", "cpu")


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
