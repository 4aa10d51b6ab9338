"""SAG-GAN (Qi et al.): a CycleGAN whose translations are confined by learned attention maps, the
tumor attention being supervised by the tumor masks (semi-supervised: adversarial + pixel loss).

Networks: G_nt (normal -> tumor) and G_tn with AMSE residual blocks; A_N (on normal images: where
to grow a tumor) and A_T (on tumor images: where the tumor is); D_T and D_N, spectrally normalised
PatchGANs that judge images multiplied by an attention map. A translation is
``y = M * G(x) + (1 - M) * x`` with ``M = A(x)`` of the source domain (Eq. 4).

One ``train_step`` (CycleGAN's order):

1. generators and attention networks together, discriminators frozen: the attention-guided
   adversarial loss (Eq. 6-7, log loss by default, ``gan_loss=lsgan`` switches) on the translations
   and, as Sec. II says D also judges them, on the cycle outputs (T_g^g, N_g^g); cycle L1 (Eq. 8);
   the L1 between A_T(tumor) and the tumor mask on rows with a mask (Eq. 5, weight 1 in Eq. 9);
2. discriminators: D_T judges ``M_N' * t`` (the real tumor image through the *normal* image's map,
   as Eq. 6 writes it) against pooled ``M * T_g`` (each fake through the map that placed it), D_N
   likewise with ``M_T'``; attention detached, halved.

Each component has a config switch (attention, attention_in_d, amse, spectral_norm,
mask_supervision, cycle_adversarial); with one off the step above simply skips it.

``region_training`` (later practice, beyond the paper): on a drawn share of the rows the normal slice's
tumor is grown in the batch's tumor mask (clipped to its head) instead of where A_N puts it, and the cycle
puts the removed tumor back in its own mask, so G_nt learns to fill a region it is given (``--where``).
"""

from __future__ import annotations

import itertools

import torch

from medsyn_cli.gan.networks import default_n_blocks, init_weights
from medsyn_cli.gan.two_domain import TwoDomainGAN, adversarial, check_direction, discriminator_step, l1
from medsyn_cli.model import Losses
from medsyn_cli.nn.masks import area_prior, head_mask
from medsyn_plugins.sag_gan import SAGGANConfig
from medsyn_plugins.sag_gan.lesion import lesion_intensity
from medsyn_plugins.sag_gan.networks import (
    AttentionGuidedDiscriminator,
    AttentionNetwork,
    attention_compose,
    make_generator,
)


#: A borrowed tumor mask that keeps less than this share of the image inside a normal slice's head is not
#: used (that row keeps A_N's map).
MIN_REGION_SHARE = 0.005

