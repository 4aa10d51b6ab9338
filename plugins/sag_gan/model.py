"""SAG-GAN (Qi et al.): a CycleGAN whose translations are confined by learned attention maps, the
tumor attention being supervised by whatever tumor masks exist (semi-supervised).

Networks: G_nt (normal -> tumor) and G_tn with AMSE residual blocks; A_N (on normal images: where
to grow a tumor) and A_T (on tumor images: where the tumor is); D_T and D_N, spectrally normalised
PatchGANs that judge images multiplied by the attention map. A translation is
``y = M * G(x) + (1 - M) * x`` with ``M = A(x)`` of the source domain.

One ``train_step`` (CycleGAN's order):

1. generators and attention networks together, discriminators frozen: attention-guided LSGAN
   (lambda_gan), cycle L1 through the attention-guided inverse (lambda_cycle), and the L1 between
   A_T(tumor) and the tumor mask on the rows whose ``tumor_has_mask`` is true (lambda_mask);
2. discriminators: real ``x * A(x)`` vs. pooled fake ``y * M`` (attention detached), halved.

Each component has a config switch (attention, attention_in_d, amse, spectral_norm,
mask_supervision); with one off the step above simply skips it.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from medsyn_cli.model import GANModel
from medsyn_cli.nn.image_pool import ImagePool
from medsyn_cli.nn.losses import lsgan
from medsyn_plugins.cyclegan.model import check_direction, discriminator_step, l1
from medsyn_plugins.cyclegan.networks import default_n_blocks, init_weights
from medsyn_plugins.cyclegan.schedule import LinearDecaySchedule
from medsyn_plugins.sag_gan import SAGGANConfig
from medsyn_plugins.sag_gan.networks import (
    AttentionGuidedDiscriminator,
    AttentionNetwork,
    attention_compose,
    make_generator,
)


def masked_l1(attention: torch.Tensor, mask: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 between attention maps and masks over the labelled rows only (0 when there are none)."""
    rows = has_mask.to(attention.device, torch.bool)
    if not bool(rows.any()):
        return attention.new_zeros((), dtype=torch.float32)
    return l1(attention[rows], mask.to(attention.device)[rows])


