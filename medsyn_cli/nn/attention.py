"""SAGAN self-attention (Zhang et al. 2019, arXiv:1805.08318), reusable by any model.

``y = gamma * o + x`` with ``o`` the attention-weighted values. ``gamma`` starts at 0, so a
freshly built layer is the identity and the network first relies on local (convolutional) cues.
The layer can hand back its N x N attention matrix (N = H*W), and :func:`attention_received`
turns that matrix into a spatial map (how much attention each position receives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


class SelfAttention(nn.Module):
    """Self-attention over the H*W positions of a feature map (SAGAN, Fig. 2).

    Query and key are 1x1 convolutions to ``channels // key_ratio`` channels, the value a 1x1
    convolution to ``channels``; softmax runs over keys, so row ``q`` of the attention matrix
    says where query position ``q`` looks.
    """

    def __init__(self, channels: int, *, key_ratio: int = 8, spectral_norm: bool = True):
        super().__init__()
        key_channels = max(1, channels // key_ratio)
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        self.query = wrap(nn.Conv2d(channels, key_channels, 1))
        self.key = wrap(nn.Conv2d(channels, key_channels, 1))
        self.value = wrap(nn.Conv2d(channels, channels, 1))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(
        self, x: torch.Tensor, *, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C', N)
        k = self.key(x).flatten(2)  # (B, C', N)
        v = self.value(x).flatten(2)  # (B, C, N)
        attn = F.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (B, N queries, N keys)
        # o_q = sum_k attn[q, k] v_k, as attn @ v^T: the gradient reaching attn is then contiguous
        # (with v @ attn^T softmax's backward first copied the transposed N x N gradient, a third
        # of the layer's time at 32x32).
        o = torch.bmm(attn, v.transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        y = self.gamma * o + x
        return (y, attn) if return_attention else y


def attention_received(attn: torch.Tensor, height: int, width: int, size: int | None = None) -> torch.Tensor:
    """Spatial map of an N x N attention matrix: the attention each key position receives,
    averaged over all queries, as a (B, 1, height, width) map that sums to 1 per sample.

    With ``size`` the map is brought to ``size`` x ``size`` by nearest-neighbour upsampling
    (each feature-map cell spreads its weight evenly over the pixel block it covers), then
    renormalised to sum to 1.
    """
    b, n, n2 = attn.shape
    if n != n2 or n != height * width:
        raise ValueError(f"attention of shape {tuple(attn.shape)} does not match a {height}x{width} map")
    amap = attn.float().mean(dim=1).view(b, 1, height, width)
    if size is not None and (size, size) != (height, width):
        amap = F.interpolate(amap, size=(size, size), mode="nearest")
    return amap / amap.sum(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
