"""sag-gan's ``lambda_lesion_intensity`` (later practice, beyond the paper): how far the tissue G_nt grows is, in
intensity, from real tumor tissue inside the tumor masks, compared by quantiles (docs/models/sag-gan.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medsyn_cli.nn.masks import head_mask, quantile_distance

#: ``lambda_lesion_intensity``: pixels with A_N at or above this are grown tissue; fewer than ``LESION_MIN_PIXELS``
#: on either side (grown, or real tumor in the batch's masks) and the term is 0 for the step.
LESION_LEVEL = 0.5
LESION_MIN_PIXELS = 32


def local_mean(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, H, W): the channel mean of ``x`` averaged over ``scale`` x ``scale`` pixels (1: unchanged)."""
    x = x.float().mean(1, keepdim=True)
    if scale > 1:
        x = F.avg_pool2d(x, scale, stride=1, padding=scale // 2, count_include_pad=False)[..., :x.shape[-2], :x.shape[-1]]
    return x[:, 0]


def relative_to_brain(values: torch.Tensor, around: torch.Tensor, region: torch.Tensor, brain: torch.Tensor
                      ) -> torch.Tensor:
    """(N, H, W) ``values`` minus, per slice, the median of ``around`` (the slice before any change) in its brain
    outside ``region`` (0 where there is no such pixel): a lesion is seen by its contrast with the tissue around it."""
    rest = brain & ~region
    medians = [around[i][rest[i]].median() if bool(rest[i].any()) else around.new_zeros(()) for i in range(len(around))]
    return values - torch.stack(medians).view(-1, 1, 1).detach()


def lesion_intensity(generated: torch.Tensor, source: torch.Tensor, attention: torch.Tensor, real_t: torch.Tensor,
                     mask: torch.Tensor, has_mask: torch.Tensor, scale: int = 1, contrast: bool = False,
                     low: float = 0.0, below_only: bool = False) -> torch.Tensor:
    """Distance between the intensities of the grown tissue (the translation where the map that placed the change
    is >= LESION_LEVEL) and of real tumor tissue (tumor slices inside their masks), by quantiles of their
    ``scale``-pixel local means: per pixel, a regular pattern of bright and dark dots has a tumor's spread, so
    the means over a few pixels ask for the spread at the scale of tissue. With ``contrast`` each slice's values
    are taken relative to the median of the rest of its brain (for normal slices from other, differently
    normalised volumes than the tumors). The map is detached: only the generator answers for
    what it grows, so shrinking the map is no way out of the term. ``low``: the lowest quantile level compared
    (0.5: only the brighter half of each distribution). ``below_only``: only grown quantiles darker than the
    tumors' cost (a floor on brightness; a brighter lesion is not pulled back)."""
    att = attention.detach().float()
    grown_region = att.mean(1) >= LESION_LEVEL
    grown = local_mean(att * generated.float() + (1 - att) * source.float(), scale)
    rows = has_mask.to(real_t.device, torch.bool)
    real_t, tumor_region = real_t[rows], mask.to(real_t.device)[rows][:, 0] > 0.5
    tumor = local_mean(real_t, scale)
    if contrast:
        grown = relative_to_brain(grown, local_mean(source, scale), grown_region, head_mask(source)[:, 0].bool())
        tumor = relative_to_brain(tumor, tumor, tumor_region, head_mask(real_t)[:, 0].bool())
    grown, tumor = grown[grown_region], tumor[tumor_region]
    if grown.numel() < LESION_MIN_PIXELS or tumor.numel() < LESION_MIN_PIXELS:
        return generated.new_zeros((), dtype=torch.float32)
    return quantile_distance(grown, tumor, low=low, below_only=below_only)
