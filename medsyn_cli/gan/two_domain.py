"""The skeleton two-domain (normal <-> tumor) GANs share: optimizers, history pools, the linear-decay
schedule (driven by the trainer's epoch), and the discriminator step.

A model built on :class:`TwoDomainGAN` builds its networks, calls :meth:`TwoDomainGAN.setup_training`
with the generator-side and discriminator-side parameters, and in ``train_step`` updates the generator
side itself, then hands the images each discriminator should judge to :func:`discriminator_step`.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from medsyn_cli.gan.optim import adam
from medsyn_cli.gan.schedule import LinearDecaySchedule
from medsyn_cli.model import GANModel, Losses
from medsyn_cli.nn.image_pool import ImagePool
from medsyn_cli.nn.losses import bce_fake, bce_real, lsgan

DIRECTIONS = ("tumor", "normal")
#: ``bce``: the log loss of Goodfellow et al. on logits; ``lsgan``: least squares (Mao et al.).
GAN_LOSSES = ("bce", "lsgan")


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a.float(), b.float())


def check_direction(to: str) -> str:
    if to not in DIRECTIONS:
        raise ValueError(f"translate to 'tumor' or 'normal', not {to!r}")
    return to


def adversarial(scores: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """The adversarial term for raw discriminator scores pushed towards "real" or "fake".

    ``bce`` is binary cross-entropy on logits (log D and log(1 - D) of the GAN objective; the
    generator uses the non-saturating form, -log D(fake)); ``lsgan`` is (D - 1)^2 or D^2.
    """
    if kind == "bce":
        return bce_real(scores) if real else bce_fake(scores)
    if kind == "lsgan":
        return lsgan(scores, 1.0 if real else 0.0)
    raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, not {kind!r}")


def discriminator_step(model: "TwoDomainGAN", d_t, d_n, real_t: torch.Tensor, real_n: torch.Tensor,
                       fake_t: torch.Tensor, fake_n: torch.Tensor, losses: dict[str, torch.Tensor],
                       loss_g: torch.Tensor, gan_loss: str = "lsgan") -> Losses:
    """Both discriminators on real images against fakes drawn from the history pools, halved as in
    CycleGAN's reference code, one optimizer step; returns every loss of the train step, detached.

    ``fake_t`` / ``fake_n`` may hold more than one kind of fake (SAG-GAN passes the translations and
    the cycle outputs concatenated); the fake term is then their mean. CycleGAN and SAG-GAN differ
    only in the images they hand in.
    """
    model.requires_grad(d_t, True)
    model.requires_grad(d_n, True)
    pooled_t = model.pools["tumor"].query(fake_t)
    pooled_n = model.pools["normal"].query(fake_n)
    with model.autocast():
        s_real_t, s_fake_t = d_t(real_t), d_t(pooled_t)
        s_real_n, s_fake_n = d_n(real_n), d_n(pooled_n)
    loss_d_t = 0.5 * (adversarial(s_real_t, True, gan_loss) + adversarial(s_fake_t, False, gan_loss))
    loss_d_n = 0.5 * (adversarial(s_real_n, True, gan_loss) + adversarial(s_fake_n, False, gan_loss))
    model.optimize("discriminators", loss_d_t + loss_d_n)

    out = {k: v.detach() for k, v in losses.items()}  # tensors: read on the host only at log steps
    out.update(g=loss_g.detach(), d_tumor=loss_d_t.detach(), d_normal=loss_d_n.detach())
    return out


class TwoDomainGAN(GANModel):
    """A translation GAN with two generators and two discriminators (``disc_tumor``, ``disc_normal``),
    one Adam optimizer per side, a history pool per discriminator and CycleGAN's linear-decay schedule."""

    task = "translation"

    def setup_training(self, generator_params: Iterable[torch.nn.Parameter],
                       discriminator_params: Iterable[torch.nn.Parameter]) -> None:
        cfg = self.config
        self.optimizers = adam({"generators": generator_params, "discriminators": discriminator_params}, cfg)
        # Each pool holds fakes of the domain its discriminator judges.
        self.pools = {"tumor": ImagePool(cfg.pool_size), "normal": ImagePool(cfg.pool_size)}
        self.schedule = LinearDecaySchedule(self.optimizers, cfg.lr, cfg.n_epochs, cfg.n_epochs_decay)

    def discriminators(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        return self.networks["disc_tumor"], self.networks["disc_normal"]

    def on_epoch_end(self, epoch: int) -> None:
        # Epoch ``epoch`` is done: the next epoch's rate now, so the step's stats record shows it.
        self.schedule.set_epoch(epoch + 1)

    def extra_state(self) -> dict[str, Any]:
        # No schedule state: the rate is a function of the epoch (older checkpoints' "schedule" is ignored;
        # the optimizers' state holds the rate in force when the checkpoint was written).
        return {"pool_tumor": self.pools["tumor"].state_dict(),
                "pool_normal": self.pools["normal"].state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "pool_tumor" in state:
            self.pools["tumor"].load_state_dict(state["pool_tumor"])
        if "pool_normal" in state:
            self.pools["normal"].load_state_dict(state["pool_normal"])
