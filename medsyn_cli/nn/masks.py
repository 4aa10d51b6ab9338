"""Where the head is, computed on the fly from images in [-1, 1] (black background): for attention
restricted to the brain, and for priors on how much of it a translation may change."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Pixels above this are head (BraTS and most MRI are skull-stripped or have a black background).
HEAD_LEVEL = -0.98


def head_mask(x: torch.Tensor, level: float = HEAD_LEVEL, close: int = 5) -> torch.Tensor:
    """(N, 1, H, W) float {0, 1}: pixels above ``level`` (channel mean), closed with a ``close``-pixel
    square (a dilation then an erosion) so dark structures inside the head (ventricles in FLAIR) count."""
    with torch.no_grad():
        m = (x.float().mean(1, keepdim=True) > level).float()
        if close > 1:
            pad = close // 2
            m = F.max_pool2d(m, close, stride=1, padding=pad)
            m = 1 - F.max_pool2d(1 - m, close, stride=1, padding=pad)
    return m


def share_inside(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,): the mean of each map over its mask (0 where the mask is empty)."""
    inside = (maps.float() * mask).flatten(1).sum(1)
    return inside / mask.flatten(1).sum(1).clamp_min(1.0)


def area_prior(maps: torch.Tensor, mask: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Mean over images of how far each map's share of its mask lies outside [low, high] (0 inside)."""
    share = share_inside(maps, mask)
    return (F.relu(low - share) + F.relu(share - high)).mean()


def quantile_distance(values: torch.Tensor, reference: torch.Tensor, n: int = 32, low: float = 0.0,
                      below_only: bool = False) -> torch.Tensor:
    """Mean |difference| between ``n`` evenly spaced quantiles (levels ``low`` to 1) of two 1-D samples (with
    ``low`` 0 the 1-D Wasserstein-1 distance, estimated): it compares intensity distributions (brightness and
    spread), not only means; a higher ``low`` compares only their upper parts. ``below_only``: only the
    quantiles of ``values`` below the reference's count (a floor, not a target: brighter is no cost).
    Gradients reach ``values`` through the sort; ``reference`` is treated as a target."""
    levels = torch.linspace(low, 1.0, n, device=values.device)
    gap = torch.quantile(values.float(), levels) - torch.quantile(reference.detach().float(), levels)
    return (gap.clamp(max=0) if below_only else gap).abs().mean()
