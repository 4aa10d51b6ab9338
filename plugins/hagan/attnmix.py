"""AttnMix: CutMix-style mixing of a real and a generated image, labelled by area and attention.

    i = M * x + (1 - M) * G(z)          M: a box mask, 1 = real, at the same place in x and G(z)
    lambda0 = sum(M) / (H * W)          area share of the real part
    lambda1 = sum(M * A) / sum(A)       share of the generator's attention A that falls on it
    lambda = alpha * (lambda0 + lambda1)   image-level label; the pixel-level label is M

and the consistency loss asks the discriminator to be equivariant to the mixing:
``|| D(i) - mix(D(x), D(G(z)), M) ||^2`` at pixel level (mixed by M) and image level (by lambda),
plus the feature-map contrast of §III.E: at every level of D's image branch, each position of the
mixed image's feature map must be closer to the same position in the real image's map where it
came from x and to the generated image's map where it came from G(z) (:func:`feature_contrast`).
All label arithmetic is in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medsyn_cli.nn.losses import lsgan


def box_masks(
    batch: int, height: int, width: int, *, device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One CutMix box per sample, (B, 1, H, W) float {0, 1}: side sqrt(u) of the image side with
    u ~ U(0, 1) (CutMix's uniform area), centre uniform over the image, clipped at the border."""
    gdev = generator.device if generator is not None else device
    u = torch.rand(batch, generator=generator, device=gdev).to(device)
    cy = torch.randint(0, height, (batch,), generator=generator, device=gdev).to(device)
    cx = torch.randint(0, width, (batch,), generator=generator, device=gdev).to(device)
    bh, bw = (u.sqrt() * height).long(), (u.sqrt() * width).long()
    y0, y1 = (cy - bh // 2).clamp(0, height), (cy - bh // 2 + bh).clamp(0, height)
    x0, x1 = (cx - bw // 2).clamp(0, width), (cx - bw // 2 + bw).clamp(0, width)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside = ((rows >= y0.view(-1, 1, 1)) & (rows < y1.view(-1, 1, 1))
              & (cols >= x0.view(-1, 1, 1)) & (cols < x1.view(-1, 1, 1)))
    return inside.unsqueeze(1).float()


def mix(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``M * real + (1 - M) * fake``: exactly ``real`` where M = 1 and ``fake`` where M = 0."""
    return torch.where(mask.to(torch.bool), real, fake)


def area_share(mask: torch.Tensor) -> torch.Tensor:
    """lambda0 per sample: the fraction of pixels taken from the real image."""
    return mask.float().flatten(1).mean(dim=1)


def attention_share(mask: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
    """lambda1 per sample: sum(M * A) / sum(A), with A an image-sized (B, 1, H, W) attention map.
    Without an attention map (generator without self-attention) A is uniform and lambda1 = lambda0."""
    if attention is None:
        return area_share(mask)
    a = attention.float()
    return (mask.float() * a).flatten(1).sum(1) / a.flatten(1).sum(1).clamp_min(1e-12)


def mixed_label(lambda0: torch.Tensor, lambda1: torch.Tensor, alpha: float) -> torch.Tensor:
    """The mixed image's image-level label alpha * (lambda0 + lambda1)."""
    return alpha * (lambda0 + lambda1)


def consistency_loss(
    score_mixed: torch.Tensor, score_real: torch.Tensor, score_fake: torch.Tensor, label: torch.Tensor,
    pixel_mixed: torch.Tensor | None = None, pixel_real: torch.Tensor | None = None,
    pixel_fake: torch.Tensor | None = None, mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image-level, pixel-level) consistency: D(i) against the mix of D(x) and D(G(z)), mixed by
    the image label at image level and by M per pixel; pixel-level is 0 without a pixel branch."""
    lam = label.float().view_as(score_mixed)
    target = lam * score_real.float() + (1 - lam) * score_fake.float()
    image_term = lsgan(score_mixed, target)
    if pixel_mixed is None:
        return image_term, image_term.new_zeros(())
    m = mask.float()
    pixel_target = m * pixel_real.float() + (1 - m) * pixel_fake.float()
    return image_term, lsgan(pixel_mixed, pixel_target)


def feature_contrast(
    mixed: list[torch.Tensor], real: list[torch.Tensor], fake: list[torch.Tensor], mask: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Contrastive feature-map consistency, averaged over D's levels.

    At each level and position, the mixed image's feature vector is compared (cosine similarity /
    ``temperature``) with the real and the generated image's vectors at the same position; a softmax
    over the two is matched to the share m of real pixels in that cell (M average-pooled to the
    level's size) by KL(m || softmax). It is 0 only when every mixed feature sits with its source,
    and every feature map (mixed, real, fake) receives gradient.
    """
    losses = []
    for f_i, f_x, f_g in zip(mixed, real, fake):
        m = F.adaptive_avg_pool2d(mask.float(), f_i.shape[-2:])  # (B, 1, h, w): real share per cell
        f_i, f_x, f_g = (F.normalize(f.float(), dim=1) for f in (f_i, f_x, f_g))
        logits = torch.cat([(f_i * f_x).sum(1, keepdim=True), (f_i * f_g).sum(1, keepdim=True)], 1) / temperature
        target = torch.cat([m, 1 - m], 1)
        kl = (target * (target.clamp_min(1e-12).log() - logits.log_softmax(1))).sum(1)
        losses.append(kl.mean())
    return torch.stack(losses).mean()
