"""The ``dcgan`` model plugin: DCGAN of Radford et al. 2016, as in the PyTorch example.

This entry-point module stays light (no torch import); the model module is imported only when
a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec


@dataclass
class DCGANConfig:
    """DCGAN settings; the defaults are the paper's and the PyTorch example's."""

    latent_dim: int = 100  # size of z
    ngf: int = 64  # generator width at the finest feature map
    ndf: int = 64  # discriminator width at the finest feature map
    lr: float = 2e-4  # Adam learning rate, both networks
    beta1: float = 0.5
    beta2: float = 0.999
    # flips/pans of real batches: "", "flip", "translate" or "flip,translate" (HAGAN's baselines)
    augment: str = field(default="", metadata={"items": ("flip", "translate")})


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="dcgan",
            task="unconditional",
            config_cls=DCGANConfig,
            factory="medsyn_plugins.dcgan.model:DCGAN",
            summary="DCGAN baseline: transposed-conv generator, BatchNorm conv discriminator, BCE loss",
            citation="Radford, Metz, Chintala. Unsupervised Representation Learning with Deep "
            "Convolutional Generative Adversarial Networks. ICLR 2016, arXiv:1511.06434",
            default_batch_size=64,
            default_fit="resize",  # the paper resized its images to the square (see the card)
        )
    )
