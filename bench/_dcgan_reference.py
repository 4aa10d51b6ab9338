"""The plain PyTorch DCGAN the ``--amp`` table of ``bench_train.py`` times beside medsyn's models: the
networks of the PyTorch examples' ``dcgan/main.py`` (nz 100, ngf 64, ndf 64, 64x64, here nc 1), its
training step (D on a real batch labelled 1 and a detached fake batch labelled 0, then G with the fake
batch labelled 1, BCELoss after a Sigmoid) and its optimizers (``Adam(lr=2e-4, betas=(0.5, 0.999))``,
torch's default kernel). Nothing of medsyn is used, so it tells what the same machine gives a textbook
GAN step in each precision and layout.

It offers what ``_common.bench_steps`` needs of a model: ``networks``, ``train()``, ``autocast`` and
``train_step(batch, step)``. Under autocast the networks run in bf16 and the loss is computed on the
float32 outputs (BCELoss is not autocast-safe), as the example would have to be written for bf16.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

NZ, NGF, NDF = 100, 64, 64
RES = 64


def weights_init(m: nn.Module) -> None:
    """The example's initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nc: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
            nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF), nn.ReLU(True),
            nn.ConvTranspose2d(NGF, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, nc: int = 1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


class ReferenceDCGAN:
    """The example's networks, optimizers and step, shaped like a medsyn model for the bench timer."""

    def __init__(self, nc: int = 1, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.networks = {"generator": Generator(nc).to(self.device), "discriminator": Discriminator(nc).to(self.device)}
        for net in self.networks.values():
            net.apply(weights_init)
        self.optimizers = {k: torch.optim.Adam(v.parameters(), lr=2e-4, betas=(0.5, 0.999))
                           for k, v in self.networks.items()}
        self.criterion = nn.BCELoss()
        self.autocast = contextlib.nullcontext

    def train(self, mode: bool = True) -> "ReferenceDCGAN":
        for net in self.networks.values():
            net.train(mode)
        return self

    def parameter_counts(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters()) for k, v in self.networks.items()}

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        net_g, net_d = self.networks["generator"], self.networks["discriminator"]
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        real = batch["image"].to(self.device)
        n = real.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)
        # (1) D: maximise log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        with self.autocast():
            out_real = net_d(real)
        err_d_real = self.criterion(out_real.float(), ones)
        err_d_real.backward()
        noise = torch.randn(n, NZ, 1, 1, device=self.device)
        with self.autocast():
            fake = net_g(noise)
            out_fake = net_d(fake.detach())
        err_d_fake = self.criterion(out_fake.float(), zeros)
        err_d_fake.backward()
        opt_d.step()
        # (2) G: maximise log(D(G(z)))
        net_g.zero_grad()
        with self.autocast():
            out = net_d(fake)
        err_g = self.criterion(out.float(), ones)
        err_g.backward()
        opt_g.step()
        return {"d": (err_d_real + err_d_fake).detach(), "g": err_g.detach()}
