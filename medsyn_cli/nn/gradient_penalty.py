"""WGAN-GP's gradient penalty (Gulrajani et al. 2017), always computed in float32."""

from __future__ import annotations

from typing import Callable

import torch

from medsyn_cli.nn.compiled import eager


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    target: float = 1.0,
) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - target)^2] at random interpolates x_hat of real and fake (see
    :func:`penalty_and_norm`, which also gives the mean gradient norm)."""
    return penalty_and_norm(critic, real, fake, target=target)[0]


def penalty_and_norm(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    target: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the penalty E[(||grad_x D(x_hat)||_2 - target)^2], the detached mean norm E[||grad_x D(x_hat)||_2])
    at random interpolates x_hat of real and fake.

    Autocast is switched off: the second-order gradient is where bf16 loses too much. A compiled critic
    runs eagerly here: compiled autograd graphs have no double backward.
    """
    device_type = real.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        real = real.detach().float()
        fake = fake.detach().float()
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        with eager():
            scores = critic(x_hat).float()
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norms = grad.flatten(1).norm(2, dim=1)
        return ((norms - target) ** 2).mean(), norms.detach().mean()
