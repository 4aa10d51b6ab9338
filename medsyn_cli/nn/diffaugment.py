"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
arXiv:2006.10738): differentiable transforms applied to every image the discriminator sees.

One function, driven by a policy string such as ``"color,translation,cutout"``, with the
reference implementation's magnitudes: brightness + U(-0.5, 0.5), saturation x U(0, 2),
contrast x U(0.5, 1.5), translation by up to 1/8 of the side (zero padded), and cutout of a
square half the side at a random centre. Each sample in the batch draws its own parameters.

On a single-channel (grey) image saturation is the identity, so ``color`` there means
brightness + contrast only (saturation is skipped, and draws no random numbers).

Several images can share one transform per sample: concatenate them along the channel axis and
pass ``channels`` (the channels of one image). Colour then acts on each image on its own with the
same random factors; translation and cutout move and cut all of them alike. The last
``label_channels`` channels are per-pixel labels (e.g. a mixing mask): they follow the
translation (with the border replicated, not zero-filled) but are never coloured or cut out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation, cutout"`` -> ``("translation", "cutout")``; unknown names raise ValueError."""
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in parts if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}; known: {', '.join(POLICIES)}")
    return parts


def diff_augment(
    x: torch.Tensor,
    policy: str = "color,translation,cutout",
    *,
    channels: int | None = None,
    label_channels: int = 0,
    translation_ratio: float = 0.125,
    cutout_ratio: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment a (B, C, H, W) batch by ``policy``; randomness from ``generator`` or torch's global RNG.

    ``channels``: channels of one image when several images were concatenated along dim 1
    (default: all non-label channels are one image). ``label_channels``: trailing label channels.
    """
    ops = parse_policy(policy)
    if not ops:
        return x
    b, c, h, w = x.shape
    n_img = c - label_channels
    channels = channels or n_img
    if n_img <= 0 or n_img % channels:
        raise ValueError(f"{c} channels with {label_channels} label channels do not split into images of {channels}")
    images, labels = x[:, :n_img], x[:, n_img:]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device if generator else x.device).to(x.device)

    def randint(high: torch.Tensor | int, low: int = 0) -> torch.Tensor:
        # integer in [low, high) per sample, as the reference's torch.randint
        return torch.randint(low, int(high), (b, 1, 1), generator=generator,
                             device=generator.device if generator else x.device).to(x.device)

    for op in ops:
        if op == "color":
            groups = images.view(b, n_img // channels, channels, h, w)
            groups = groups + (rand(b, 1, 1, 1, 1) - 0.5)  # brightness
            if channels > 1:  # saturation: a no-op on one channel, so grey images skip it
                mean = groups.mean(dim=2, keepdim=True)
                groups = (groups - mean) * (rand(b, 1, 1, 1, 1) * 2) + mean
            mean = groups.mean(dim=(2, 3, 4), keepdim=True)
            groups = (groups - mean) * (rand(b, 1, 1, 1, 1) + 0.5) + mean  # contrast
            images = groups.view(b, n_img, h, w)
        elif op == "translation":
            sx, sy = int(h * translation_ratio + 0.5), int(w * translation_ratio + 0.5)
            tx, ty = randint(sx + 1, -sx), randint(sy + 1, -sy)
            images = _translate(images, tx, ty, pad_mode="constant")
            if label_channels:
                labels = _translate(labels, tx, ty, pad_mode="replicate")
        elif op == "cutout":
            ch, cw = int(h * cutout_ratio + 0.5), int(w * cutout_ratio + 0.5)
            ox, oy = randint(h + (1 - ch % 2)), randint(w + (1 - cw % 2))
            rows = torch.arange(h, device=x.device).view(1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, w)
            # the reference's box: centre offset - size // 2, clipped to the image
            inside = ((rows >= ox - ch // 2) & (rows < ox - ch // 2 + ch)
                      & (cols >= oy - cw // 2) & (cols < oy - cw // 2 + cw))
            images = images * (~inside).unsqueeze(1).to(images.dtype)
    return torch.cat([images, labels], dim=1).contiguous() if label_channels else images.contiguous()


def _translate(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, *, pad_mode: str) -> torch.Tensor:
    """Shift each sample by (-tx, -ty) whole pixels (rows, cols), output[i] = input[i + t] as in the
    reference; the uncovered border is zero
    (``constant``) or a copy of the nearest edge pixel (``replicate``)."""
    b, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) + tx  # source row of each output row
    cols = torch.arange(w, device=x.device).view(1, 1, w) + ty
    if pad_mode == "constant":
        padded = F.pad(x, (1, 1, 1, 1))  # a one-pixel zero frame; out-of-range indices land on it
        rows = (rows + 1).clamp(0, h + 1)
        cols = (cols + 1).clamp(0, w + 1)
    else:
        padded = x
        rows = rows.clamp(0, h - 1)
        cols = cols.clamp(0, w - 1)
    wp = padded.shape[-1]
    flat = (rows * wp + cols).view(b, 1, h * w).expand(b, c, h * w)
    return padded.flatten(2).gather(2, flat).view(b, c, h, w)
