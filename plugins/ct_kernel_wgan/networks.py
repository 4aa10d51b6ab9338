"""The thesis's generator (section 3.1, equation 3.3) and a WGAN-GP critic without batch norm.

Generator, with x the linear map of z reshaped to 1 x 4 x 4 and F_k a transposed-conv stage (x2 size):

    x  = x * kernel                      (kernel position ``linear``: section 3.1, Fig. 3.1, 4.4.3)
    x1 = relu(F1(x) + P(x))              x1 = x1 * kernel  (kernel position ``stage1``: eq. 3.3)
    x2 = relu(F2(x1) + P(x1) + P(x))
    xk = relu(Fk(x_{k-1}) + P(x_{k-1}) + P(x_{k-2}))          the last stage: tanh instead of relu

where each P is its own 1x1 convolution to the stage's channel count followed by interpolation to the
stage's size (x2 for x_{k-1}, x4 for x_{k-2}); the skips are summed, never concatenated. Which earlier
maps a stage adds is the *skip pattern*:

* ``previous`` (small): layer i-1 (section 3.1: each layer "connected with their previous layers");
* ``previous-twice`` (large-v1): layer i-1 twice, through two separate projections (section 3.2.2);
* ``eq3.3`` (large-v2): layer i-1 and layer i-2, as written above (section 3.2.3, eq. 3.3);
* ``none``: no skips, a plain linear-then-transposed-conv generator (section 4.5.3-4.5.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medsyn_cli.gan.dcgan_nets import spectral_norm_convs

SKIP_PATTERNS = ("previous", "previous-twice", "eq3.3", "none")
#: Where the learnable kernel acts: the reshaped linear output x (section 3.1) or x1 (eq. 3.3).
KERNEL_POSITIONS = ("linear", "stage1")


def skip_sources(stage: int, pattern: str) -> tuple[int, ...]:
    """Indices of the earlier maps (0 = the 1x4x4 map x) that 1-based ``stage`` adds to its output."""
    if pattern == "previous":
        return (stage - 1,)
    if pattern == "eq3.3":
        return (stage - 1,) if stage == 1 else (stage - 1, stage - 2)
    if pattern == "previous-twice":
        return (stage - 1, stage - 1)
    if pattern == "none":
        return ()
    raise ValueError(f"skip pattern must be one of {SKIP_PATTERNS}, not {pattern!r}")


class LearnableKernel(nn.Module):
    """One k x k kernel, a trained parameter, convolved over every channel of a map ('same' size).

    Initialised at random (N(0, 1/k^2), so a response has about the variance of its input); the
    thesis means it to act as a learned, edge-preserving (bilateral-like) filter (section 3.1.1).
    """

    def __init__(self, size: int = 3):
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, not {size}")
        self.weight = nn.Parameter(torch.randn(size, size) / size)

    def forward(self, x: Tensor) -> Tensor:
        k = self.weight.shape[-1]
        channels = x.shape[1]
        # The same kernel for every channel: a depthwise convolution with a shared weight.
        weight = self.weight.to(x.dtype).expand(channels, 1, k, k)
        return F.conv2d(x, weight, padding=k // 2, groups=channels)


class SkipProjection(nn.Module):
    """An earlier map brought to a stage's channel count (1x1 conv) and size (interpolation).

    The 1x1 conv runs before the interpolation: both are linear and act on different axes, so the
    order does not change the result, and projecting at the lower resolution is cheaper.
    """

    def __init__(self, c_in: int, c_out: int, mode: str = "bilinear"):
        super().__init__()
        self.proj = nn.Conv2d(c_in, c_out, 1)
        self.mode = mode

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        y = self.proj(x)
        align = False if self.mode in ("bilinear", "bicubic") else None
        return F.interpolate(y, size=size, mode=self.mode, align_corners=align)


class KernelSkipGenerator(nn.Module):
    """z (latent_dim) -> image in [-1, 1] through eq. 3.3 (see the module docstring).

    ``widths`` are the channels after each upsampling stage but the last (which emits
    ``out_channels``); there are ``len(widths) + 1`` stages, so the output is 4 * 2^(len+1) pixels.
    ``base_channels`` is the channel count of the reshaped linear output (the thesis's 1).
    """

    def __init__(
        self,
        latent_dim: int,
        out_channels: int,
        widths: tuple[int, ...],
        *,
        skip_pattern: str = "eq3.3",
        use_kernel: bool = True,
        kernel_size: int = 3,
        kernel_position: str = "linear",
        interpolation: str = "bilinear",
        batch_norm: bool = True,
        base_channels: int = 1,
    ):
        super().__init__()
        if skip_pattern not in SKIP_PATTERNS:
            raise ValueError(f"skip pattern must be one of {SKIP_PATTERNS}, not {skip_pattern!r}")
        if kernel_position not in KERNEL_POSITIONS:
            raise ValueError(f"kernel position must be one of {KERNEL_POSITIONS}, not {kernel_position!r}")
        self.latent_dim = latent_dim
        self.skip_pattern = skip_pattern
        self.kernel_position = kernel_position
        self.base_channels = base_channels
        self.fc = nn.Linear(latent_dim, base_channels * 4 * 4)  # -> batch x 1 x 4 x 4 in the thesis
        channels = [base_channels, *widths, out_channels]  # channels of x_0 .. x_K
        self.stages = nn.ModuleList()
        self.skips = nn.ModuleList()
        for k in range(1, len(channels)):
            last = k == len(channels) - 1
            stage: list[nn.Module] = [nn.ConvTranspose2d(channels[k - 1], channels[k], 4, 2, 1, bias=last)]
            if batch_norm and not last:  # no norm on the output layer, as in DCGAN
                stage.append(nn.BatchNorm2d(channels[k]))
            self.stages.append(nn.Sequential(*stage))
            self.skips.append(
                nn.ModuleList(SkipProjection(channels[s], channels[k], interpolation)
                              for s in skip_sources(k, skip_pattern))
            )
        self.kernel = LearnableKernel(kernel_size) if use_kernel else None

    @property
    def res(self) -> int:
        return 4 * 2 ** len(self.stages)

    def forward(self, z: Tensor) -> Tensor:
        x = self.fc(z.flatten(1)).view(-1, self.base_channels, 4, 4)
        if self.kernel is not None and self.kernel_position == "linear":
            x = self.kernel(x)  # section 3.1: the reshaped affine layer is convolved by the kernel
        maps = [x]
        for k, (stage, skips) in enumerate(zip(self.stages, self.skips), start=1):
            h = stage(maps[-1])
            for source, skip in zip(skip_sources(k, self.skip_pattern), skips):
                h = h + skip(maps[source], h.shape[-2:])
            if k == len(self.stages):
                return torch.tanh(h)
            h = F.relu(h)
            if k == 1 and self.kernel is not None and self.kernel_position == "stage1":
                h = self.kernel(h)  # eq. 3.3: x1 = x1 * kernel
            maps.append(h)
        raise AssertionError("unreachable: the generator has at least one stage")


class Critic(nn.Module):
    """image -> one score: 4x4 stride-2 convs with LeakyReLU 0.2, no normalisation (WGAN-GP), then a
    4x4 conv over the final 4x4 map. ``widths`` has one entry per halving from ``res`` down to 4;
    ``spectral_norm`` (later practice, for the hinge objective) wraps every conv in spectral norm."""

    def __init__(self, channels: int, widths: tuple[int, ...], spectral_norm: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 0))
        self.main = nn.Sequential(*(spectral_norm_convs(layers) if spectral_norm else layers))

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).flatten()
