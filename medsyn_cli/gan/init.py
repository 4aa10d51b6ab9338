"""The N(0, 0.02) initialisation of DCGAN (Radford et al. 2016), which CycleGAN's reference code
(``init_type="normal"``) and SAGAN-style networks use too: one place for every model that wants it."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

#: The layers whose weights are drawn from N(0, std).
WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@torch.no_grad()
def normal_init(layer: nn.Module, std: float = 0.02) -> nn.Module:
    """Weights N(0, std) (the raw weight under a parametrization such as spectral norm), bias 0.
    Returns ``layer``."""
    weight = (layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight")
              else layer.weight)
    nn.init.normal_(weight, 0.0, std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


@torch.no_grad()
def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """Every conv, transposed conv and linear layer of ``net`` by :func:`normal_init`; BatchNorm scales
    N(1, gain) and offsets 0. Other norms (layer/group norm) keep scale 1 and offset 0."""
    for m in net.modules():
        if isinstance(m, WEIGHTED):
            normal_init(m, gain)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
