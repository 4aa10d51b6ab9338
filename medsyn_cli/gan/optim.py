"""Optimizers from a model's config: every GAN here trains each network (or group of networks) with
its own Adam at the config's learning rate and betas.

Adam's kernel follows the parameters' device: ``GANModel.to`` calls
:func:`medsyn_cli.nn.adam_kernel.use_fast_kernels`.

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
    the CPU's kernel (the parameters are still on the CPU), see :mod:`medsyn_cli.nn.adam_kernel`. None inside
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
