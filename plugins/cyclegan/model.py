"""CycleGAN (Zhu et al. 2017) with the update order of the reference ``optimize_parameters``.

Domain A is ``normal``, domain B is ``tumor``. One ``train_step``:

1. forward: fake_tumor = G_nt(normal), rec_normal = G_tn(fake_tumor), and the other way round;
2. both generators together, discriminators frozen: LSGAN towards "real" on each fake, cycle L1
   (lambda = 10) and identity L1 (0.5 * lambda) - one Adam step;
3. both discriminators: LSGAN on real vs. a fake drawn through each 50-image pool, halved - one
   Adam step.

Losses are computed in float32 from the raw PatchGAN scores, so bf16 autocast is safe.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F

from medsyn_cli.model import GANModel
from medsyn_cli.nn.image_pool import ImagePool
from medsyn_cli.nn.losses import lsgan
from medsyn_plugins.cyclegan import CycleGANConfig
from medsyn_plugins.cyclegan.networks import PatchDiscriminator, ResnetGenerator, default_n_blocks, init_weights
from medsyn_plugins.cyclegan.schedule import LinearDecaySchedule

DIRECTIONS = ("tumor", "normal")


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a.float(), b.float())


def check_direction(to: str) -> str:
    if to not in DIRECTIONS:
        raise ValueError(f"translate to 'tumor' or 'normal', not {to!r}")
    return to


def discriminator_step(model: GANModel, d_t, d_n, real_t: torch.Tensor, real_n: torch.Tensor,
                       fake_t: torch.Tensor, fake_n: torch.Tensor, losses: dict[str, torch.Tensor],
                       loss_g: torch.Tensor) -> dict[str, float]:
    """Both discriminators on real images against fakes drawn from the history pools (LSGAN, halved
    as in the reference code), one optimizer step; returns every loss of the train step as floats.
    Shared by CycleGAN and SAG-GAN, which differ only in the images they hand in."""
    model.requires_grad(d_t, True)
    model.requires_grad(d_n, True)
    pooled_t = model.pools["tumor"].query(fake_t)
    pooled_n = model.pools["normal"].query(fake_n)
    with model.autocast():
        s_real_t, s_fake_t = d_t(real_t), d_t(pooled_t)
        s_real_n, s_fake_n = d_n(real_n), d_n(pooled_n)
    loss_d_t = 0.5 * (lsgan(s_real_t, 1.0) + lsgan(s_fake_t, 0.0))
    loss_d_n = 0.5 * (lsgan(s_real_n, 1.0) + lsgan(s_fake_n, 0.0))
    model.optimize("discriminators", loss_d_t + loss_d_n)

    out = {k: float(v.detach()) for k, v in losses.items()}
    out.update(g=float(loss_g.detach()), d_tumor=float(loss_d_t.detach()), d_normal=float(loss_d_n.detach()))
    return out


class CycleGAN(GANModel):
    task = "translation"
    inference_networks = ("gen_normal_to_tumor", "gen_tumor_to_normal")

    def __init__(self, config: CycleGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        n_blocks = config.n_blocks or default_n_blocks(res)
        self.networks = {
            "gen_normal_to_tumor": ResnetGenerator(channels, channels, config.ngf, n_blocks),  # G_A
            "gen_tumor_to_normal": ResnetGenerator(channels, channels, config.ngf, n_blocks),  # G_B
            "disc_tumor": PatchDiscriminator(channels, config.ndf, config.n_layers_d),  # D_A judges B
            "disc_normal": PatchDiscriminator(channels, config.ndf, config.n_layers_d),  # D_B judges A
        }
        for net in self.networks.values():
            init_weights(net, config.init_gain)
        betas = (config.beta1, config.beta2)
        gens = itertools.chain(self.networks["gen_normal_to_tumor"].parameters(),
                               self.networks["gen_tumor_to_normal"].parameters())
        discs = itertools.chain(self.networks["disc_tumor"].parameters(),
                                self.networks["disc_normal"].parameters())
        self.optimizers = {
            "generators": torch.optim.Adam(gens, lr=config.lr, betas=betas),
            "discriminators": torch.optim.Adam(discs, lr=config.lr, betas=betas),
        }
        # Each pool holds fakes of the domain its discriminator judges.
        self.pools = {"tumor": ImagePool(config.pool_size), "normal": ImagePool(config.pool_size)}
        self.schedule = LinearDecaySchedule(self.optimizers, config.lr, config.n_epochs, config.n_epochs_decay)

    # -- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        cfg = self.config
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

    def on_epoch_end(self, epoch: int) -> None:
        # The count of finished epochs is kept in state (resume-safe), so ``epoch`` is not needed.
        self.schedule.step()

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

    # -- resume ---------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"pool_tumor": self.pools["tumor"].state_dict(),
                "pool_normal": self.pools["normal"].state_dict(),
                "schedule": self.schedule.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_tumor" in state:
            self.pools["tumor"].load_state_dict(state["pool_tumor"])
        if "pool_normal" in state:
            self.pools["normal"].load_state_dict(state["pool_normal"])
        if "schedule" in state:
            self.schedule.load_state_dict(state["schedule"])
