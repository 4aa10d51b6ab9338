"""CycleGAN (Zhu et al. 2017) with the update order of the reference ``optimize_parameters``.

Domain A is ``normal``, domain B is ``tumor``. One ``train_step``:

1. forward: fake_tumor = G_nt(normal), rec_normal = G_tn(fake_tumor), and the other way round;
2. both generators together, discriminators frozen: LSGAN towards "real" on each fake, cycle L1
   (lambda = 10) and identity L1 (0.5 * lambda) - one Adam step;
3. both discriminators: LSGAN on real vs. a fake drawn through each 50-image pool, halved - one
   Adam step.

With ``spectral_norm=true`` both discriminators are spectrally normalised (the SAG-GAN paper's
"CycleGAN + SN" baseline). Losses are computed in float32 from the raw PatchGAN scores, so bf16 autocast is safe.
"""

from __future__ import annotations

import itertools

import torch

from medsyn_cli.gan.networks import PatchDiscriminator, ResnetGenerator, default_n_blocks, init_weights
from medsyn_cli.gan.two_domain import TwoDomainGAN, check_direction, discriminator_step, l1
from medsyn_cli.model import Losses
from medsyn_cli.nn.losses import lsgan
from medsyn_plugins.cyclegan import CycleGANConfig


class CycleGAN(TwoDomainGAN):
    inference_networks = ("gen_normal_to_tumor", "gen_tumor_to_normal")

    def __init__(self, config: CycleGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        n_blocks = config.n_blocks or default_n_blocks(res)
        self.networks = {
            "gen_normal_to_tumor": ResnetGenerator(channels, channels, config.ngf, n_blocks),  # G_A
            "gen_tumor_to_normal": ResnetGenerator(channels, channels, config.ngf, n_blocks),  # G_B
            "disc_tumor": PatchDiscriminator(channels, config.ndf, config.n_layers_d,  # D_A judges B
                                             spectral_norm=config.spectral_norm),
            "disc_normal": PatchDiscriminator(channels, config.ndf, config.n_layers_d,  # D_B judges A
                                              spectral_norm=config.spectral_norm),
        }
        for net in self.networks.values():
            init_weights(net, config.init_gain)
        if config.spectral_norm:  # the SAG-GAN paper's baseline: CycleGAN + SN
            for name in ("disc_tumor", "disc_normal"):
                self.networks[name].apply_spectral_norm()
        gens = itertools.chain(self.networks["gen_normal_to_tumor"].parameters(),
                               self.networks["gen_tumor_to_normal"].parameters())
        discs = itertools.chain(self.networks["disc_tumor"].parameters(),
                                self.networks["disc_normal"].parameters())
        self.setup_training(gens, discs)

    # -- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int | None = None) -> Losses:
        cfg = self.config
        self.schedule.set_epoch(epoch)  # the trainer's epoch (None when called directly: the rate stays)
        real_n = batch["normal"].to(self.device)
        real_t = batch["tumor"].to(self.device)
        g_nt, g_tn = self.networks["gen_normal_to_tumor"], self.networks["gen_tumor_to_normal"]
        d_t, d_n = self.networks["disc_tumor"], self.networks["disc_normal"]
        lam, lam_idt = cfg.lambda_cycle, cfg.lambda_cycle * cfg.lambda_identity

        # Generators, with the discriminators frozen.
        self.requires_grad(d_t, False)
        self.requires_grad(d_n, False)
        with self.autocast():
            fake_t = g_nt(real_n)
            rec_n = g_tn(fake_t)
            fake_n = g_tn(real_t)
            rec_t = g_nt(fake_n)
            idt_t = g_nt(real_t) if lam_idt > 0 else None  # G_nt should leave a tumor image alone
            idt_n = g_tn(real_n) if lam_idt > 0 else None
            score_fake_t = d_t(fake_t)
            score_fake_n = d_n(fake_n)
        losses = {
            "g_nt": lsgan(score_fake_t, 1.0),
            "g_tn": lsgan(score_fake_n, 1.0),
            "cycle_normal": l1(rec_n, real_n) * lam,
            "cycle_tumor": l1(rec_t, real_t) * lam,
        }
        if lam_idt > 0:
            losses["idt_tumor"] = l1(idt_t, real_t) * lam_idt
            losses["idt_normal"] = l1(idt_n, real_n) * lam_idt
        loss_g = sum(losses.values())
        self.optimize("generators", loss_g)

        # Discriminators, on real images and fakes from the history pools.
        return discriminator_step(self, d_t, d_n, real_t, real_n, fake_t, fake_n, losses, loss_g)

    # -- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        net = self.networks["gen_normal_to_tumor" if check_direction(to) == "tumor" else "gen_tumor_to_normal"]
        return self.run_eval(net, x), None

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` for ``batch`` items (for FLOP counting)."""
        if network_name not in self.networks:
            raise KeyError(f"cyclegan has no network {network_name!r}")
        return (torch.zeros(batch, self.channels, self.res, self.res, device=self.device),)