def masked_l1(attention: torch.Tensor, mask: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 between attention maps and masks over the labelled rows only (0 when there are none)."""
    rows = has_mask.to(attention.device, torch.bool)
    if not bool(rows.any()):
        return attention.new_zeros((), dtype=torch.float32)
    return l1(attention[rows], mask.to(attention.device)[rows])


class SAGGAN(TwoDomainGAN):
    def __init__(self, config: SAGGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self._guided = config.attention and config.attention_in_d and not config.whole_d_epochs
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

        gens = itertools.chain(*(self.networks[k].parameters() for k in self.inference_networks))
        discs = itertools.chain(self.networks["disc_tumor"].parameters(), self.networks["disc_normal"].parameters())
        self.setup_training(gens, discs)

    # -- the attention-guided translation ---------------------------------------------------
    def _attend(self, x: torch.Tensor, source: str, frozen: bool = False) -> torch.Tensor | None:
        """The source domain's attention map for ``x`` (None with attention off); with
        ``attention_in_brain`` zero outside the head. ``frozen``: gradients reach ``x`` but not the
        attention network's weights."""
        if not self.config.attention:
            return None
        net = self.networks[f"attn_{source}"]
        if frozen:
            weights = {k: v.detach() for k, v in net.named_parameters()}
            attention = torch.func.functional_call(net, {**dict(net.named_buffers()), **weights}, (x,))
        else:
            attention = net(x)
        return attention * head_mask(x).to(attention.dtype) if self.config.attention_in_brain else attention

    def _translate(self, x: torch.Tensor, to: str, region: torch.Tensor | None = None,
                   place: tuple[torch.Tensor, torch.Tensor] | None = None, keep: list | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``place`` (training): (rows, maps), the rows whose map is the given region, not the attention's.
        ``keep``: a list the generator's own output (before the composition) is appended to."""
        source = "normal" if to == "tumor" else "tumor"
        attention = self._attend(x, source)
        generated = self.networks[f"gen_{source}_to_{to}"](x)
        if keep is not None:
            keep.append(generated)
        if place is not None and attention is not None:
            rows, maps = place
            attention = torch.where(rows.view(-1, 1, 1, 1), maps.to(attention.dtype), attention)
        if region is not None and to == "tumor" and attention is not None and self.config.region_training:
            # a run trained to fill regions grows the tumor in all of it (the region is the tumor's extent)
            attention = region.to(attention.dtype)
            if self.config.attention_in_brain:
                attention = attention * head_mask(x).to(attention.dtype)
            return attention_compose(generated, x, attention), attention
        if region is not None:  # --where: the map (or, without attention, the change) only inside it
            attention = region.to(generated.dtype) if attention is None else attention * region.to(attention.dtype)
            return attention_compose(generated, x, attention), attention if self.config.attention else None
        if attention is None:
            return generated, None
        return attention_compose(generated, x, attention), attention

    def _regions(self, real_n: torch.Tensor, real_t: torch.Tensor, batch: dict[str, torch.Tensor]):
        """(place for normal -> tumor, place for the cycle back to tumor) of ``region_training``: a drawn
        share of the rows with a mask; normal row i borrows tumor row i's mask, clipped to its head."""
        masks = (batch["tumor_mask"].to(self.device)[:, :1] > 0.5).float()
        has = batch.get("tumor_has_mask", torch.ones(len(real_t), dtype=torch.bool)).to(self.device, torch.bool)
        drawn = (torch.rand(len(real_t)) < self.config.region_training).to(self.device) & has
        place_t = (drawn, masks)
        if len(real_n) != len(real_t):  # unpaired batches of different sizes: only the cycle uses regions
            return None, place_t
        borrowed = masks * head_mask(real_n)
        kept = borrowed.flatten(1).mean(1) >= MIN_REGION_SHARE
        return (drawn & kept, borrowed), place_t

    def _seen(self, image: torch.Tensor, attention: torch.Tensor | None) -> torch.Tensor:
        """What a discriminator sees of ``image``: ``attention * image`` when guided, else the image."""
        return image * attention if self._guided else image

    # -- training -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int | None = None) -> Losses:
        cfg = self.config
        self.schedule.set_epoch(epoch)  # the trainer's epoch (None when called directly: the rate stays)
        # Mejjati et al.: whole-image discriminators for the first whole_d_epochs, attention-guided after
        self._guided = cfg.attention and cfg.attention_in_d and (epoch or 0) >= cfg.whole_d_epochs
        real_n = batch["normal"].to(self.device)
        real_t = batch["tumor"].to(self.device)
        d_t, d_n = self.discriminators()
        place_n = place_t = None
        if cfg.attention and cfg.region_training and "tumor_mask" in batch:
            place_n, place_t = self._regions(real_n, real_t, batch)

        # Generators and attention networks, with the discriminators frozen.
        self.requires_grad(d_t, False)
        self.requires_grad(d_n, False)
        with self.autocast():
            grown: list[torch.Tensor] = []  # G_nt(n), before the composition
            fake_t, att_n = self._translate(real_n, "tumor", place=place_n, keep=grown)  # T_g^r and M_N' = A_N(n)
            fake_n, att_t = self._translate(real_t, "normal")  # N_g^r and M_T' = A_T(t)
            rec_n, att_cyc_t = self._translate(fake_t, "normal")  # N_g^g, through A_T(T_g^r)
            rec_t, att_cyc_n = self._translate(fake_n, "tumor", place=place_t)  # T_g^g, through A_N(N_g^r)
            # Each generated image is judged through the map that placed its change.
            judged_t, judged_n = self._seen(fake_t, att_n), self._seen(fake_n, att_t)
            if cfg.cycle_adversarial:  # Sec. II: D_T also judges tumors generated from generated normals
                judged_t = torch.cat([judged_t, self._seen(rec_t, att_cyc_n)])
                judged_n = torch.cat([judged_n, self._seen(rec_n, att_cyc_t)])
            score_t, score_n = d_t(judged_t), d_n(judged_n)
        losses = {
            "gan_nt": adversarial(score_t, True, cfg.gan_loss) * cfg.lambda_gan,
            "gan_tn": adversarial(score_n, True, cfg.gan_loss) * cfg.lambda_gan,
            "cycle_normal": l1(rec_n, real_n) * cfg.lambda_cycle,
            "cycle_tumor": l1(rec_t, real_t) * cfg.lambda_cycle,
        }
        has_mask = batch.get("tumor_has_mask", torch.ones(real_t.shape[0], dtype=torch.bool))
        if cfg.attention and cfg.mask_supervision and "tumor_mask" in batch:
            losses["mask"] = masked_l1(att_t.float(), batch["tumor_mask"], has_mask) * cfg.lambda_mask
        if cfg.attention and cfg.lambda_cycle_mask and "tumor_mask" in batch:  # A_N where the tumor was taken out
            losses["cycle_mask"] = masked_l1(att_cyc_n.float(), batch["tumor_mask"], has_mask) * cfg.lambda_cycle_mask
        if cfg.attention and cfg.lambda_tumor_found:  # A_T, the masks' student, finds the grown tumor where A_N put it
            with self.autocast():
                found = self._attend(fake_t, "tumor", frozen=True)
            losses["tumor_found"] = l1(found, att_n.detach()) * cfg.lambda_tumor_found
        if cfg.attention and cfg.lambda_lesion_intensity and "tumor_mask" in batch:  # grown tissue as bright as tumors
            losses["lesion_intensity"] = lesion_intensity(grown[0], real_n, att_n, real_t, batch["tumor_mask"],
                                                          has_mask, cfg.lesion_scale, cfg.lesion_contrast,
                                                          cfg.lesion_from, cfg.lesion_below_only
                                                          ) * cfg.lambda_lesion_intensity
        if cfg.attention and cfg.lambda_area:  # A_N on real normals: a tumor-sized region of the brain
            own = torch.ones(len(real_n), dtype=torch.bool, device=att_n.device) if place_n is None else ~place_n[0]
            # rows whose map is a given region are left out (an empty selection gives 0)
            losses["area"] = area_prior(att_n[own], head_mask(real_n[own]), cfg.area_min, cfg.area_max
                                        ).nan_to_num(0.0) * cfg.lambda_area
        loss_g = sum(losses.values())
        self.optimize("generators", loss_g)

        # Discriminators (Eq. 6-7): the real image through the other domain's map, as the fakes are.
        with torch.no_grad():
            own = cfg.d_real_attention == "own"
            real_in_t = self._seen(real_t, att_t if own else att_n)  # A_T(t) * t, or Eq. 6's M_N' * t
            real_in_n = self._seen(real_n, att_n if own else att_t)  # A_N(n) * n, or M_T' * n
        return discriminator_step(self, d_t, d_n, real_in_t, real_in_n, judged_t.detach(), judged_n.detach(),
                                  losses, loss_g, cfg.gan_loss)

    # -- inference ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: torch.Tensor, to: str, region: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(translated batch in [-1, 1], the source attention map in [0, 1] or None); with ``region`` the
        map is zero outside it, so the change stays there."""
        check_direction(to)
        nets = [self.networks[k] for k in self.inference_networks]
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        try:
            with self.autocast():
                y, attention = self._translate(x.to(self.device), to,
                                               None if region is None else region.to(self.device))
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
