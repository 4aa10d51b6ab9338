"""DCGAN (Radford et al. 2016) with the update order of the PyTorch example ``dcgan/main.py``.

One ``train_step``: the discriminator on a real batch (label 1) and on a detached fake batch
(label 0), one Adam step; then the generator with the non-saturating loss on the same fakes.
Losses are BCE computed from logits in float32 (the example's Sigmoid + BCELoss, autocast-safe).
With ``augment`` set (``flip,translate``, the HAGAN paper's baselines) the real batch is flipped
and panned before D sees it.

Later practice, each a setting (``--recipe fast`` gathers them; off in the paper recipe): the hinge
loss, spectral norm and no batch norm in D, two learning rates, DiffAugment on every image D sees
(real and fake, in both updates, as its reference does), and an EMA of G for sampling (the trainer
keeps it when ``ema`` is on).
"""

from __future__ import annotations

import torch

from medsyn_cli.gan.dcgan_nets import Discriminator, Generator
from medsyn_cli.gan.init import init_weights
from medsyn_cli.gan.latent import LatentGAN
from medsyn_cli.gan.optim import adam
from medsyn_cli.model import Losses
from medsyn_cli.nn.diffaugment import diff_augment
from medsyn_cli.nn.losses import bce_fake, bce_real, hinge_discriminator, hinge_generator
from medsyn_plugins.dcgan import DCGANConfig


class DCGAN(LatentGAN):
    def __init__(self, config: DCGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        generator = Generator(config.latent_dim, channels, res, config.ngf)
        discriminator = Discriminator(channels, res, config.ndf, norm=config.d_norm,
                                      spectral_norm=config.spectral_norm)
        for net in (generator, discriminator):
            init_weights(net)  # the paper's N(0, 0.02)
        self.networks = {"generator": generator, "discriminator": discriminator}
        self.optimizers = adam(self.networks, config, {"generator": config.lr_g, "discriminator": config.lr_d})

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits, through DiffAugment when a policy is set (each call draws its own transforms)."""
        if self.config.diffaugment:
            x = diff_augment(x, self.config.diffaugment)
        return self.networks["discriminator"](x)

    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int = 0) -> Losses:
        G, D = self.networks["generator"], self.networks["discriminator"]
        hinge = self.config.loss == "hinge"
        real = self.real_images(batch)  # flipped/panned when config.augment is set
        z = self.latents(real.shape[0])

        # (1) D: maximise log D(x) + log(1 - D(G(z))); real and fake in separate batches (own BN statistics).
        with self.autocast():
            fake = G(z)
            logits_real = self._d(real)
            logits_fake = self._d(fake.detach())
        if hinge:
            loss_d = hinge_discriminator(logits_real, logits_fake)
        else:
            loss_d = bce_real(logits_real) + bce_fake(logits_fake)
        self.optimize("discriminator", loss_d)

        # (2) G: maximise log D(G(z)) (non-saturating), through the just-updated D; D frozen to skip its grads.
        self.requires_grad(D, False)
        try:
            with self.autocast():
                logits_gen = self._d(fake)
            loss_g = hinge_generator(logits_gen) if hinge else bce_real(logits_gen)
            self.optimize("generator", loss_g)
        finally:
            self.requires_grad(D, True)

        return {  # detached tensors: the trainer reads them on the host only at log steps
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(logits_real.detach().float()).mean(),
            "d_fake": torch.sigmoid(logits_fake.detach().float()).mean(),
        }
