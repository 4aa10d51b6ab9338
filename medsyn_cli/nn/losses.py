"""GAN losses, all computed from raw discriminator outputs (logits), so they are autocast-safe."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss towards 'real' (DCGAN's D on real, G on fake)."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits, dtype=torch.float32))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.zeros_like(logits, dtype=torch.float32))


def lsgan(pred: torch.Tensor, target: float | torch.Tensor) -> torch.Tensor:
    """Least-squares loss (Mao et al.), as CycleGAN, SAG-GAN and HAGAN use it."""
    pred = pred.float()
    if not torch.is_tensor(target):
        target = torch.full_like(pred, float(target))
    return F.mse_loss(pred, target.float())


def wasserstein_critic(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic minimises E[D(fake)] - E[D(real)]."""
    return fake_scores.float().mean() - real_scores.float().mean()


def wasserstein_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.float().mean()


def hinge_discriminator(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator (Lim & Ye 2017; SNGAN, SAGAN, BigGAN): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_generator(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the hinge loss: -E[D(G(z))]."""
    return -fake_logits.float().mean()