class SAGGAN(GANModel):
    task = "translation"

    def __init__(self, config: SAGGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        n_blocks = config.n_blocks or default_n_blocks(res)
        self.networks = {
            name: make_generator(channels, config.ngf, n_blocks, config.amse, config.se_reduction)
            for name in ("gen_normal_to_tumor", "gen_tumor_to_normal")
        }
        if config.attention:
            self.networks["attn_normal"] = AttentionNetwork(channels, config.attention_ngf)  # A_N
            self.networks["attn_tumor"] = AttentionNetwork(channels, config.attention_ngf)  # A_T
        for name in ("disc_tumor", "disc_normal"):
            self.networks[name] = AttentionGuidedDiscriminator(channels, config.ndf, config.n_layers_d,
                                                               spectral_norm=config.spectral_norm)
        for net in self.networks.values():
            init_weights(net, config.init_gain)
        if config.spectral_norm:
            self.networks["disc_tumor"].apply_spectral_norm()
            self.networks["disc_normal"].apply_spectral_norm()
        self.inference_networks = tuple(k for k in self.networks if not k.startswith("disc_"))

        betas = (config.beta1, config.beta2)
        gens = itertools.chain(*(self.networks[k].parameters() for k in self.inference_networks))
        discs = itertools.chain(self.networks["disc_tumor"].parameters(), self.networks["disc_normal"].parameters())
        self.optimizers = {
            "generators": torch.optim.Adam(gens, lr=config.lr, betas=betas),
            "discriminators": torch.optim.Adam(discs, lr=config.lr, betas=betas),
        }
        self.pools = {"tumor": ImagePool(config.pool_size), "normal": ImagePool(config.pool_size)}
        self.schedule = LinearDecaySchedule(self.optimizers, config.lr, config.n_epochs, config.n_epochs_decay)

    # -- the attention-guided translation ---------------------------------------------------
    def _attend(self, x: torch.Tensor, source: str) -> torch.Tensor | None:
        """The source domain's attention map for ``x`` (None with attention off)."""
        return self.networks[f"attn_{source}"](x) if self.config.attention else None

    def _translate(self, x: torch.Tensor, to: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        source = "normal" if to == "tumor" else "tumor"
        attention = self._attend(x, source)
        generated = self.networks[f"gen_{source}_to_{to}"](x)
        if attention is None:
            return generated, None
        return attention_compose(generated, x, attention), attention

    # -- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        cfg = self.config
        real_n = batch["normal"].to(self.device)
        real_t = batch["tumor"].to(self.device)
        d_t, d_n = self.networks["disc_tumor"], self.networks["disc_normal"]
        guide = cfg.attention and cfg.attention_in_d

        # Generators and attention networks, with the discriminators frozen.
        self.requires_grad(d_t, False)
        self.requires_grad(d_n, False)
        with self.autocast():
            fake_t, att_n = self._translate(real_n, "tumor")  # att_n = A_N(normal)
            fake_n, att_t = self._translate(real_t, "normal")  # att_t = A_T(tumor)
            rec_n, _ = self._translate(fake_t, "normal")
            rec_t, _ = self._translate(fake_n, "tumor")
            score_fake_t = d_t(fake_t, att_n if guide else None)
            score_fake_n = d_n(fake_n, att_t if guide else None)
        losses = {
            "gan_nt": lsgan(score_fake_t, 1.0) * cfg.lambda_gan,
            "gan_tn": lsgan(score_fake_n, 1.0) * cfg.lambda_gan,
            "cycle_normal": l1(rec_n, real_n) * cfg.lambda_cycle,
            "cycle_tumor": l1(rec_t, real_t) * cfg.lambda_cycle,
        }
        if cfg.attention and cfg.mask_supervision and "tumor_mask" in batch:
            has_mask = batch.get("tumor_has_mask", torch.ones(real_t.shape[0], dtype=torch.bool))
            losses["mask"] = masked_l1(att_t.float(), batch["tumor_mask"], has_mask) * cfg.lambda_mask
        loss_g = sum(losses.values())
        self.optimize("generators", loss_g)

        # Discriminators: real vs. pooled fake, each seen through its attention map when guided.
        with torch.no_grad():
            real_in_t = real_t * att_t if guide else real_t  # D_T sees the tumor region of real tumors
            real_in_n = real_n * att_n if guide else real_n
            fake_in_t = fake_t * att_n if guide else fake_t  # ... and the grown region of fake ones
            fake_in_n = fake_n * att_t if guide else fake_n
        return discriminator_step(self, d_t, d_n, real_in_t, real_in_n, fake_in_t, fake_in_n, losses, loss_g)

    def on_epoch_end(self, epoch: int) -> None:
        # The count of finished epochs is kept in state (resume-safe), so ``epoch`` is not needed.
        self.schedule.step()

    # -- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(translated batch in [-1, 1], the source attention map in [0, 1] or None)."""
        check_direction(to)
        nets = [self.networks[k] for k in self.inference_networks]
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        try:
            with self.autocast():
                y, attention = self._translate(x.to(self.device), to)
        finally:
            for n, mode in zip(nets, modes):
                n.train(mode)
        return y.float(), None if attention is None else attention.float()

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` for ``batch`` items (for FLOP counting)."""
        if network_name not in self.networks:
            raise KeyError(f"sag-gan has no network {network_name!r}")
        image = torch.zeros(batch, self.channels, self.res, self.res, device=self.device)
        if network_name.startswith("disc_") and self.config.attention and self.config.attention_in_d:
            return (image, torch.ones(batch, 1, self.res, self.res, device=self.device))
        return (image,)

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
