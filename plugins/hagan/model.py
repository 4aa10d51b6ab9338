"""HAGAN (Ju et al. 2024, arXiv:2405.04902): one training step.

Per step, with x a real batch and z ~ U[-1, 1]^latent_dim:

1. Reverse skip (if on): D's image-level features of x (no gradient), averaged over the batch,
   are added into G's features at the same resolutions; their running mean is kept in G's
   buffers for sampling, when no real images exist.
2. D step. G(z) (and its last attention map). x and G(z) each go through DiffAugment (T, own
   random draws, as in DiffAugment's reference). In the AttnMix phase a box mask M mixes the
   augmented pair into i = M*T(x) + (1-M)*T(G(z)), labelled lambda = alpha * (lambda0 + lambda1)
   at image level and M at pixel level, so D sees "T(G(z)), T(x) and i" (§III.B). Least squares:
   L_img = (s_x - 1)^2 + s_G^2 [+ (s_i - lambda)^2], the same per pixel (targets 1, 0, M) for
   L_pixel, and L_cons = Eq. 5 at both levels + the feature-map contrast of §III.E.
   L_D = L_img + b1 L_pixel + b2 L_cons (Eq. 7).
3. G step through the updated D: L_G = (s_G - 1)^2 + b (p_G - 1)^2 on freshly augmented G(z).

Warm-up (the training strategy): "the complete real data is used for preliminary learning", so
before the AttnMix phase neither DiffAugment nor AttnMix touches any image; step 2 uses x and G(z)
as they are. Without the training strategy both run from the first step.
"""

from __future__ import annotations

import torch

from medsyn_cli.errors import InputError
from medsyn_cli.gan.optim import adam
from medsyn_cli.gan.schedule import configured_step_rate, set_rate
from medsyn_cli.model import GANModel, Losses
from medsyn_cli.nn.attention import attention_received
from medsyn_cli.nn.diffaugment import diff_augment, parse_policy
from medsyn_cli.nn.losses import lsgan
from medsyn_plugins.hagan import HAGANConfig
from medsyn_plugins.hagan.attnmix import (area_share, attention_share, box_masks, consistency_loss,
                                          feature_contrast, mix, mixed_label)
from medsyn_plugins.hagan.networks import Generator, HierarchicalDiscriminator

#: Latents are pushed through the generator in chunks of this many when sampling.
SAMPLE_CHUNK = 256


