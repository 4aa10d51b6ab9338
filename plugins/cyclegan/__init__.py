"""The ``cyclegan`` model plugin: CycleGAN of Zhu et al. 2017 as in junyanz/pytorch-CycleGAN-and-pix2pix.

Domains: A = normal, B = tumor. ``--set spectral_norm=true`` gives the baseline the SAG-GAN paper ran
(CycleGAN with spectrally normalised discriminators). This entry-point module stays light (no torch
import); the model module is imported only when a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec


@dataclass
class CycleGANConfig:
    """CycleGAN settings; the defaults are the paper's and the reference code's."""

    ngf: int = 64  # generator width after the first conv
    ndf: int = 64  # PatchGAN width after the first conv
    # ResNet blocks in each generator; 0 = 6 at res <= 128, 9 above (reference)
    n_blocks: int = field(default=0, metadata={"min": 0})
    n_layers_d: int = field(default=3, metadata={"min": 1})  # PatchGAN depth; 3 gives the 70x70 receptive field
    lambda_cycle: float = 10.0  # weight of each cycle L1 (lambda_A = lambda_B)
    lambda_identity: float = 0.5  # identity L1 weight as a fraction of lambda_cycle (0 turns it off)
    # fakes remembered per discriminator (0 turns the pool off)
    pool_size: int = field(default=50, metadata={"min": 0})
    spectral_norm: bool = False  # SN discriminators (true: the SAG-GAN paper's "CycleGAN + SN" baseline)
    lr: float = 2e-4  # Adam learning rate, generators and discriminators
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = field(default=100, metadata={"min": 0})  # epochs at the initial learning rate
    n_epochs_decay: int = field(default=100, metadata={"min": 0})  # epochs of linear decay towards zero after that
    init_gain: float = field(default=0.02, metadata={"gt": 0})  # std of the N(0, gain) weight initialisation
    # Later practice, off in the paper recipe (`--recipe fast`; docs/models/cyclegan.md): outside the head the
    # output is the input (a tumor grows in the brain; the black background has nothing to translate)
    keep_background: bool = False


#: The paper recipe is the defaults; "fast" trades width for updates on a CPU at 64² (batch 4 and half the
#: widths, as sag-gan's fast recipe) and keeps the background, which the paper recipe turns to noise within
#: a CPU-hour (docs/lab/brats-translation.md).
FAST_RECIPE = {"batch_size": 4, "ngf": 32, "ndf": 32, "keep_background": True}


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="cyclegan",
            task="translation",
            config_cls=CycleGANConfig,
            factory="medsyn_plugins.cyclegan.model:CycleGAN",
            summary="CycleGAN normal<->tumor baseline: ResNet generators, 70x70 PatchGAN, LSGAN, "
            "cycle + identity L1, image pools",
            citation="Zhu, Park, Isola, Efros. Unpaired Image-to-Image Translation using "
            "Cycle-Consistent Adversarial Networks. ICCV 2017, arXiv:1703.10593",
            resolutions=(64, 128, 240, 256),
            channels=(1, 3),
            aliases=("cycle-gan",),
            default_batch_size=1,
            recipes={"fast": FAST_RECIPE},
        )
    )
