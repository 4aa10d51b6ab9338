"""ct-kernel-wgan: the thesis's generator (networks.py) trained as a WGAN-GP (Gulrajani et al. 2017).

One ``train_step`` is one generator step: ``n_critic`` critic steps, each on the *whole* real batch
with fresh latents and fresh gradient-penalty interpolates, then one generator step on a fresh
latent batch of the same size. (The trainer hands over one batch per step; re-using it for every
critic step keeps the critic's batch at the configured size, as common WGAN-GP code does.)
"""

from __future__ import annotations

import math

import torch

from medsyn_cli.errors import InputError
from medsyn_cli.model import GANModel
from medsyn_cli.nn.gradient_penalty import gradient_penalty
from medsyn_cli.nn.losses import wasserstein_critic, wasserstein_generator
from medsyn_plugins.ct_kernel_wgan import (
    INTERPOLATIONS,
    KERNEL_POSITIONS,
    CTKernelWGANConfig,
    resolve_variant,
)
from medsyn_plugins.ct_kernel_wgan.networks import Critic, KernelSkipGenerator

#: Latents go through the generator in chunks of this many when sampling.
SAMPLE_CHUNK = 256

#: Per variant: skip pattern, default generator widths, default critic widths, kernel on by default.
VARIANTS = {
    "small": ("eq3.3", (256, 128, 64), (64, 128, 256, 512), False),
    "large-v1": ("previous-twice", (256, 128, 64, 32), (32, 64, 128, 256, 512), True),
    "large-v2": ("eq3.3", (256, 128, 64, 32), (32, 64, 128, 256, 512), True),
}


def _check_config(config: CTKernelWGANConfig, res: int, channels: int) -> None:
    if channels != 1:
        raise InputError(f"ct-kernel-wgan generates grey images (1 channel), not {channels}",
                         hint="use --channels 1")
    if config.kernel_size < 1 or config.kernel_size % 2 == 0:
        raise InputError(f"kernel_size must be odd and positive, not {config.kernel_size}",
                         hint="--set kernel_size=3 or 5")
    if config.kernel_position not in KERNEL_POSITIONS:
        raise InputError(f"kernel_position must be one of {', '.join(KERNEL_POSITIONS)}, "
                         f"not {config.kernel_position!r}")
    if config.interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                         f"not {config.interpolation!r}")
    if len(config.betas) != 2:
        raise InputError(f"betas must be two numbers, not {config.betas!r}", hint="--set betas=0.5,0.9")
    if config.n_critic < 1:
        raise InputError(f"n_critic must be at least 1, not {config.n_critic}")
    stages = int(math.log2(res)) - 2  # 4x4 -> res
    if config.widths and len(config.widths) != stages - 1:
        raise InputError(f"widths needs {stages - 1} numbers at {res}x{res}, got {len(config.widths)}")
    if config.critic_widths and len(config.critic_widths) != stages:
        raise InputError(f"critic_widths needs {stages} numbers at {res}x{res}, "
                         f"got {len(config.critic_widths)}")


class CTKernelWGAN(GANModel):
    task = "unconditional"
    inference_networks = ("generator",)

    def __init__(self, config: CTKernelWGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self.variant = resolve_variant(config, res)
        _check_config(config, res, channels)
        pattern, g_widths, c_widths, kernel_default = VARIANTS[self.variant]
        self.use_kernel = kernel_default if config.use_kernel is None else config.use_kernel
        generator = KernelSkipGenerator(
            config.latent_dim,
            channels,
            tuple(config.widths) or g_widths,
            skip_pattern=pattern,
            use_kernel=self.use_kernel,
            kernel_size=config.kernel_size,
            kernel_position=config.kernel_position,
            interpolation=config.interpolation,
            batch_norm=config.batch_norm,
        )
        critic = Critic(channels, tuple(config.critic_widths) or c_widths)
        self.networks = {"generator": generator, "critic": critic}
        betas = tuple(config.betas)
        self.optimizers = {
            "generator": torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas),
            "critic": torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas),
        }

    def latents(self, n: int) -> torch.Tensor:
        """Training noise from torch's global RNG (saved and restored by the trainer)."""
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        G, D = self.networks["generator"], self.networks["critic"]
        real = batch["image"].to(self.device)
        n = real.shape[0]

        # (1) n_critic critic steps: min E[D(fake)] - E[D(real)] + lambda * GP, G held fixed.
        for _ in range(self.config.n_critic):
            with torch.no_grad(), self.autocast():
                fake = G(self.latents(n))
            with self.autocast():
                scores_real = D(real)
                scores_fake = D(fake)
            gp = gradient_penalty(D, real, fake)
            loss_c = wasserstein_critic(scores_real, scores_fake) + self.config.gp_weight * gp
            self.optimize("critic", loss_c)

        # (2) one generator step: min -E[D(G(z))]; the critic is frozen so none of its grads are kept.
        self.requires_grad(D, False)
        try:
            with self.autocast():
                scores_gen = D(G(self.latents(n)))
            loss_g = wasserstein_generator(scores_gen)
            self.optimize("generator", loss_g)
        finally:
            self.requires_grad(D, True)

        return {
            "loss_critic": loss_c.item(),
            "loss_g": loss_g.item(),
            "gp": gp.item(),
            # The critic's estimate of the Wasserstein distance on the last critic step.
            "wasserstein": (scores_real.float().mean() - scores_fake.float().mean()).item(),
        }

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1]. Latents come from ``generator`` on the CPU, so a seed gives the
        same images on any device; BatchNorm uses its running statistics (eval mode)."""
        net = self.networks["generator"]
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return self.run_eval(net, z, chunk=SAMPLE_CHUNK)

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` for ``batch`` items (for FLOP counting)."""
        if network_name == "generator":
            return (torch.randn(batch, self.config.latent_dim, device=self.device),)
        if network_name == "critic":
            return (torch.randn(batch, self.channels, self.res, self.res, device=self.device),)
        raise KeyError(f"ct-kernel-wgan has no network {network_name!r}")
