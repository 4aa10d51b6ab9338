"""DCGAN's generator and discriminator (Radford et al. 2016), as in pytorch/examples ``dcgan/main.py``.

Shared by the ``dcgan`` and ``wgan`` plugins, so no model plugin imports another; their N(0, 0.02)
initialisation is :func:`medsyn_cli.gan.init.init_weights`.

At 64x64 the layers are exactly the example's. Each doubling of the resolution (128, 256) adds one
more 4x4 stride-2 block to both networks; the channel width doubles per block going down in
resolution and is capped at 8 x ngf / 8 x ndf, the example's widest layer, so the added block sits
at the coarse end (4x4 -> 8x8 with 8*ngf channels) and the 64x64 layers near the image keep their widths.

The discriminator's normalisation is a switch so WGAN-GP can reuse it as a critic without batch norm.
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

#: The widest layer is 8 x the base width, as in the PyTorch example.
MAX_WIDTH_MULT = 8
NORMS = ("batch", "layer", "none")


def spectral_norm_convs(layers: list[nn.Module]) -> list[nn.Module]:
    """``layers`` with every ``Conv2d`` wrapped in spectral normalisation (Miyato et al. 2018): each conv's
    largest singular value held at 1. Shared by the critics that offer it as a setting."""
    return [_spectral_norm(m) if isinstance(m, nn.Conv2d) else m for m in layers]


def num_blocks(res: int) -> int:
    """Stride-2 blocks between 4x4 and ``res`` x ``res`` (4 at 64, 5 at 128, 6 at 256)."""
    n = math.log2(res)
    if res < 8 or n != int(n):
        raise ValueError(f"resolution must be a power of two >= 8, not {res}")
    return int(n) - 2


def widths(base: int, res: int) -> list[int]:
    """Channel widths of the feature maps from 4x4 up to res/2 x res/2 (coarse to fine)."""
    n = num_blocks(res)
    return [base * min(2 ** (n - 1 - i), MAX_WIDTH_MULT) for i in range(n)]


class Generator(nn.Module):
    """z (latent_dim x 1 x 1) -> image in [-1, 1]: ConvTranspose 4x4 blocks with BatchNorm + ReLU, Tanh."""

    def __init__(self, latent_dim: int = 100, channels: int = 1, res: int = 64, ngf: int = 64):
        super().__init__()
        self.latent_dim = latent_dim
        w = widths(ngf, res)
        # 1x1 -> 4x4: the projection of z (a "fully connected" layer written as a 4x4 transposed conv).
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, w[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(w[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(w[:-1], w[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        # No batch norm on the output layer (the paper: it caused sample oscillation and instability).
        layers += [nn.ConvTranspose2d(w[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # Layer norm over (C, H, W) per sample with a per-channel affine, as in Gulrajani et al.'s code.
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, not {kind!r}")


class Discriminator(nn.Module):
    """image -> one logit per image: Conv 4x4 stride-2 blocks with LeakyReLU 0.2.

    ``norm`` is ``"batch"`` for DCGAN (never on the first layer, as the paper says), ``"layer"`` or
    ``"none"`` for the WGAN-GP critic, whose per-sample gradient penalty batch norm would break.
    ``spectral_norm=True`` wraps every convolution in spectral normalisation (Miyato et al. 2018).
    """

    def __init__(self, channels: int = 1, res: int = 64, ndf: int = 64, norm: str = "batch",
                 spectral_norm: bool = False):
        super().__init__()
        w = widths(ndf, res)[::-1]  # fine to coarse
        # Without batch norm the conv biases are not redundant any more, so keep them.
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(channels, w[0], 4, 2, 1, bias=bias), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(w[:-1], w[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias), _norm(norm, c_out), nn.LeakyReLU(0.2, inplace=True)]
        # 4x4 -> 1x1: one raw score (a logit for DCGAN, an unbounded critic value for WGAN-GP).
        layers.append(nn.Conv2d(w[-1], 1, 4, 1, 0, bias=bias))
        self.main = nn.Sequential(*(spectral_norm_convs(layers) if spectral_norm else layers))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).flatten()