class HAGAN(GANModel):
    task = "unconditional"
    inference_networks = ("generator",)  # the running mean of D's features lives in G's buffers

    def __init__(self, config: HAGANConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        self.parts = config.components()
        try:
            parse_policy(config.policy)
        except ValueError as exc:
            raise InputError(str(exc), hint="e.g. --set policy=color,translation,cutout") from None
        if not 0.0 <= config.alpha <= 0.5:
            raise InputError(f"alpha={config.alpha} would put the mixed label outside [0, 1]",
                             hint="alpha must lie in [0, 0.5]")
        if config.contrast_temperature <= 0:
            raise InputError(f"contrast_temperature={config.contrast_temperature} must be positive")
        self.latent_dim = config.latent_dim or (1000 if res >= 256 else 100)
        discriminator = HierarchicalDiscriminator(
            channels, res, d_channels=config.d_channels, max_channels=config.max_channels,
            pixel_channels=config.pixel_channels, hierarchical=self.parts["hierarchical_d"],
            spectral_norm=config.spectral_norm)
        generator = Generator(
            self.latent_dim, channels, res, g_channels=config.g_channels, max_channels=config.max_channels,
            self_attention=self.parts["self_attention"], attn_max_res=config.attn_max_res,
            reverse_skip=self.parts["reverse_skip"], skip_channels=discriminator.widths,
            spectral_norm=config.spectral_norm)
        self.networks = {"generator": generator, "discriminator": discriminator}
        for net in self.networks.values():
            # oneDNN's convolutions run 1.3-2x faster on channels-last weights (the activations follow);
            # the same function, and 1-channel images are the same in either layout.
            net.to(memory_format=torch.channels_last)
        self.optimizers = adam(self.networks, config)

    # -- schedule ----------------------------------------------------------------------------
    # ``step`` and ``epoch`` (finished epochs) come from the trainer, so the warm-up needs no counter
    # of its own; checkpoints of older runs still hold one ("epochs_done"), which is ignored.
    def in_warmup(self, step: int, epoch: int = 0) -> bool:
        """True during the training strategy's first part (``warmup_steps`` steps if >= 0, else
        ``warmup_epochs`` finished epochs); never without the strategy."""
        if not self.parts["warmup"]:
            return False
        if self.config.warmup_steps >= 0:
            return step < self.config.warmup_steps
        return epoch < self.config.warmup_epochs

    def lr_at(self, step: int) -> float:
        """The Adam rate of G and D at ``step``: the paper's constant ``lr``, or its step decay."""
        return configured_step_rate(self.config, step)

    def attnmix_active(self, step: int, epoch: int = 0) -> bool:
        """AttnMix (mixed images, consistency loss) runs when switched on and past the warm-up."""
        return self.parts["attnmix"] and not self.in_warmup(step, epoch)

    def diffaugment_active(self, step: int, epoch: int = 0) -> bool:
        """DiffAugment runs when switched on and past the warm-up (the warm-up sees the data as it is)."""
        return self.parts["diffaugment"] and not self.in_warmup(step, epoch)

    # -- pieces ------------------------------------------------------------------------------
    def latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ U[-1, 1]^latent_dim (the paper's prior)."""
        device = generator.device if generator is not None else self.device
        return torch.rand(n, self.latent_dim, generator=generator, device=device) * 2 - 1

    def augment(self, images: torch.Tensor, active: bool = True) -> torch.Tensor:
        """DiffAugment of ``images`` with the configured policy (own draws per call), if ``active``."""
        return diff_augment(images, self.config.policy, channels=self.channels) if active else images

    def discriminator_inputs(self, real: torch.Tensor, fake: torch.Tensor, attention, step: int, epoch: int = 0):
        """What D sees in the D step: (T(x), T(G(z)), i or None, M or None, lambda or None, stats).
        ``fake`` is detached by the caller; T is the identity during the warm-up."""
        augmenting = self.diffaugment_active(step, epoch)
        mixing = self.attnmix_active(step, epoch)
        x_a, f_a = self.augment(real, augmenting), self.augment(fake, augmenting)
        stats: dict[str, torch.Tensor | float] = {"attnmix": float(mixing), "diffaugment": float(augmenting)}
        if not mixing:
            return x_a, f_a, None, None, None, stats
        b = real.shape[0]
        mask = box_masks(b, self.res, self.res, device=self.device)
        amap = None
        if attention is not None:
            attn, h, w = attention
            amap = attention_received(attn.detach(), h, w, size=self.res)
        lam0, lam1 = area_share(mask), attention_share(mask, amap)
        label = mixed_label(lam0, lam1, self.config.alpha)
        stats.update(lambda0=lam0.detach().mean(), lambda1=lam1.detach().mean(), label=label.detach().mean())
        return x_a, f_a, mix(x_a, f_a, mask), mask, label, stats

    def real_skips(self, real: torch.Tensor) -> dict[int, torch.Tensor] | None:
        """Batch-mean image-level D features of the real batch (reverse skip), no gradient."""
        if not self.parts["reverse_skip"]:
            return None
        D = self.networks["discriminator"]
        with torch.no_grad(), self.autocast():
            feats = D.features(real)
        skips = {r: f.float().mean(dim=0, keepdim=True) for r, f in feats.items()}
        self.networks["generator"].update_skip_mean(skips, self.config.skip_momentum)
        return skips

    # -- the step ----------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int, epoch: int = 0) -> Losses:
        G, D = self.networks["generator"], self.networks["discriminator"]
        cfg = self.config
        if cfg.lr_decay_start >= 0:
            set_rate(self.optimizers, self.lr_at(step))
        real = batch["image"].to(self.device)
        b = real.shape[0]
        skips = self.real_skips(real)
        z = self.latents(b)

        # (1) D step on T(x), T(G(z)) and, in the AttnMix phase, the mixed image i.
        with self.autocast():
            fake, attention = G(z, skips, return_attention=True)
        x_a, f_a, mixed, mask, label, stats = self.discriminator_inputs(real, fake.detach(), attention, step, epoch)
        mixing = mixed is not None
        contrast = mixing and cfg.feature_contrast
        with self.autocast():
            out = D(torch.cat([x_a, f_a, mixed] if mixing else [x_a, f_a]), return_features=contrast)
        scores, pixels = out[0], out[1]
        s = scores.float().split(b)
        p = pixels.float().split(b) if pixels is not None else None
        zero = torch.zeros((), device=self.device)
        l_img = lsgan(s[0], 1.0) + lsgan(s[1], 0.0)
        l_pix = lsgan(p[0], 1.0) + lsgan(p[1], 0.0) if p is not None else zero
        l_cons, l_feat = zero, zero
        if mixing:
            l_img = l_img + lsgan(s[2], label)
            if p is not None:
                l_pix = l_pix + lsgan(p[2], mask)
            pixel_maps = (p[2], p[0], p[1]) if p is not None else (None, None, None)
            cons_img, cons_pix = consistency_loss(s[2], s[0], s[1], label, *pixel_maps, mask=mask)
            if contrast:
                levels = [f.split(b) for f in out[2].values()]
                l_feat = feature_contrast([f[2] for f in levels], [f[0] for f in levels], [f[1] for f in levels],
                                          mask, cfg.contrast_temperature)
            l_cons = cons_img + cons_pix + l_feat
        loss_d = l_img + cfg.beta_d_pixel * l_pix + cfg.beta_cons * l_cons
        self.optimize("discriminator", loss_d)

        # (2) G step on the same G(z), through the updated D (frozen: its gradients are not needed).
        self.requires_grad(D, False)
        try:
            g_a = self.augment(fake, self.diffaugment_active(step, epoch))
            with self.autocast():
                g_score, g_pixel = D(g_a)
            g_img = lsgan(g_score, 1.0)
            g_pix = lsgan(g_pixel, 1.0) if g_pixel is not None else zero
            loss_g = g_img + cfg.beta_g_pixel * g_pix
            self.optimize("generator", loss_g)
        finally:
            self.requires_grad(D, True)

        detached = dict(loss_d=loss_d, loss_g=loss_g, d_img=l_img, d_pixel=l_pix, d_cons=l_cons, d_feat=l_feat,
                        g_img=g_img, g_pixel=g_pix)
        stats.update({k: v.detach() for k, v in detached.items()})  # read on the host only at log steps
        return stats

    # -- sampling and introspection ------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [-1, 1] from z ~ U[-1, 1] drawn with ``generator`` (CPU generator: same
        images on any device). G runs in eval mode (BatchNorm running statistics); with the reverse
        skip it adds the running mean of D's real-image features it kept during training."""
        G = self.networks["generator"]
        z = self.latents(n, generator).to(self.device)
        return self.run_eval(G, z, chunk=SAMPLE_CHUNK)

    def discriminator_scores(self, images: torch.Tensor) -> torch.Tensor:
        """The hierarchical D's image-level score of each image (its first output; the pixel-level map
        of the second branch is a separate judgement and is left out), on the images as given (no
        DiffAugment, no AttnMix), for ``--holdout``'s diagnostics."""
        return self.score_images(self.networks["discriminator"], images, select=lambda out: out[0])

    def example_inputs(self, network_name: str, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The forward inputs of ``network_name`` (for FLOP counting, ``flops_per_image``): z for the
        generator (which then uses its stored skip features), an image batch for the discriminator."""
        if network_name == "generator":
            return (torch.zeros(batch, self.latent_dim, device=self.device),)
        if network_name == "discriminator":
            return (torch.zeros(batch, self.channels, self.res, self.res, device=self.device),)
        raise KeyError(f"hagan has no network {network_name!r}; networks: {', '.join(self.networks)}")
