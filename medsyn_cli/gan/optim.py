"""Optimizers from a model's config: every GAN here trains each network (or group of networks) with
its own Adam at the config's learning rate and betas."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn


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
    where ``lrs`` names a rate that is not None, at that rate (two time-scale update rules)."""
    betas = config_betas(config)
    lrs = lrs or {}

    def rate(name: str) -> float:
        return config.lr if lrs.get(name) is None else lrs[name]

    return {name: torch.optim.Adam(p.parameters() if isinstance(p, nn.Module) else p, lr=rate(name), betas=betas)
            for name, p in params.items()}
