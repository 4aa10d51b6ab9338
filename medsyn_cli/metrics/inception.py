"""The FID Inception-v3 network: torchvision's Inception3 with the blocks of the TensorFlow 2015 graph.

The FID reference (TTUR, then pytorch-fid, torch-fidelity, clean-fid) uses the TensorFlow
``inception-2015-12-05`` graph, whose mixed blocks differ from torchvision's in two ways: their
average pools ignore the zero padding (TensorFlow's ``SAME`` average pool), and the last block
max-pools its pool branch. The four block classes below patch exactly that onto torchvision's
blocks, so a state dict in pytorch-fid's key layout (``Mixed_5b.branch1x1.conv.weight``, ...)
loads unchanged. The network maps images in [-1, 1] at 299x299 to the 2048-d pool3 features.

For speed, :func:`fold_batchnorm` merges each BasicConv2d's BatchNorm into its convolution
(the same function up to float rounding, ~1e-6 relative), and the caller may use channels_last.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

FEATURE_DIM = 2048
INPUT_SIZE = 299


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3/1 average pool that, like TensorFlow's, averages only over the unpadded pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv_inception.InceptionA):
    """InceptionA (Mixed_5b-5d) with TensorFlow's padding-excluding average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return [b1, b5, b3, bp]


class FIDInceptionC(tv_inception.InceptionC):
    """InceptionC (Mixed_6b-6e) with TensorFlow's padding-excluding average pool."""

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_tf_avg_pool(x))
        return [b1, b7, bd, bp]


class _FIDInceptionE(tv_inception.InceptionE):
    """InceptionE with the pool branch chosen by the subclass."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(self._pool(x))
        return [b1, b3, bd, bp]


class FIDInceptionE_1(_FIDInceptionE):
    """Mixed_7b: TensorFlow's padding-excluding average pool."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return _tf_avg_pool(x)


class FIDInceptionE_2(_FIDInceptionE):
    """Mixed_7c: the 2015 graph max-pools here (a quirk of that graph that FID inherits)."""

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class FIDInception(nn.Module):
    """Images in [-1, 1], (B, 3, 299, 299) -> pool3 features (B, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        # init_weights=False: every tensor is overwritten by the state dict, skip the slow init.
        net = tv_inception.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
        # Same layers, same names as pytorch-fid's state dict; the classifier (fc) is not used.
        self.layers = nn.Sequential()
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"):
            self.layers.add_module(name, getattr(net, name))
        self.layers.add_module("maxpool1", nn.MaxPool2d(kernel_size=3, stride=2))
        for name in ("Conv2d_3b_1x1", "Conv2d_4a_3x3"):
            self.layers.add_module(name, getattr(net, name))
        self.layers.add_module("maxpool2", nn.MaxPool2d(kernel_size=3, stride=2))
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                     "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            self.layers.add_module(name, getattr(net, name))
        self.layers.add_module("avgpool", nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.layers(x), 1)

    def load_fid_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load pytorch-fid's layout (``Mixed_5b.branch1x1.conv.weight``, ...), with or without ``fc``."""
        state = {f"layers.{k}": v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        self.load_state_dict(state, strict=True)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Merge every BasicConv2d's eval-mode BatchNorm into its conv (one pass less per layer).

    conv(x) * g / sqrt(v + eps) + (b - m * g / sqrt(v + eps)) is the same affine map as
    bn(conv(x)); the folded weights are computed in float64 and rounded once.
    """
    for module in model.modules():
        if isinstance(module, tv_inception.BasicConv2d) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.conv, module.bn
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
            bias = bn.bias.double() - bn.running_mean.double() * scale
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                              stride=conv.stride, padding=conv.padding, bias=True)
            with torch.no_grad():
                fused.weight.copy_(weight.float())
                fused.bias.copy_(bias.float())
            module.conv = fused
            module.bn = nn.Identity()
    return model


def build_fid_inception(state: dict[str, torch.Tensor], *, fold_bn: bool = True) -> FIDInception:
    """The FID network with ``state`` loaded, in eval mode, without gradients."""
    model = FIDInception()
    model.load_fid_state_dict(state)
    model.eval()
    if fold_bn:
        fold_batchnorm(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
