"""HAGAN's networks: a SAGAN-style generator and the hierarchical discriminator.

Generator: z (latent_dim) -> 4x4 by a transposed convolution, then one stride-2 transposed
convolution (+ BatchNorm + ReLU) per doubling, self-attention after the last two stages whose
maps are at most ``attn_max_res``, and a final transposed convolution + tanh. Widths halve per
stage from ``max_channels`` down to ``g_channels`` at res/2.

Hierarchical discriminator: two decoupled branches on the image. The image-level branch has four
stride-2 4x4 convolutions (res -> res/16, widths d, 2d, 4d, 8d capped) and a conv head covering
the whole res/16 map -> one score. The pixel-level branch has three 3x3 convolutions at full
resolution (widths p, 2p, 1) -> one real/fake score per pixel.

Reverse skip: the image-level branch's four feature maps (at res/2 ... res/16) mirror the
generator's four last stage outputs (at res/16 ... res/2) in size and width, so they are added
in directly (a 1x1 projection only when the widths were configured to differ).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from medsyn_cli.gan.init import normal_init
from medsyn_cli.nn.attention import SelfAttention


def _init(module: nn.Module, spectral_norm: bool) -> nn.Module:
    """DCGAN initialisation N(0, 0.02), then spectral normalisation (SAGAN) if asked."""
    normal_init(module)
    return _spectral_norm(module) if spectral_norm else module


def _log2(res: int) -> int:
    k = int(math.log2(res))
    if 2**k != res or res < 32:
        raise ValueError(f"resolution must be a power of two >= 32, not {res}")
    return k


class Generator(nn.Module):
    """SAGAN-style generator. ``forward(z, skips)`` adds ``skips[r]`` (broadcast over the batch)
    to the stage output at resolution ``r``; without ``skips`` it uses the running mean of the
    skips seen in training (buffers ``skip_mean_<r>``), which is what sampling uses."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        res: int,
        *,
        g_channels: int = 64,
        max_channels: int = 512,
        self_attention: bool = True,
        attn_max_res: int = 64,
        reverse_skip: bool = False,
        skip_channels: dict[int, int] | None = None,
        spectral_norm: bool = True,
    ):
        super().__init__()
        self.latent_dim, self.res = latent_dim, res
        n_up = _log2(res) - 2  # doublings from 4x4 to res
        stage_res = [4 * 2**i for i in range(n_up)]  # 4 ... res/2
        self.widths = {r: min(max_channels, g_channels * res // (2 * r)) for r in stage_res}
        attn_res = [r for r in stage_res if r <= attn_max_res][-2:] if self_attention else []
        self.attn_res = tuple(attn_res)
        self.skip_res = tuple(r for r in stage_res if r >= res // 16) if reverse_skip else ()

        self.stages = nn.ModuleDict()
        prev = latent_dim
        for r in stage_res:
            conv = (nn.ConvTranspose2d(prev, self.widths[r], 4, 1, 0, bias=False) if r == 4
                    else nn.ConvTranspose2d(prev, self.widths[r], 4, 2, 1, bias=False))
            self.stages[str(r)] = nn.Sequential(_init(conv, spectral_norm), nn.BatchNorm2d(self.widths[r]),
                                                nn.ReLU(True))
            prev = self.widths[r]
        self.attention = nn.ModuleDict(
            {str(r): SelfAttention(self.widths[r], spectral_norm=spectral_norm) for r in attn_res})
        self.to_image = _init(nn.ConvTranspose2d(prev, channels, 4, 2, 1), spectral_norm)

        skip_channels = skip_channels or {}
        self.skip_proj = nn.ModuleDict()
        for r in self.skip_res:
            c_in = skip_channels.get(r, self.widths[r])
            if c_in != self.widths[r]:  # only when G and D widths were configured differently
                self.skip_proj[str(r)] = nn.Conv2d(c_in, self.widths[r], 1, bias=False)
            self.register_buffer(f"skip_mean_{r}", torch.zeros(1, c_in, r, r))
        self.register_buffer("skip_count", torch.zeros((), dtype=torch.long))

    def forward(
        self,
        z: torch.Tensor,
        skips: dict[int, torch.Tensor] | None = None,
        *,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, tuple[torch.Tensor, int, int] | None]:
        """Images in [-1, 1]; with ``return_attention`` also (attention matrix, h, w) of the last
        self-attention layer (None without self-attention)."""
        x = z.view(z.shape[0], self.latent_dim, 1, 1)
        last_attention = None
        for key, stage in self.stages.items():
            r = int(key)
            x = stage(x)
            if r in self.skip_res:
                skip = skips[r] if skips is not None else getattr(self, f"skip_mean_{r}")
                skip = skip.to(x.dtype)
                x = x + (self.skip_proj[key](skip) if key in self.skip_proj else skip)
            if key in self.attention:
                x, attn = self.attention[key](x, return_attention=True)
                last_attention = (attn, r, r)
        image = torch.tanh(self.to_image(x))
        return (image, last_attention) if return_attention else image

    @torch.no_grad()
    def update_skip_mean(self, skips: dict[int, torch.Tensor], momentum: float) -> None:
        """Fold a batch's mean discriminator features into the running mean used for sampling."""
        first = int(self.skip_count) == 0
        for r in self.skip_res:
            buf = getattr(self, f"skip_mean_{r}")
            new = skips[r].detach().float().mean(dim=0, keepdim=True)
            buf.copy_(new if first else momentum * buf + (1 - momentum) * new)
        self.skip_count += 1


class HierarchicalDiscriminator(nn.Module):
    """Image-level branch (one score per image) and, if ``hierarchical``, a decoupled
    pixel-level branch (one score per pixel). ``forward`` returns (scores (B,), map (B,1,H,W) or None)."""

    def __init__(
        self,
        channels: int,
        res: int,
        *,
        d_channels: int = 64,
        max_channels: int = 512,
        pixel_channels: int = 32,
        hierarchical: bool = True,
        spectral_norm: bool = True,
    ):
        super().__init__()
        _log2(res)
        self.res = res
        self.feature_res = tuple(res // 2**k for k in range(1, 5))  # res/2 ... res/16
        self.widths = {r: min(max_channels, d_channels * 2**k) for k, r in enumerate(self.feature_res)}
        self.down = nn.ModuleList()
        prev = channels
        for r in self.feature_res:
            self.down.append(nn.Sequential(_init(nn.Conv2d(prev, self.widths[r], 4, 2, 1), spectral_norm),
                                           nn.LeakyReLU(0.2, True)))
            prev = self.widths[r]
        self.image_head = _init(nn.Conv2d(prev, 1, res // 16), spectral_norm)  # covers the whole map
        self.pixel_branch = None
        if hierarchical:
            p = pixel_channels
            self.pixel_branch = nn.Sequential(
                _init(nn.Conv2d(channels, p, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2, True),
                _init(nn.Conv2d(p, 2 * p, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2, True),
                _init(nn.Conv2d(2 * p, 1, 3, 1, 1), spectral_norm),
            )

    def features(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The image-level branch's feature maps by resolution (what the reverse skip feeds to G)."""
        out = {}
        for r, block in zip(self.feature_res, self.down):
            x = block(x)
            out[r] = x
        return out

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        """(scores, pixel map or None), plus with ``return_features`` the image-level branch's
        feature maps by resolution (what the feature-map contrast of §III.E compares)."""
        feats = self.features(x)
        score = self.image_head(feats[self.feature_res[-1]]).flatten()
        pixel = self.pixel_branch(x) if self.pixel_branch is not None else None
        return (score, pixel, feats) if return_features else (score, pixel)
