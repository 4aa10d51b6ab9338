"""CycleGAN's networks, as the reference code's ``define_G("resnet_*blocks")`` and ``define_D("basic")``
build them; ``cyclegan`` uses them as they are, ``sag-gan`` with AMSE blocks and attention-guided input.

Both are fully convolutional: any input whose side is a multiple of 4 (64, 128, 240, 256, ...)
comes out of the generator at the same size, and the PatchGAN gives one score per 70x70 patch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from medsyn_cli.gan.init import init_weights  # noqa: F401  (the networks' initialisation, re-exported)


def instance_norm(channels: int) -> nn.Module:
    # The reference's "instance" norm: no affine parameters, no running statistics.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def default_n_blocks(res: int) -> int:
    """The reference uses resnet_6blocks for 128x128 and resnet_9blocks for 256x256."""
    return 6 if res <= 128 else 9


class ResnetBlock(nn.Module):
    """``x + [pad, conv3, IN, ReLU, pad, conv3, IN](x)`` with reflection padding, no dropout."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n residual blocks at 4ngf, u(2ngf), u(ngf), c7s1-out, tanh.

    ``block`` builds one residual block from its channel count (SAG-GAN passes its AMSE block).
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9,
                 block: Callable[[int], nn.Module] = ResnetBlock):
        super().__init__()
        # Convolutions followed by instance norm keep their bias, as the reference does (use_bias).
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), instance_norm(ngf), nn.ReLU(True),
        ]
        for mult in (1, 2):  # two stride-2 downsamplings
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                       instance_norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [block(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # two stride-2 transposed convolutions back up
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                       instance_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN (``n_layers=3``): raw scores, one per overlapping patch.

    ``spectral_norm=True`` wraps every convolution in spectral normalisation (Miyato et al. 2018)
    and drops the instance norms, since the Lipschitz constraint replaces them (SN-PatchGAN).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, spectral_norm: bool = False):
        super().__init__()
        self.spectral_norm = spectral_norm

        def conv(cin: int, cout: int, stride: int, bias: bool = True) -> nn.Module:
            return nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=bias)

        def norm(channels: int) -> list[nn.Module]:
            return [] if spectral_norm else [instance_norm(channels)]

        layers: list[nn.Module] = [conv(in_channels, ndf, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [conv(ndf * prev, ndf * mult, 2), *norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [conv(ndf * prev, ndf * mult, 1), *norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [conv(ndf * mult, 1, 1)]
        self.model = nn.Sequential(*layers)

    def apply_spectral_norm(self) -> None:
        """Wrap the convolutions; call after :func:`init_weights` so the init lands on the raw weight."""
        for module in self.model:
            if isinstance(module, nn.Conv2d) and not parametrize.is_parametrized(module, "weight"):
                _spectral_norm(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
