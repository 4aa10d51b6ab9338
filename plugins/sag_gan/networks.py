"""SAG-GAN's networks: AMSE ResNet generators, attention networks, attention-guided PatchGANs.

The generators and discriminators are CycleGAN's (``medsyn_cli.gan.networks``), which SAG-GAN
builds on; the attention network follows the one of Mejjati et al. 2018 ("Unsupervised
Attention-guided Image-to-Image Translation"), the attention-guided CycleGAN SAG-GAN extends.
All are fully convolutional for sides that are multiples of 4 (64, 128, 240, 256).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from medsyn_cli.nn.squeeze_excitation import AMSEResidualBlock
from medsyn_cli.gan.networks import PatchDiscriminator, ResnetBlock, ResnetGenerator, instance_norm


def attention_compose(generated: torch.Tensor, source: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """``M * G(x) + (1 - M) * x``: where M = 0 the source passes through exactly, where M = 1 the
    generated image replaces it."""
    return attention * generated + (1 - attention) * source


def make_generator(channels: int, ngf: int, n_blocks: int, amse: bool, reduction: int) -> ResnetGenerator:
    """CycleGAN's ResNet generator with AMSE residual blocks (``amse=False``: plain blocks)."""
    block = partial(AMSEResidualBlock, reduction=reduction, norm=instance_norm) if amse else ResnetBlock
    return ResnetGenerator(channels, channels, ngf, n_blocks, block=block)


class AttentionNetwork(nn.Module):
    """Image -> one-channel attention map in [0, 1] at the input's size.

    c7s2-ngf, c3s2-2ngf, one residual block, two (nearest x2 upsample, c3) stages, c7 to one
    channel, sigmoid; instance norm and ReLU after every conv but the last.
    """

    def __init__(self, in_channels: int, ngf: int = 32):
        super().__init__()

        def conv(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
            pad = nn.ReflectionPad2d(k // 2)
            return [pad, nn.Conv2d(cin, cout, k, stride=stride), instance_norm(cout), nn.ReLU(True)]

        self.model = nn.Sequential(
            *conv(in_channels, ngf, 7, 2),
            *conv(ngf, ngf * 2, 3, 2),
            ResnetBlock(ngf * 2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *conv(ngf * 2, ngf * 2, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *conv(ngf * 2, ngf, 3),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, 1, 7),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class AttentionGuidedDiscriminator(PatchDiscriminator):
    """A PatchGAN that, given an attention map, judges ``image * attention``: only the attended
    region (the tumor, or where one is grown) reaches it, so it cannot win on the background."""

    def forward(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        if attention is not None:
            x = x * attention
        return self.model(x)
