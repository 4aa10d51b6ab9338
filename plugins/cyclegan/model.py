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
from medsyn_cli.nn.masks import head_mask
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

    def _generate(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Generator ``name`` on ``x``; with ``keep_background`` the input passes through outside the head."""
        y = self.networks[name](x)
        if not self.config.keep_background:
            return y
        head = head_mask(x).to(y.dtype)
        return head * y + (1 - head) * x

    # -- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int | None = None) -> Losses:
        cfg = self.config
        self.schedule.set_epoch(epoch)  # the trainer's epoch (None when called directly: the rate stays)
        real_n = batch["normal"].to(self.device)
        real_t = batch["tumor"].to(self.device)
        d_t, d_n = self.networks["disc_tumor"], self.networks["disc_normal"]
        lam, lam_idt = cfg.lambda_cycle, cfg.lambda_cycle * cfg.lambda_identity

        # Generators, with the discriminators frozen.
        self.requires_grad(d_t, False)
        self.requires_grad(d_n, False)
        nt, tn = "gen_normal_to_tumor", "gen_tumor_to_normal"
        with self.autocast():
            fake_t = self._generate(nt, real_n)
            rec_n = self._generate(tn, fake_t)
            fake_n = self._generate(tn, real_t)
            rec_t = self._generate(nt, fake_n)
            idt_t = self._generate(nt, real_t) if lam_idt > 0 else None  # G_nt should leave a tumor image alone
            idt_n = self._generate(tn, real_n) if lam_idt > 0 else None
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
    def translate(self, x: torch.Tensor, to: str, region: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(translated batch, None): CycleGAN has no attention; ``region`` keeps the input outside it."""
        net = self.networks["gen_normal_to_tumor" if check_direction(to) == "tumor" else "gen_tumor_to_normal"]
        y = self.run_eval(net, x)
        x = x.to(y.device).float()
        keep = head_mask(x) if self.config.keep_background else None
        if region is not None:
            region = region.to(y.device).float()
            keep = region if keep is None else keep * region
        if keep is not None:
            y = keep * y + (1 - keep) * x
        return y, None

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` for ``batch`` items (for FLOP counting)."""
        if network_name not in self.networks:
            raise KeyError(f"cyclegan has no network {network_name!r}")
        return (torch.zeros(batch, self.channels, self.res, self.res, device=self.device),)
