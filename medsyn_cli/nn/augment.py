"""Classic data augmentation of real batches: random horizontal flips and pans (translations).

The HAGAN paper's baselines used "basic image augmented strategies such as flipping and panning in
the data preprocessing" (Ju et al. 2024, §IV.A). Unlike DiffAugment this touches only the real images,
and only the training batch (never the stored data set). A spec string names the operations:
``"flip"``, ``"translate"`` or ``"flip,translate"``; ``""`` is off.

* ``flip``: each image is mirrored left-right with probability 1/2.
* ``translate``: each image is shifted by a whole number of pixels drawn uniformly in
  [-side/8, side/8] along each axis (DiffAugment's range); the uncovered border is black (-1).

All randomness comes from ``generator`` or torch's global RNG (which the trainer saves, so resume stays
exact); each sample draws its own flip and shift.
"""

from __future__ import annotations

import torch

from medsyn_cli.nn.diffaugment import _translate

AUGMENTS = ("flip", "translate")
#: Largest pan as a fraction of the image side.
TRANSLATE_RATIO = 0.125


def parse_augment(spec: str) -> tuple[str, ...]:
    """``"flip, translate"`` -> ``("flip", "translate")``; an unknown name raises ValueError."""
    ops = tuple(p.strip() for p in spec.split(",") if p.strip())
    unknown = [p for p in ops if p not in AUGMENTS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; known: {', '.join(AUGMENTS)}")
    return ops


def augment_real(x: torch.Tensor, spec: str, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a (B, C, H, W) batch in [-1, 1] by ``spec``; ``""`` returns ``x`` itself."""
    ops = parse_augment(spec)
    if not ops:
        return x
    b, _, h, w = x.shape
    dev = generator.device if generator is not None else x.device
    for op in ops:
        if op == "flip":
            flip = (torch.rand(b, generator=generator, device=dev) < 0.5).to(x.device)
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        else:
            sy, sx = int(h * TRANSLATE_RATIO + 0.5), int(w * TRANSLATE_RATIO + 0.5)
            ty = torch.randint(-sy, sy + 1, (b, 1, 1), generator=generator, device=dev).to(x.device)
            tx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=generator, device=dev).to(x.device)
            # _translate fills the uncovered border with 0; paint it black (-1) instead
            covered = _translate(torch.ones_like(x[:, :1]), ty, tx, pad_mode="constant") > 0
            x = torch.where(covered, _translate(x, ty, tx, pad_mode="constant"), -1.0).to(x.dtype)
    return x
