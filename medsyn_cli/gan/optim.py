"""Optimizers from a model's config: every GAN here trains each network (or group of networks) with
its own Adam at the config's learning rate and betas.

Adam's kernel follows the parameters' device (:func:`use_fast_kernels`, called by ``GANModel.to``):
the fused kernel on CUDA and (torch >= 2.4) on the CPU, else the multi-tensor (``foreach``) one.
Optimizers are built before the model is moved, and a checkpoint's param groups carry the flags of
the code that wrote it, so the choice is (re)made whenever the model is placed. The update is the
same Adam either way (the kernels round differently in the last bits).

A model built for inference (:func:`without_optimizers`, as ``medsyn sample`` and ``translate`` load
one) gets no optimizers: building the first torch optimizer of a process imports ``torch._dynamo``,
about 4.5 s of CPU that sampling never needs.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterable, Iterator

import torch
from torch import nn

#: Devices whose fused Adam kernel is used; elsewhere the multi-tensor kernel. On the CPU (torch >= 2.4)
#: fused stepped dcgan's 6.3M parameters in 9 ms against foreach's 30 ms and the loop's 38 ms.
FUSED_DEVICES = ("cuda", "cpu") if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4) else ("cuda",)


_INFERENCE_ONLY = contextvars.ContextVar("medsyn_inference_only", default=False)


@contextlib.contextmanager
def without_optimizers() -> Iterator[None]:
    """Inside this block :func:`adam` builds no optimizers (an empty dict): for models that will only
    sample or translate. Training such a model fails at its first optimizer step."""
    token = _INFERENCE_ONLY.set(True)
    try:
        yield
    finally:
        _INFERENCE_ONLY.reset(token)


def config_betas(config: Any) -> tuple[float, float]:
    """Adam's betas from ``config.betas``, ``config.beta1``/``beta2`` or ``config.adam_beta1``/``adam_beta2``."""
    if hasattr(config, "betas"):
        return tuple(config.betas)
    for prefix in ("", "adam_"):
        if hasattr(config, f"{prefix}beta1"):
            return getattr(config, f"{prefix}beta1"), getattr(config, f"{prefix}beta2")
    raise AttributeError(f"{type(config).__name__} has no Adam betas (betas, beta1/beta2 or adam_beta1/adam_beta2)")


def adam(params: dict[str, nn.Module | Iterable[nn.Parameter]], config: Any,
         lrs: dict[str, float | None] | None = None) -> dict[str, torch.optim.Optimizer]:
    """One Adam per name (a network's parameters, or any iterable of parameters), at ``config.lr`` or,
    where ``lrs`` names a rate that is not None, at that rate (two time-scale update rules); built with
    the CPU's kernel (the parameters are still on the CPU), see :func:`use_fast_kernels`. None inside
    :func:`without_optimizers`."""
    betas = config_betas(config)
    if _INFERENCE_ONLY.get():
        return {}
    lrs = lrs or {}

    def rate(name: str) -> float:
        return config.lr if lrs.get(name) is None else lrs[name]

    return {name: torch.optim.Adam(p.parameters() if isinstance(p, nn.Module) else p, lr=rate(name), betas=betas,
                                   foreach=True)
            for name, p in params.items()}


def use_fast_kernels(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Point an Adam/AdamW at ``device``'s fastest kernel: fused on :data:`FUSED_DEVICES`, else foreach.

    Other optimizers, and an Adam with ``capturable`` or ``differentiable`` set, are left alone. The
    ``step`` counts go where that kernel keeps them (on the device for fused, on the CPU otherwise),
    as ``Optimizer.load_state_dict`` places them."""
    if not isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
        return
    if any(g.get("capturable") or g.get("differentiable") for g in opt.param_groups):
        return
    fused = device.type in FUSED_DEVICES
    for group in opt.param_groups:
        group["fused"], group["foreach"] = (True, None) if fused else (None, True)
        for p in group["params"]:
            step = opt.state.get(p, {}).get("step")
            if torch.is_tensor(step):
                opt.state[p]["step"] = step.to(device=device if fused else "cpu", dtype=torch.float32)
