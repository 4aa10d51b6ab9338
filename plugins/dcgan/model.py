"""DCGAN (Radford et al. 2016) with the update order of the PyTorch example ``dcgan/main.py``.

One ``train_step``: the discriminator on a real batch (label 1) and on a detached fake batch
(label 0), one Adam step; then the generator with the non-saturating loss on the same fakes.
Losses are BCE computed from logits in float32 (the example's Sigmoid + BCELoss, autocast-safe).
"""

from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from medsyn_cli.model import GANModel
from medsyn_cli.nn.losses import bce_fake, bce_real
from medsyn_plugins.dcgan import DCGANConfig
from medsyn_plugins.dcgan.networks import Discriminator, Generator, dcgan_init

#: Latents are pushed through the generator in chunks of this many, so sampling thousands stays small.
SAMPLE_CHUNK = 256


class LatentGAN(GANModel):
    """An unconditional GAN whose ``generator`` maps N(0, I) latents (latent_dim x 1 x 1) to images."""

    task = "unconditional"
    inference_networks = ("generator",)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1] on the model's device.

        Latents come from ``generator`` on the CPU, so a seed gives the same images on any device,
        and the first k of n images are the k images that a request for k gives. The generator runs
        in eval mode (BatchNorm running statistics), so an image does not depend on the others drawn
        with it, and sampling leaves the training state and the global RNG untouched.
        """
        net = self.networks["generator"]
        if n == 0:
            return torch.empty(0, self.channels, self.res, self.res, device=self.device)
        # One draw per image: a batched draw's values depend on its size (vectorised Box-Muller).
        z = torch.stack([torch.randn(net.latent_dim, 1, 1, generator=generator) for _ in range(n)])
        return self.run_eval(net, z, chunk=SAMPLE_CHUNK)

    def latents(self, n: int) -> torch.Tensor:
        """Training noise from torch's global RNG (saved and restored by the trainer for exact resume)."""
        return torch.randn(n, self.networks["generator"].latent_dim, 1, 1, device=self.device)

    def flops_per_image(self) -> dict[str, int]:
        """Forward FLOPs (2 per multiply-add) of each network for one image, counted on the meta
        device with ``torch.utils.flop_counter.FlopCounterMode`` (nothing is computed)."""
        inputs = {
            "generator": torch.empty(1, self.networks["generator"].latent_dim, 1, 1, device="meta"),
        }
        image = torch.empty(1, self.channels, self.res, self.res, device="meta")
        out = {}
        for name, net in self.networks.items():
            meta_net = copy.deepcopy(net).to("meta")
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                meta_net(inputs.get(name, image))
            out[name] = int(counter.get_total_flops())
        return out


class DCGAN(LatentGAN):
    def __init__(self, config: DCGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        generator = Generator(config.latent_dim, channels, res, config.ngf)
        discriminator = Discriminator(channels, res, config.ndf, norm="batch")
        for net in (generator, discriminator):
            dcgan_init(net)
        self.networks = {"generator": generator, "discriminator": discriminator}
        betas = (config.beta1, config.beta2)
        self.optimizers = {
            "generator": torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas),
        }

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        G, D = self.networks["generator"], self.networks["discriminator"]
        real = batch["image"].to(self.device)
        z = self.latents(real.shape[0])

        # (1) D: maximise log D(x) + log(1 - D(G(z))); real and fake in separate batches (own BN statistics).
        with self.autocast():
            fake = G(z)
            logits_real = D(real)
            logits_fake = D(fake.detach())
        loss_d_real, loss_d_fake = bce_real(logits_real), bce_fake(logits_fake)
        self.optimize("discriminator", loss_d_real + loss_d_fake)

        # (2) G: maximise log D(G(z)) (non-saturating), through the just-updated D; D frozen to skip its grads.
        self.requires_grad(D, False)
        try:
            with self.autocast():
                logits_gen = D(fake)
            loss_g = bce_real(logits_gen)
            self.optimize("generator", loss_g)
        finally:
            self.requires_grad(D, True)

        return {
            "loss_d": (loss_d_real + loss_d_fake).item(),
            "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(logits_real.float()).mean().item(),
            "d_fake": torch.sigmoid(logits_fake.float()).mean().item(),
        }
