"""The ``sag-gan`` model plugin: SAG-GAN of Qi et al., a semi-supervised attention-guided CycleGAN.

Every component has a switch, so ablations run from the same code (docs/models/sag-gan.md). This
entry-point module stays light (no torch import); the model module is imported only when
a model is built (``factory="package.module:Class"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec


@dataclass
class SAGGANConfig:
    """SAG-GAN settings. The loss form and weights follow the paper's Eq. 6-9; what the paper does not
    give (widths, optimizer, schedule, lambda values) follows CycleGAN's reference code, on which it builds."""

    ngf: int = 64  # generator width after the first conv
    ndf: int = 64  # PatchGAN width after the first conv
    # residual blocks per generator; 0 = 6 at res <= 128, 9 above
    n_blocks: int = field(default=0, metadata={"min": 0})
    n_layers_d: int = field(default=3, metadata={"min": 1})  # PatchGAN depth (70x70 receptive field)
    attention_ngf: int = field(default=32, metadata={"gt": 0})  # width of the attention networks A_N and A_T
    # hidden width of the AMSE gate = channels / se_reduction
    se_reduction: int = field(default=16, metadata={"min": 1})
    lambda_gan: float = 1.0  # weight of each attention-guided adversarial loss (Eq. 9 gives no value)
    lambda_cycle: float = 10.0  # weight of each cycle L1 (Eq. 9 gives no value; CycleGAN's 10)
    lambda_mask: float = 1.0  # weight of the L1 between A_T's map and the tumor mask (Eq. 9: 1)
    # "bce": the log loss of Eq. 6-7; "lsgan": least squares (CycleGAN's)
    gan_loss: str = field(default="bce", metadata={"choices": ("bce", "lsgan")})
    # Ablation switches (each component of the paper can be turned off):
    attention: bool = True  # attention networks and the composition M*G(x) + (1-M)*x
    attention_in_d: bool = True  # discriminators judge images multiplied by the attention map
    amse: bool = True  # AMSE residual blocks in the generators (False: plain ResNet blocks)
    spectral_norm: bool = True  # spectral normalisation in the discriminators (False: instance norm)
    mask_supervision: bool = True  # semi-supervised L1 between A_T's map and the available masks
    cycle_adversarial: bool = True  # D also judges the cycle outputs (Sec. II: T_g^g, N_g^g)
    # fakes remembered per discriminator (0 turns the pool off)
    pool_size: int = field(default=50, metadata={"min": 0})
    lr: float = 2e-4  # Adam learning rate, all networks
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = field(default=100, metadata={"min": 0})  # epochs at the initial learning rate
    n_epochs_decay: int = field(default=100, metadata={"min": 0})  # epochs of linear decay towards zero after that
    init_gain: float = field(default=0.02, metadata={"gt": 0})  # std of the N(0, gain) weight initialisation
    # Later practice, off in the paper recipe (`--recipe fast` turns them on; docs/models/sag-gan.md says why):
    attention_in_brain: bool = False  # attention maps are zero outside the head (a closed mask of the input)
    lambda_area: float = field(default=0.0, metadata={"min": 0})  # weight of the prior on A_N's area
    area_min: float = field(default=0.0, metadata={"min": 0, "max": 1})  # A_N covers at least this share of the brain
    area_max: float = field(default=1.0, metadata={"min": 0, "max": 1})  # ... and at most this share
    # L1 between A_N on the generated normal (cycle path) and the tumor mask: where a tumor was taken out is
    # where it must be put back
    lambda_cycle_mask: float = field(default=0.0, metadata={"min": 0})
    # L1 between A_T on the grown tumor (A_T's weights frozen for this term) and A_N's map: the tumor detector,
    # which the masks train, must find the tumor where A_N placed it
    lambda_tumor_found: float = field(default=0.0, metadata={"min": 0})
    # which map a real image is judged through: "other" (Eq. 6: the other domain's map, M_N' * t) or "own"
    # (Mejjati et al.: its own domain's map, A_T(t) * t, so D_T sees real tumor tissue against painted tumors)
    d_real_attention: str = field(default="other", metadata={"choices": ("other", "own")})
    # epochs during which the discriminators judge whole images before the attention-guided ones (Mejjati et al.)
    whole_d_epochs: int = field(default=0, metadata={"min": 0})
    # translate, score and export an exponential moving average of the generators' and attention networks'
    # weights (--ema-decay) instead of the last step's; training is unchanged
    ema: bool = False
    # share of training rows whose tumor is grown in a given region instead of where A_N puts it: the normal
    # slice gets the (head-clipped) mask of the batch's tumor slice, and the cycle puts a removed tumor back
    # in its own mask (a supervised inpainting signal); a run trained so fills a `--where` region itself
    region_training: float = field(default=0.0, metadata={"min": 0, "max": 1})
    # the distance (32 quantiles) between the intensities of the grown tissue (translated normals where A_N >= 0.5)
    # and of real tumor tissue (the batch's tumor slices inside their masks): the adversarial term alone left it to
    # the seed whether the grown tissue became a bright lesion or grey speckle
    lambda_lesion_intensity: float = field(default=0.0, metadata={"min": 0})
    # ... compared as the means over this many pixels square (1: per pixel; per pixel a pattern of bright and
    # dark dots has a tumor's spread)
    lesion_scale: int = field(default=3, metadata={"min": 1})
    # ... each slice's intensities taken relative to the median of the rest of its brain (its contrast): for normal
    # slices from other volumes than the tumors (healthy subjects, other normalisations); on BraTS as `medsyn data
    # prepare` writes it both sides come from the same volumes and their brain medians agree
    lesion_contrast: bool = False
    # ... from this quantile level up (0: whole distributions; 0.5: only their brighter halves, the part a tumor is
    # recognised by, without asking for the dark pixels a per-pixel match fills in with a dot pattern)
    lesion_from: float = field(default=0.0, metadata={"min": 0, "max": 0.9})
    # ... only where the grown tissue is darker than the tumors (a floor: the judge, and a reader, recognise a
    # tumor by its bright tail, and conversion followed the grown tissue's 90th percentile over 14 runs)
    lesion_below_only: bool = False

    def __post_init__(self) -> None:
        if self.gan_loss not in ("bce", "lsgan"):
            raise InputError(f"sag-gan setting gan_loss must be bce or lsgan, not {self.gan_loss!r}")
        if self.area_min > self.area_max:
            raise InputError(f"sag-gan setting area_min ({self.area_min}) is above area_max ({self.area_max})")
        if not self.attention:
            needs = [k for k in ("attention_in_d", "mask_supervision", "attention_in_brain") if getattr(self, k)]
            needs += [k for k in ("lambda_area", "lambda_cycle_mask", "lambda_tumor_found", "region_training",
                                   "lambda_lesion_intensity")
                      if getattr(self, k)]
            if needs:
                raise InputError(
                    f"sag-gan setting {needs[0]}=true needs attention=true",
                    hint="with attention=false also turn off " + ", ".join(needs),
                )


