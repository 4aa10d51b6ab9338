"""The ``dcgan`` model plugin: DCGAN of Radford et al. 2016, as in the PyTorch example.

This entry-point module stays light (no torch import); the model module is imported only when
a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

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
    # Later practice, off in the paper recipe (`--recipe fast` turns them on; see the card):
    loss: str = field(default="bce", metadata={"choices": ("bce", "hinge")})  # hinge: Lim & Ye 2017, SNGAN
    spectral_norm: bool = False  # spectral norm on every D convolution (Miyato et al. 2018)
    d_norm: str = field(default="batch", metadata={"choices": ("batch", "none")})  # D's normalisation layers
    # two time-scale learning rates (Heusel et al. 2017); None: lr
    lr_g: Optional[float] = field(default=None, metadata={"gt": 0})
    lr_d: Optional[float] = field(default=None, metadata={"gt": 0})
    # DiffAugment policy on every image D sees, real and fake (Zhao et al. 2020); "" is off
    diffaugment: str = field(default="", metadata={"items": ("color", "translation", "cutout")})
    ema: bool = False  # sample and export an exponential moving average of G (--ema-decay)


#: The paper recipe is the defaults; "fast" gathers what the quality bench measured as better per CPU-minute
#: (docs/results.md has the comparison, docs/models/dcgan.md the reasons).
FAST_RECIPE = {"loss": "hinge", "spectral_norm": True, "d_norm": "none", "lr_g": 1e-4, "lr_d": 4e-4,
               "beta1": 0.0, "beta2": 0.9, "diffaugment": "translation,cutout", "ema": True}


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
            channels_last=True,  # its step is faster in that layout, fp32 and bf16 (bench/README.md)
            recipes={"fast": FAST_RECIPE},
        )
    )
