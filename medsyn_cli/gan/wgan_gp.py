"""WGAN-GP's two updates (Gulrajani et al. 2017, Algorithm 1), shared by the WGAN-GP models.

A model keeps its own loop (how many critic updates, which real images each one sees, how many
latents the generator update draws); these functions are the updates themselves, so the losses, the
float32 gradient penalty, autocast and the frozen critic are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from medsyn_cli.nn.gradient_penalty import penalty_and_norm
from medsyn_cli.nn.losses import hinge_discriminator, wasserstein_critic, wasserstein_generator

#: The critic's objectives: WGAN-GP's (Gulrajani et al.) or the hinge loss of SNGAN/BigGAN practice (Miyato
#: et al. 2018), whose generator update is the same -E[C(G(z))].
OBJECTIVES = ("wgan-gp", "hinge")

if TYPE_CHECKING:
    from medsyn_cli.model import GANModel


@dataclass(frozen=True)
class CriticStep:
    """One critic update's figures, detached tensors (the trainer reads them on the host at log steps only)."""

    loss: torch.Tensor  # E[C(fake)] - E[C(real)] (or the hinge loss) + lambda * GP, what the critic minimised
    wasserstein: torch.Tensor  # E[C(real)] - E[C(fake)], the critic's estimate of W(real, fake)
    gp: torch.Tensor | None  # E[(||grad C(x_hat)||_2 - 1)^2]; None when the penalty is off (gp_weight 0)
    grad_norm: torch.Tensor | None  # E[||grad C(x_hat)||_2] at the same interpolates (1 for a 1-Lipschitz optimum)


Augment = Callable[[torch.Tensor], torch.Tensor]


def critic_step(model: GANModel, real: torch.Tensor, latents: torch.Tensor, *, gp_weight: float,
                generator: str = "generator", critic: str = "critic", augment: Augment | None = None,
                objective: str = "wgan-gp") -> CriticStep:
    """One critic update on ``real`` against the generator's images of ``latents``.

    The fakes are made without a generator graph (only the critic learns here); the penalty is taken
    at random interpolates of real and fake, in float32; ``model.optimize`` steps the critic's optimizer
    (named like the network). ``augment`` (DiffAugment) transforms real and fake before the critic sees
    them, so the penalty is taken between the augmented images, where the critic works. ``objective``
    "hinge" minimises the hinge loss instead of -(E[C(real)] - E[C(fake)]); ``gp_weight`` 0 skips the
    penalty (hinge critics are kept Lipschitz by spectral norm instead).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    G, C = model.networks[generator], model.networks[critic]
    with torch.no_grad(), model.autocast():
        fake = G(latents)
    if augment is not None:
        real, fake = augment(real), augment(fake)
    with model.autocast():
        scores_real, scores_fake = C(real), C(fake)
    loss_w = wasserstein_critic(scores_real, scores_fake)
    loss = hinge_discriminator(scores_real, scores_fake) if objective == "hinge" else loss_w
    gp = grad_norm = None
    if gp_weight > 0:
        gp, grad_norm = penalty_and_norm(C, real, fake)
        loss = loss + gp_weight * gp
        gp = gp.detach()
    model.optimize(critic, loss)
    return CriticStep(loss.detach(), -loss_w.detach(), gp, grad_norm)


def generator_step(model: GANModel, latents: torch.Tensor, *, generator: str = "generator",
                   critic: str = "critic", augment: Augment | None = None) -> torch.Tensor:
    """One generator update, minimising -E[C(T(G(z)))] (T: ``augment``, differentiable, or none); the
    critic is frozen so none of its grads are kept. Returns the detached loss."""
    G, C = model.networks[generator], model.networks[critic]
    model.requires_grad(C, False)
    try:
        with model.autocast():
            fake = G(latents)
            scores = C(augment(fake) if augment is not None else fake)
        loss = wasserstein_generator(scores)
        model.optimize(generator, loss)
    finally:
        model.requires_grad(C, True)
    return loss.detach()
