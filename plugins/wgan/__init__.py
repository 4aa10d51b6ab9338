"""The ``wgan`` model plugin: WGAN-GP of Gulrajani et al. 2017 on DCGAN-shaped networks.

This entry-point module stays light (no torch import); the model module is imported only when
a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec


@dataclass
class WGANConfig:
    """WGAN-GP settings. Defaults follow the paper (lambda 10, n_critic 5, Adam 1e-4, beta2 0.9) and its
    released code: layer norm in the critic as in ``gan_64x64.py``, beta1 0.5 as in ``gan_cifar.py`` (and
    ``gan_64x64.py`` before its 2017-05-31 "beta1=0" commit); ``beta1=0`` is Algorithm 1's choice."""

    latent_dim: int = 100  # size of z
    ngf: int = 64  # generator width at the finest feature map
    ndf: int = 64  # critic width at the finest feature map
    lr: float = 1e-4  # Adam learning rate, both networks
    beta1: float = 0.5
    beta2: float = 0.9
    # critic updates per generator update (one train_step does all of them)
    n_critic: int = field(default=5, metadata={"min": 1})
    gp_weight: float = 10.0  # lambda, the gradient-penalty weight
    # "layer" (per-sample layer norm) or "none"; never batch norm
    critic_norm: str = field(default="layer", metadata={"choices": ("layer", "none")})
    # flips/pans of real batches: "", "flip", "translate" or "flip,translate" (HAGAN's baselines)
    augment: str = field(default="", metadata={"items": ("flip", "translate")})
    ema: bool = False  # sample, score and export an exponential moving average of G (--ema-decay)
    # Later practice, off in the paper: DiffAugment policy on every image the critic sees, real and fake,
    # in both updates (Zhao et al. 2020); "" is off
    diffaugment: str = field(default="", metadata={"items": ("color", "translation", "cutout")})


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="wgan",
            aliases=("wgan-gp",),
            task="unconditional",
            config_cls=WGANConfig,
            factory="medsyn_plugins.wgan.model:WGANGP",
            summary="WGAN-GP baseline: DCGAN generator, critic without batch norm, gradient penalty, 5 critic steps",
            citation="Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville. Improved Training of Wasserstein "
            "GANs. NeurIPS 2017, arXiv:1704.00028",
            # Split into n_critic=5 critic minibatches of 64, the paper's batch size per critic update.
            default_batch_size=320,
            default_fit="resize",  # the paper resized its images to the square (see the card)
            channels_last=True,  # its step is faster in that layout, fp32 and bf16 (bench/README.md)
        )
    )
