"""The ``ct-kernel-wgan`` model plugin: the CT thesis's WGAN-GP (Sahakyan 2024, chapter 3).

A generator that starts from a 1 x 4 x 4 map (the reshaped linear layer), convolves it with one
learnable, randomly initialised kernel (section 3.1), and adds interpolated, 1x1-projected copies of
earlier stages to every upsampling stage (section 3.2, equation 3.3); trained as a WGAN-GP. Three
variants: ``small`` (64 x 64), ``large-v1`` and ``large-v2`` (128 x 128). See
docs/models/ct-kernel-wgan.md.

The package registers a second model, ``wgan-linconv``: the thesis's "WGAN with linear and
convolutional layers" baseline (section 4.5.3), the same networks without the kernel and the skips.
See docs/models/wgan-linconv.md.

This entry-point module stays light (no torch import); the model modules are imported only when
a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec

#: Each variant's resolution; "auto" picks the variant from the resolution.
VARIANT_RES = {"small": 64, "large-v1": 128, "large-v2": 128}
AUTO_VARIANT = {64: "small", 128: "large-v2"}
KERNEL_POSITIONS = ("linear", "stage1")  # as in networks.py (which imports torch)
SKIPS = ("auto", "previous", "previous-twice", "eq3.3", "none")
INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
OBJECTIVES = ("wgan-gp", "hinge")  # as medsyn_cli.gan.wgan_gp.OBJECTIVES (which imports torch)


@dataclass
class CTKernelWGANConfig:
    """Settings of ct-kernel-wgan. Empty width tuples mean the variant's defaults (see the model card)."""

    # auto | small | large-v1 | large-v2; auto: small at 64, large-v2 at 128
    variant: str = field(default="auto", metadata={"choices": ("auto", *VARIANT_RES)})
    latent_dim: int = 128  # the thesis's best FID (87) came with 128; it also trained with 100
    use_kernel: bool | None = None  # None: the thesis's finding, on for the 128 variants, off for small
    kernel_size: int = field(default=3, metadata={"min": 1, "odd": True})  # odd; the thesis gives no size, 3 is medsyn's
    # linear: on the reshaped 1x4x4 linear output (sec. 3.1); stage1: on x1 (eq. 3.3)
    kernel_position: str = field(default="linear", metadata={"choices": KERNEL_POSITIONS})
    # auto: the variant's pattern; previous | previous-twice | eq3.3 | none (no skips, sec. 4.5.4)
    skips: str = field(default="auto", metadata={"choices": SKIPS})
    widths: tuple[int, ...] = ()  # generator channels after each upsampling stage but the last
    critic_widths: tuple[int, ...] = ()  # critic channels after each stride-2 conv
    batch_norm: bool = True  # BatchNorm after each hidden transposed conv of the generator
    # Later practice, 1 in the thesis: channels of the reshaped linear output (the thesis's 1 x 4 x 4 map, whose
    # 16 numbers every later stage is built from; 256 delays the drift but does not stop it, docs/models/ct-kernel-wgan.md)
    base_channels: int = field(default=1, metadata={"min": 1})
    # how skips are brought to the stage's size
    interpolation: str = field(default="bilinear", metadata={"choices": INTERPOLATIONS})
    lr: float = 1e-4  # Adam, both networks (Gulrajani et al.)
    # Later practice, None in the thesis: the critic's own Adam rate (two time-scale updates, Heusel et al. 2017)
    lr_critic: Optional[float] = field(default=None, metadata={"gt": 0})
    # Adam betas (Gulrajani et al.'s DCGAN-style setting)
    betas: tuple[float, ...] = field(default=(0.5, 0.9), metadata={"length": 2})
    # critic steps per generator step, all inside one train_step
    n_critic: int = field(default=5, metadata={"min": 1})
    gp_weight: float = field(default=10.0, metadata={"min": 0})  # lambda of the gradient penalty; 0 is none
    # Later practice, wgan-gp in the thesis: the critic's objective; hinge is SNGAN's (Miyato et al. 2018), usually
    # with spectral_norm=true and gp_weight=0 (the critic kept Lipschitz by the norm, not the penalty)
    loss: str = field(default="wgan-gp", metadata={"choices": OBJECTIVES})
    spectral_norm: bool = False  # later practice, off in the thesis: spectral norm on every critic conv
    ema: bool = False  # sample, score and export an exponential moving average of G (--ema-decay)
    # Later practice, off in the thesis's recipe (constant rate): from generator step lr_decay_start
    # (>= 0) both rates fall linearly to lr_decay_floor * lr over lr_decay_steps steps, then stay there
    lr_decay_start: int = field(default=-1, metadata={"min": -1})
    lr_decay_steps: int = field(default=1000, metadata={"min": 0})
    lr_decay_floor: float = field(default=0.1, metadata={"min": 0, "max": 1})
    # Later practice, off in the thesis: DiffAugment policy on every image the critic sees, real and fake,
    # in both updates (Zhao et al. 2020); "" is off
    diffaugment: str = field(default="", metadata={"items": ("color", "translation", "cutout")})


