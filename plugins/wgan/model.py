"""WGAN-GP (Gulrajani et al. 2017, Algorithm 1) on DCGAN-shaped networks.

One ``train_step`` is one iteration of Algorithm 1: ``n_critic`` critic updates, then one generator
update. The trainer hands over one batch per step, so the batch is split into ``n_critic`` slices and
each critic update sees its own real images and fresh noise (as the paper samples a new real minibatch
per critic update); an epoch therefore still shows every real image to the critic once. A batch smaller
than ``n_critic`` is reused whole by every critic update. The generator update draws as many latents
as the first slice holds. With ``augment`` set (``flip,translate``, the HAGAN paper's baseline setting)
the real batch is flipped and panned before it is split. The updates themselves are the host's
(``medsyn_cli.gan.wgan_gp``), shared with ct-kernel-wgan.
"""

from __future__ import annotations

import torch

from medsyn_cli.gan.dcgan_nets import Discriminator, Generator
from medsyn_cli.gan.init import init_weights
from medsyn_cli.gan.latent import LatentGAN
from medsyn_cli.gan.optim import adam
from medsyn_cli.gan.wgan_gp import critic_step, generator_step
from medsyn_cli.model import Losses
from medsyn_cli.nn.diffaugment import diff_augment
from medsyn_plugins.wgan import WGANConfig


class WGANGP(LatentGAN):
    def __init__(self, config: WGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        if config.critic_norm not in ("layer", "none"):
            # The penalty is per sample; batch norm makes each critic output depend on the whole batch.
            raise ValueError(f"critic_norm must be 'layer' or 'none', not {config.critic_norm!r}")
        if config.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, not {config.n_critic}")
        generator = Generator(config.latent_dim, channels, res, config.ngf)
        critic = Discriminator(channels, res, config.ndf, norm=config.critic_norm)
        for net in (generator, critic):
            init_weights(net)  # the paper's N(0, 0.02); the critic's layer norm keeps scale 1, offset 0
        self.networks = {"generator": generator, "critic": critic}
        self.optimizers = adam(self.networks, config)

    def critic_batches(self, real: torch.Tensor) -> list[torch.Tensor]:
        """The real images each of the ``n_critic`` critic updates sees."""
        n = self.config.n_critic
        return list(real.tensor_split(n)) if real.shape[0] >= n else [real] * n

    def diff_augment(self, images: torch.Tensor) -> torch.Tensor:
        """DiffAugment with the configured policy; each call draws its own transforms."""
        return diff_augment(images, self.config.diffaugment)

    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int = 0) -> Losses:
        real_batches = self.critic_batches(self.real_images(batch))  # flipped/panned if config.augment
        augment = self.diff_augment if self.config.diffaugment else None

        # (1) n_critic critic updates: minimise E[C(fake)] - E[C(real)] + lambda * GP, averaged for the log.
        totals: dict[str, torch.Tensor | float] = {}
        for real in real_batches:
            critic = critic_step(self, real, self.latents(real.shape[0]), gp_weight=self.config.gp_weight,
                                 augment=augment)
            figures = {"loss_critic": critic.loss, "wasserstein": critic.wasserstein}  # detached: summed on the device
            if critic.gp is not None:  # gp_weight 0 takes no penalty, so none is logged
                figures.update(gp=critic.gp, grad_norm=critic.grad_norm)  # mean ||grad C|| at the interpolates
            for key, value in figures.items():
                totals[key] = totals.get(key, 0.0) + value

        # (2) One generator update: minimise -E[C(T(G(z)))], T DiffAugment or the identity.
        loss_g = generator_step(self, self.latents(real_batches[0].shape[0]), augment=augment)

        out = {k: v / len(real_batches) for k, v in totals.items()}
        out["loss_g"] = loss_g
        return out
