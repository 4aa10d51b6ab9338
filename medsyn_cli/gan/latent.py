"""The base of unconditional GANs whose generator maps N(0, I) latents to images (dcgan, wgan).

It owns what those models share: seeded, side-effect-free sampling, the training latents, the real
batch with the optional classic augmentation (``config.augment``, see :mod:`medsyn_cli.nn.augment`),
and each network's example inputs (for FLOP counting).
"""

from __future__ import annotations

import torch

from medsyn_cli.errors import InputError
from medsyn_cli.model import GANModel
from medsyn_cli.nn.augment import augment_real, parse_augment

#: Latents are pushed through the generator in chunks of this many, so sampling thousands stays small.
SAMPLE_CHUNK = 256


class LatentGAN(GANModel):
    """An unconditional GAN whose ``generator`` maps N(0, I) latents (latent_dim x 1 x 1) to images."""

    task = "unconditional"
    inference_networks = ("generator",)

    def __init__(self, config, res: int, channels: int):
        super().__init__(config, res, channels)
        try:
            parse_augment(getattr(config, "augment", ""))
        except ValueError as exc:
            raise InputError(str(exc), hint="e.g. --set augment=flip,translate") from None

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

    def real_images(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The batch's real images on the device, flipped/panned if ``config.augment`` asks for it
        (the HAGAN paper's baselines); the draws come from torch's global RNG, so resume stays exact."""
        real = batch["image"].to(self.device)
        return augment_real(real, getattr(self.config, "augment", ""))

    def latents(self, n: int) -> torch.Tensor:
        """Training noise from torch's global RNG (saved and restored by the trainer for exact resume)."""
        return torch.randn(n, self.networks["generator"].latent_dim, 1, 1, device=self.device)

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` for ``batch`` items: latents for the generator, an
        image batch for the discriminator or critic."""
        if network_name not in self.networks:
            raise KeyError(f"{type(self).__name__} has no network {network_name!r}")
        if network_name == "generator":
            return (torch.zeros(batch, self.networks["generator"].latent_dim, 1, 1, device=self.device),)
        return (torch.zeros(batch, self.channels, self.res, self.res, device=self.device),)
