"""wgan-linconv: the thesis's "WGAN with linear and convolutional layers" baseline (section 4.5.3).

The thesis trains it "without any modifications", the modifications being its two components, so it
is ct-kernel-wgan's generator with neither the learnable kernel nor the interpolation skips: one
linear layer reshaped to ``base_channels`` x 4 x 4 (the thesis's 1 x 4 x 4 by default), then
transposed convs; the same critic, the same WGAN-GP step and the same widths at each resolution.
"""

from __future__ import annotations

from medsyn_cli.errors import InputError
from medsyn_plugins.ct_kernel_wgan import WGANLinConvConfig
from medsyn_plugins.ct_kernel_wgan.model import KernelSkipWGAN, check_common, default_widths
from medsyn_plugins.ct_kernel_wgan.networks import Critic, KernelSkipGenerator


class LinConvWGAN(KernelSkipWGAN):
    def __init__(self, config: WGANLinConvConfig, res: int, channels: int):
        super().__init__(config, res, channels)
        check_common(config, res, channels, "wgan-linconv")
        if config.base_channels < 1:
            raise InputError(f"base_channels must be at least 1, not {config.base_channels}")
        g_widths, c_widths = default_widths(res)
        generator = KernelSkipGenerator(
            config.latent_dim,
            channels,
            tuple(config.widths) or g_widths,
            skip_pattern="none",
            use_kernel=False,
            batch_norm=config.batch_norm,
            base_channels=config.base_channels,
        )
        self._setup(generator, Critic(channels, tuple(config.critic_widths) or c_widths,
                                     spectral_norm=config.spectral_norm))