#: The thesis's recipe is the defaults; "fast" is what the quality bench measured as better per CPU-minute
#: on CT KIDNEY 64² (docs/results.md): the thesis's generator under dcgan fast's objective and pace (the hinge
#: loss, a spectrally normalised critic without the penalty, one critic step at four times the generator's
#: rate, Adam beta1 0, DiffAugment), batch 16, sampled from G's average. Under WGAN-GP the same generator's
#: FID turns up after ~200 steps (the earlier fast recipe; see the model card).
FAST_RECIPE = {"batch_size": 16, "loss": "hinge", "spectral_norm": True, "gp_weight": 0.0, "n_critic": 1,
               "lr_critic": 4e-4, "betas": (0.0, 0.9), "diffaugment": "translation,cutout", "ema": True}


def resolve_variant(config: CTKernelWGANConfig, res: int) -> str:
    """The variant to build at ``res``; a variant that does not fit ``res`` is an InputError."""
    if config.variant == "auto":
        if res not in AUTO_VARIANT:
            raise InputError(
                f"ct-kernel-wgan has no variant for resolution {res}",
                hint="use --res 64 (small) or --res 128 (large-v1, large-v2)",
            )
        return AUTO_VARIANT[res]
    if config.variant not in VARIANT_RES:
        raise InputError(
            f"unknown ct-kernel-wgan variant {config.variant!r}",
            hint=f"choose one of auto, {', '.join(VARIANT_RES)}",
        )
    if VARIANT_RES[config.variant] != res:
        raise InputError(
            f"ct-kernel-wgan variant {config.variant!r} generates {VARIANT_RES[config.variant]}x"
            f"{VARIANT_RES[config.variant]} images, not {res}x{res}",
            hint=f"use --res {VARIANT_RES[config.variant]} or --set variant=auto",
        )
    return config.variant


@dataclass
class WGANLinConvConfig:
    """Settings of wgan-linconv, the thesis's linear + transposed-conv WGAN baseline (section 4.5.3)."""

    latent_dim: int = 128  # as ct-kernel-wgan's default; the thesis gives none for this baseline
    base_channels: int = 1  # channels of the reshaped linear output; 1 is the thesis's 1x4x4 map
    widths: tuple[int, ...] = ()  # generator channels after each upsampling stage but the last
    critic_widths: tuple[int, ...] = ()  # critic channels after each stride-2 conv
    batch_norm: bool = True  # BatchNorm after each hidden transposed conv of the generator
    lr: float = 1e-4  # Adam, both networks (Gulrajani et al.)
    lr_critic: Optional[float] = field(default=None, metadata={"gt": 0})  # as ct-kernel-wgan's: None is lr
    betas: tuple[float, ...] = (0.5, 0.9)  # Adam betas (Gulrajani et al.'s DCGAN-style setting)
    n_critic: int = 5  # critic steps per generator step, all inside one train_step
    gp_weight: float = field(default=10.0, metadata={"min": 0})  # lambda of the gradient penalty; 0 is none
    loss: str = field(default="wgan-gp", metadata={"choices": OBJECTIVES})  # as ct-kernel-wgan's
    spectral_norm: bool = False  # as ct-kernel-wgan's: spectral norm on every critic conv
    ema: bool = False  # sample, score and export an exponential moving average of G (--ema-decay)
    lr_decay_start: int = field(default=-1, metadata={"min": -1})  # as ct-kernel-wgan's: off (-1)
    lr_decay_steps: int = field(default=1000, metadata={"min": 0})
    lr_decay_floor: float = field(default=0.1, metadata={"min": 0, "max": 1})
    # Later practice, off in the thesis: DiffAugment policy on every image the critic sees, real and fake,
    # in both updates (Zhao et al. 2020); "" is off
    diffaugment: str = field(default="", metadata={"items": ("color", "translation", "cutout")})


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="ct-kernel-wgan",
            aliases=("ct_kernel_wgan",),
            task="unconditional",
            config_cls=CTKernelWGANConfig,
            factory="medsyn_plugins.ct_kernel_wgan.model:CTKernelWGAN",
            summary="WGAN-GP for grey CT with a learnable first-map kernel and interpolation skips",
            citation="Sahakyan. Development of Components for Generative Adversarial Networks in "
            "Medical Image Synthesis. Thesis, 2024, chapter 3",
            resolutions=(64, 128),
            channels=(1,),
            default_batch_size=64,  # the thesis's batch size
            default_fit="resize",  # the thesis resized its images to the square (see the card)
            recipes={"fast": FAST_RECIPE},
            channels_last=True,  # its step is faster in that layout, fp32 and bf16 (bench/README.md)
        )
    )
    register(
        ModelSpec(
            name="wgan-linconv",
            aliases=("wgan_linconv",),
            task="unconditional",
            config_cls=WGANLinConvConfig,
            factory="medsyn_plugins.ct_kernel_wgan.baseline:LinConvWGAN",
            summary="The CT thesis's baseline: a WGAN-GP whose generator is one linear layer and "
            "transposed convs (ct-kernel-wgan without kernel and skips)",
            citation="Sahakyan. Development of Components for Generative Adversarial Networks in "
            "Medical Image Synthesis. Thesis, 2024, section 4.5.3",
            resolutions=(64, 128),
            channels=(1,),
            default_batch_size=64,
            default_fit="resize",  # the paper resized its images to the square (see the card)
            channels_last=True,  # its step is faster in that layout, fp32 and bf16 (bench/README.md)
        )
    )
