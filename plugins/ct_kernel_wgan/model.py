"""ct-kernel-wgan: the thesis's generator (networks.py) trained as a WGAN-GP (Gulrajani et al. 2017).

One ``train_step`` is one generator step: ``n_critic`` critic steps, each on the *whole* real batch
with fresh latents and fresh gradient-penalty interpolates, then one generator step on a fresh
latent batch of the same size. (The trainer hands over one batch per step; re-using it for every
critic step keeps the critic's batch at the configured size, as common WGAN-GP code does; the thesis
does not say.) The updates themselves are the host's (``medsyn_cli.gan.wgan_gp``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from medsyn_cli.errors import InputError
from medsyn_cli.gan.optim import adam
from medsyn_cli.gan.schedule import set_rate, step_decay_factor
from medsyn_cli.gan.wgan_gp import critic_step, generator_step
from medsyn_cli.nn.diffaugment import diff_augment
from medsyn_cli.model import GANModel, Losses
from medsyn_plugins.ct_kernel_wgan import (
    INTERPOLATIONS,
    KERNEL_POSITIONS,
    SKIPS,
    CTKernelWGANConfig,
    resolve_variant,
)
from medsyn_plugins.ct_kernel_wgan.networks import Critic, KernelSkipGenerator

#: Latents go through the generator in chunks of this many when sampling.
SAMPLE_CHUNK = 256

#: Per variant: skip pattern (section 3.2), default generator widths, default critic widths, kernel on
#: by default (section 3.1.1: verified on the 128 variants, not on small).
VARIANTS = {
    "small": ("previous", (256, 128, 64), (64, 128, 256, 512), False),
    "large-v1": ("previous-twice", (256, 128, 64, 32), (32, 64, 128, 256, 512), True),
    "large-v2": ("eq3.3", (256, 128, 64, 32), (32, 64, 128, 256, 512), True),
}


def default_widths(res: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The generator and critic widths of the variant at ``res`` (both 128 variants share them)."""
    variant = "small" if res == 64 else "large-v2"
    return VARIANTS[variant][1], VARIANTS[variant][2]


def check_common(config: Any, res: int, channels: int, name: str) -> None:
    """The settings ct-kernel-wgan and wgan-linconv share; a bad one is an InputError."""
    if channels != 1:
        raise InputError(f"{name} generates grey images (1 channel), not {channels}", hint="use --channels 1")
    if res not in (64, 128):
        raise InputError(f"{name} generates 64x64 or 128x128 images, not {res}x{res}", hint="use --res 64 or 128")
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


def _check_kernel_and_skips(config: CTKernelWGANConfig) -> None:
    if config.kernel_size < 1 or config.kernel_size % 2 == 0:
        raise InputError(f"kernel_size must be odd and positive, not {config.kernel_size}",
                         hint="--set kernel_size=3")
    if config.kernel_position not in KERNEL_POSITIONS:
        raise InputError(f"kernel_position must be one of {', '.join(KERNEL_POSITIONS)}, "
                         f"not {config.kernel_position!r}",
                         hint="'input' is now called 'linear'" if config.kernel_position == "input" else None)
    if config.skips not in SKIPS:
        raise InputError(f"skips must be one of {', '.join(SKIPS)}, not {config.skips!r}")
    if config.interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                         f"not {config.interpolation!r}")


class KernelSkipWGAN(GANModel):
    """A WGAN-GP on a :class:`KernelSkipGenerator` and a :class:`Critic` (both models of the package)."""

    task = "unconditional"
    inference_networks = ("generator",)

    def _setup(self, generator: KernelSkipGenerator, critic: Critic) -> None:
        self.networks = {"generator": generator, "critic": critic}
        # lr_critic (None: lr) gives the critic its own rate (two time-scale updates, Heusel et al. 2017)
        self.optimizers = adam(self.networks, self.config, {"critic": self.config.lr_critic})

    def latents(self, n: int) -> torch.Tensor:
        """Training noise from torch's global RNG (saved and restored by the trainer)."""
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def lr_at(self, step: int, network: str = "generator") -> float:
        """The Adam rate of ``network`` at generator step ``step``: constant, or the step decay (the same
        factor on the generator's ``lr`` and the critic's ``lr_critic``)."""
        cfg = self.config
        base = cfg.lr_critic if network == "critic" and cfg.lr_critic is not None else cfg.lr
        return base * step_decay_factor(step, cfg.lr_decay_start, cfg.lr_decay_steps, cfg.lr_decay_floor)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """DiffAugment with the configured policy; each call draws its own transforms."""
        return diff_augment(images, self.config.diffaugment)

    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int = 0) -> Losses:
        if self.config.lr_decay_start >= 0:  # a function of the step alone, so a resumed run agrees
            for name, optimizer in self.optimizers.items():
                set_rate({name: optimizer}, self.lr_at(step, name))
        real = batch["image"].to(self.device)
        n = real.shape[0]
        # (1) n_critic critic steps on the same real batch, fresh latents each; (2) one generator step.
        augment = self.augment if self.config.diffaugment else None
        for _ in range(self.config.n_critic):
            critic = critic_step(self, real, self.latents(n), gp_weight=self.config.gp_weight, augment=augment,
                                 objective=self.config.loss)
        loss_g = generator_step(self, self.latents(n), augment=augment)
        losses = {
            "loss_critic": critic.loss,  # detached tensors (critic_step, generator_step)
            "loss_g": loss_g,
            # The critic's estimate of the Wasserstein distance (E C(real) - E C(fake)) on the last critic step.
            "wasserstein": critic.wasserstein,
        }
        if critic.gp is not None:  # the penalty is on (gp_weight > 0)
            losses["gp"] = critic.gp
            losses["grad_norm"] = critic.grad_norm  # mean ||grad C|| at the penalty's interpolates
        return losses

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
        raise KeyError(f"{type(self).__name__} has no network {network_name!r}")


class CTKernelWGAN(KernelSkipWGAN):
    def __init__(self, config: CTKernelWGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self.variant = resolve_variant(config, res)
        check_common(config, res, channels, "ct-kernel-wgan")
        _check_kernel_and_skips(config)
        pattern, g_widths, c_widths, kernel_default = VARIANTS[self.variant]
        self.skip_pattern = pattern if config.skips == "auto" else config.skips
        self.use_kernel = kernel_default if config.use_kernel is None else config.use_kernel
        generator = KernelSkipGenerator(
            config.latent_dim,
            channels,
            tuple(config.widths) or g_widths,
            skip_pattern=self.skip_pattern,
            use_kernel=self.use_kernel,
            kernel_size=config.kernel_size,
            kernel_position=config.kernel_position,
            interpolation=config.interpolation,
            batch_norm=config.batch_norm,
            base_channels=config.base_channels,
        )
        self._setup(generator, Critic(channels, tuple(config.critic_widths) or c_widths,
                                     spectral_norm=config.spectral_norm))
