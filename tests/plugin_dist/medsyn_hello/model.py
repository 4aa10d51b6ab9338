"""The test plugin's model: a linear generator and discriminator, trained for real."""

import torch
from torch import nn

from medsyn_cli.model import GANModel
from medsyn_cli.nn.losses import bce_fake, bce_real


class HelloModel(GANModel):
    def __init__(self, config, res, channels):
        super().__init__(config, res, channels)
        size = channels * res * res
        self.networks = {
            "generator": nn.Sequential(nn.Linear(config.latent_dim, size), nn.Tanh()),
            "discriminator": nn.Linear(size, 1),
        }
        self.optimizers = {k: torch.optim.Adam(v.parameters(), lr=config.lr) for k, v in self.networks.items()}

    def _generate(self, z):
        return self.networks["generator"](z).view(-1, self.channels, self.res, self.res)

    def train_step(self, batch, step):
        real = batch["image"]
        z = torch.randn(real.shape[0], self.config.latent_dim, device=real.device)
        fake = self._generate(z)
        d = self.networks["discriminator"]
        loss_d = bce_real(d(real.flatten(1))) + bce_fake(d(fake.detach().flatten(1)))
        self.optimize("discriminator", loss_d)
        loss_g = bce_real(d(fake.flatten(1)))
        self.optimize("generator", loss_g)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item()}

    @torch.no_grad()
    def sample(self, n, generator=None):
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        return self._generate(z)
