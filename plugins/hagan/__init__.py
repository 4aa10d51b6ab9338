"""The ``hagan`` model plugin: HAGAN of Ju et al. (Hybrid Augmented GAN for medical image synthesis).

Every component of the paper has a switch so its ablation (Table IV) can be re-run; ``ablation``
picks a row of that table and the per-component booleans (``None`` = take it from the row)
override single components. This module stays light: torch is imported only when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec

#: The component switches, in the order the paper adds them.
#: As medsyn_cli.nn.diffaugment.POLICIES (not imported here: it imports torch).
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
COMPONENTS = ("self_attention", "attnmix", "diffaugment", "reverse_skip", "hierarchical_d", "warmup")

#: Rows of the paper's Table IV (cumulative). ``attnmix`` = the "AttnMix generator": the SAGAN
#: generator's self-attention, AttnMix mixing with its consistency loss, and DiffAugment (the
#: "differentiable" part of "AttnMix consistency differentiable regularization").
ABLATIONS: dict[str, dict[str, bool]] = {
    "base": dict(self_attention=False, attnmix=False, diffaugment=False, reverse_skip=False,
                 hierarchical_d=False, warmup=False),
    "attnmix": dict(self_attention=True, attnmix=True, diffaugment=True, reverse_skip=False,
                    hierarchical_d=False, warmup=False),
    "skip": dict(self_attention=True, attnmix=True, diffaugment=True, reverse_skip=True,
                 hierarchical_d=False, warmup=False),
    "hierarchical": dict(self_attention=True, attnmix=True, diffaugment=True, reverse_skip=True,
                         hierarchical_d=True, warmup=False),
    "full": dict(self_attention=True, attnmix=True, diffaugment=True, reverse_skip=True,
                 hierarchical_d=True, warmup=True),
}


@dataclass
class HAGANConfig:
    """HAGAN settings. Defaults are the paper's where it gives them (lr, z, batch, warm-up epochs),
    otherwise documented choices (see docs/models/hagan.md)."""

    # Table IV row: base | attnmix | skip | hierarchical | full
    ablation: str = field(default="full", metadata={"choices": tuple(ABLATIONS)})
    # Per-component overrides of the ablation row (None = as the row says).
    self_attention: bool | None = None  # SAGAN self-attention in the generator's last stages
    attnmix: bool | None = None  # AttnMix mixed images + consistency loss
    diffaugment: bool | None = None  # DiffAugment on T(x) and T(G(z)) after the warm-up
    reverse_skip: bool | None = None  # D's real-image features added into G's features
    hierarchical_d: bool | None = None  # pixel-level branch beside the image-level branch
    warmup: bool | None = None  # un-augmented training first, DiffAugment + AttnMix after

    # size of z ~ U[-1, 1] (paper: 100 at 64x64, 1000 at 256x256); 0 = by resolution
    latent_dim: int = field(default=100, metadata={"min": 0})
    g_channels: int = 64  # generator width at its finest feature map (doubles per coarser stage)
    d_channels: int = 64  # discriminator width after its first downsampling
    max_channels: int = 512  # width cap, both networks
    pixel_channels: int = 32  # pixel-level branch widths: this, 2x this, then 1
    # no self-attention on maps larger than this (N x N memory)
    attn_max_res: int = field(default=64, metadata={"min": 0})
    spectral_norm: bool = True  # SAGAN's spectral normalisation in G and D

    lr: float = 1e-3  # Adam learning rate, G and D (paper)
    # Later practice, off in the paper recipe (constant rate): from step lr_decay_start (>= 0) the rate
    # falls linearly to lr_decay_floor * lr over lr_decay_steps steps, then stays there
    lr_decay_start: int = field(default=-1, metadata={"min": -1})
    lr_decay_steps: int = field(default=1000, metadata={"min": 0})
    lr_decay_floor: float = field(default=0.1, metadata={"min": 0, "max": 1})
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999

    # image label of a mixed image: alpha * (lambda0 + lambda1)
    alpha: float = field(default=0.5, metadata={"min": 0, "max": 0.5})
    beta_g_pixel: float = field(default=1.0, metadata={"min": 0})  # paper's beta: L_G = L_img + beta * L_pixel
    # paper's beta1: L_D = L_img + beta1 * L_pixel + beta2 * L_cons
    beta_d_pixel: float = field(default=1.0, metadata={"min": 0})
    beta_cons: float = field(default=1.0, metadata={"min": 0})  # paper's beta2
    feature_contrast: bool = True  # §III.E: contrast D's feature maps of i with those of x / G(z), inside L_cons
    # temperature of that contrast (the paper gives none)
    contrast_temperature: float = field(default=0.1, metadata={"gt": 0})
    # DiffAugment (grey images: colour = brightness + contrast)
    policy: str = field(default="color,translation,cutout", metadata={"items": DIFFAUGMENT_POLICIES})

    # epochs on the un-augmented data before DiffAugment + AttnMix (paper: 100)
    warmup_epochs: int = field(default=100, metadata={"min": 0})
    # >= 0: count the warm-up in steps instead of epochs
    warmup_steps: int = field(default=-1, metadata={"min": -1})
    # EMA of D's mean real features, which G uses when sampling
    skip_momentum: float = field(default=0.99, metadata={"min": 0, "max": 1})
    # Later practice, off in the paper recipe: sample and export an exponential moving average of G
    # (--ema-decay); G's buffers (the reverse skip's feature mean, spectral-norm vectors) are copied
    ema: bool = False

    def components(self) -> dict[str, bool]:
        """The resolved switches: the ablation row, overridden by any explicit boolean."""
        if self.ablation not in ABLATIONS:
            raise InputError(f"unknown hagan ablation {self.ablation!r}",
                             hint=f"one of: {', '.join(ABLATIONS)}")
        row = dict(ABLATIONS[self.ablation])
        for name in COMPONENTS:
            value = getattr(self, name)
            if value is not None:
                row[name] = bool(value)
        return row


#: The paper recipe is the defaults; "fast" is what the quality bench measured as better per CPU-minute
#: (docs/results.md): a 10-epoch warm-up instead of 100, so DiffAugment and AttnMix start within minutes on
#: a CPU, sampling from the generator's moving average, and batch 16 instead of 32 (twice the updates per
#: CPU-minute; lower FID at 20 minutes on two seeds).
FAST_RECIPE = {"warmup_epochs": 10, "ema": True, "batch_size": 16}


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="hagan",
            task="unconditional",
            config_cls=HAGANConfig,
            factory="medsyn_plugins.hagan.model:HAGAN",
            summary="HAGAN: SAGAN generator + AttnMix, hierarchical (image+pixel) D, reverse skip, DiffAugment",
            citation="Ju, Zhou, Kong, Chen, Li, Sun, Shan. HAGAN: Hybrid Augmented Generative Adversarial "
            "Network for Medical Image Synthesis. arXiv:2405.04902, 2024",
            default_batch_size=32,
            default_fit="resize",  # the paper resized its images to the square (see the card)
            extra={"paper_params_64": {"generator": 3.6e6, "discriminator": 2.8e6},
                   "ablations": list(ABLATIONS), "components": list(COMPONENTS)},
            recipes={"fast": FAST_RECIPE},
        )
    )