#: The paper recipe is the defaults; "fast" is what the translation yardstick (`medsyn eval translation`)
#: measured as best per CPU-minute at 64² on BraTS FLAIR (docs/lab/brats-translation-yardstick.md): batch 4 and
#: half the widths (about five times the pairs per second), least squares, the mask L1 weighted 100 so A_T finds
#: tumors within minutes, attention kept inside the head, A_N held to 10-30 % of the brain, real images judged
#: through their own domain's map, A_T (frozen) asked to find the tumor A_N grew, the adversarial terms weighted
#: 10 against the cycle's 10 (with 1 the grown tumors stay too faint to pass for tumors), and CycleGAN's schedule
#: cut to 4 + 2 epochs with the weights' moving average: the grown lesions are brightest after ~500 steps and
#: fade with longer training, so the run ends there.
FAST_RECIPE = {"batch_size": 4, "ngf": 32, "ndf": 32, "gan_loss": "lsgan", "lambda_gan": 10.0, "lambda_mask": 100.0,
               "attention_in_brain": True, "lambda_area": 10.0, "area_min": 0.1, "area_max": 0.3,
               "d_real_attention": "own", "lambda_tumor_found": 10.0, "ema": True, "n_epochs": 4,
               "n_epochs_decay": 2}


@hookimpl
def register_models(register) -> None:
    register(
        ModelSpec(
            name="sag-gan",
            task="translation",
            config_cls=SAGGANConfig,
            factory="medsyn_plugins.sag_gan.model:SAGGAN",
            summary="SAG-GAN normal<->tumor: AMSE ResNet generators, attention networks trained by "
            "the adversarial loss and a mask L1, attention-guided SN PatchGANs",
            citation="Qi, Chen, Xu, Xu, Lukasiewicz, Liu. SAG-GAN: Semi-Supervised Attention-Guided "
            "GANs for Data Augmentation on Medical Images. arXiv:2011.07534",
            resolutions=(64, 128, 240, 256),
            channels=(1, 3),
            aliases=("sag_gan", "saggan"),
            default_batch_size=1,
            recipes={"fast": FAST_RECIPE},
        )
    )
