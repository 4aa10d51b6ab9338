"""WGAN-GP (Gulrajani et al. 2017, Algorithm 1) on DCGAN-shaped networks.

One ``train_step`` is one iteration of Algorithm 1: ``n_critic`` critic updates, then one generator
update. The trainer hands over one batch per step, so the batch is split into ``n_critic`` slices and
each critic update sees its own real images and fresh noise (as the paper samples a new real minibatch
per critic update); an epoch therefore still shows every real image to the critic once. A batch smaller
than ``n_critic`` is reused whole by every critic update. The generator update draws as many latents
as the first slice holds. With ``augment`` set (``flip,translate``, the HAGAN paper's baseline setting)
the real batch is flipped and panned before it is split.
"""

from __future__ import annotations

import torch

from medsyn_cli.nn.gradient_penalty import gradient_penalty
from medsyn_cli.nn.losses import wasserstein_critic, wasserstein_generator
from medsyn_cli.gan.dcgan_nets import Discriminator, Generator, dcgan_init
from medsyn_cli.gan.latent import LatentGAN
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
            dcgan_init(net)
        self.networks = {"generator": generator, "critic": critic}
        betas = (config.beta1, config.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas),
            "critic": torch.optim.Adam(critic.parameters(), lr=config.lr, betas=betas),
        }

    def critic_batches(self, real: torch.Tensor) -> list[torch.Tensor]:
        """The real images each of the ``n_critic`` critic updates sees."""
        n = self.config.n_critic
        return list(real.tensor_split(n)) if real.shape[0] >= n else [real] * n

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        G, C = self.networks["generator"], self.networks["critic"]
        real_batches = self.critic_batches(self.real_images(batch))  # flipped/panned if config.augment

        # (1) n_critic critic updates: minimise E[C(fake)] - E[C(real)] + lambda * GP.
        totals = {"loss_critic": 0.0, "wasserstein": 0.0, "gp": 0.0}
        for real in real_batches:
            with torch.no_grad(), self.autocast():
                fake = G(self.latents(real.shape[0]))  # no generator graph: only the critic learns here
            with self.autocast():
                scores_real, scores_fake = C(real), C(fake)
            loss_w = wasserstein_critic(scores_real, scores_fake)
            gp = gradient_penalty(C, real, fake)  # float32, autocast off inside
            loss_c = loss_w + self.config.gp_weight * gp
            self.optimize("critic", loss_c)
            totals["loss_critic"] += loss_c.item()
            totals["wasserstein"] += -loss_w.item()  # the critic's estimate of W(real, fake)
            totals["gp"] += gp.item()

        # (2) One generator update: minimise -E[C(G(z))]; the critic frozen to skip its grads.
        self.requires_grad(C, False)
        try:
            with self.autocast():
                scores_gen = C(G(self.latents(real_batches[0].shape[0])))
            loss_g = wasserstein_generator(scores_gen)
            self.optimize("generator", loss_g)
        finally:
            self.requires_grad(C, True)

        out = {k: v / len(real_batches) for k, v in totals.items()}
        out["loss_g"] = loss_g.item()
        return out
