"""Squeeze-and-excitation with a mean-plus-max squeeze, and SAG-GAN's AMSE residual block.

Squeeze-and-excitation (Hu et al. 2018) gates each channel by a sigmoid of a small MLP applied to
a per-channel summary of the feature map. SAG-GAN's AMSE block (Qi et al.) summarises each
channel by its spatial **mean plus its spatial max**, so a small bright structure (a tumor) moves
the gate as well as the overall level does; the gate rescales the residual branch of a ResNet
block before the identity is added back.
"""

from __future__ import annotations

import torch
from torch import nn


class MeanMaxSqueezeExcitation(nn.Module):
    """Channel gate: ``x * sigmoid(FC2(ReLU(FC1(mean_hw(x) + max_hw(x)))))``."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, C, 1, 1) per-channel weights in (0, 1)."""
        squeezed = x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))
        weights = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))
        return weights[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class AMSEResidualBlock(nn.Module):
    """A CycleGAN ResNet block whose residual branch is rescaled by a mean+max SE gate.

    ``out = x + SE(body(x))`` with ``body`` = reflect-pad, conv3x3, norm, ReLU, reflect-pad,
    conv3x3, norm (the reference ``ResnetBlock`` without dropout).
    """

    def __init__(self, channels: int, reduction: int = 16, norm: type[nn.Module] | None = None):
        super().__init__()
        norm = norm or _instance_norm
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm(channels),
        )
        self.excitation = MeanMaxSqueezeExcitation(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.excitation(self.body(x))


def _instance_norm(channels: int) -> nn.Module:
    # CycleGAN's choice: no affine parameters, no running statistics.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
