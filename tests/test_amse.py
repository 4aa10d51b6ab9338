"""The AMSE block of SAG-GAN: mean+max squeeze, FC-ReLU-FC-sigmoid gate, rescale, add the input."""

import math

import torch
from torch import nn

from medsyn_cli.nn.squeeze_excitation import AMSEResidualBlock, MeanMaxSqueezeExcitation

# Two channels of 2x2: channel 0 has mean 2.5 and max 4 (squeeze 6.5), channel 1 mean -0.5, max 1 (0.5).
X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [-2.0, 1.0]]]])


def _set_known_weights(se: MeanMaxSqueezeExcitation) -> None:
    with torch.no_grad():
        se.fc1.weight.copy_(torch.tensor([[1.0, -1.0]]))
        se.fc1.bias.zero_()
        se.fc2.weight.copy_(torch.tensor([[0.5], [-1.0]]))
        se.fc2.bias.copy_(torch.tensor([0.0, 1.0]))


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# hidden = relu(6.5 - 0.5) = 6; logits = (0.5 * 6, -1 * 6 + 1) = (3, -5)
EXPECTED_GATE = torch.tensor([_sigmoid(3.0), _sigmoid(-5.0)])


def test_gate_squeezes_by_mean_plus_max_and_passes_fc_relu_fc_sigmoid():
    se = MeanMaxSqueezeExcitation(2, reduction=2)
    assert se.fc1.out_features == 1  # channels / reduction
    _set_known_weights(se)
    gate = se.gate(X)
    assert gate.shape == (1, 2, 1, 1)
    torch.testing.assert_close(gate.flatten(), EXPECTED_GATE)
    torch.testing.assert_close(se(X), X * EXPECTED_GATE[None, :, None, None])


def test_mean_only_squeeze_would_give_another_gate():
    # With a mean-only squeeze (classic SE) the hidden unit would be relu(2.5 + 0.5) = 3, not 6.
    se = MeanMaxSqueezeExcitation(2, reduction=2)
    _set_known_weights(se)
    mean_only = torch.sigmoid(se.fc2(torch.relu(se.fc1(X.mean(dim=(2, 3))))))
    assert not torch.allclose(mean_only.flatten(), se.gate(X).flatten())


def test_residual_block_adds_the_input_to_the_gated_branch():
    block = AMSEResidualBlock(2, reduction=2)
    _set_known_weights(block.excitation)
    block.body = nn.Identity()  # isolate the gate and the skip connection
    expected = X + X * EXPECTED_GATE[None, :, None, None]
    torch.testing.assert_close(block(X), expected)


def test_residual_block_body_is_the_cyclegan_block():
    block = AMSEResidualBlock(8, reduction=4)
    kinds = [type(m) for m in block.body]
    assert kinds == [nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d, nn.ReLU,
                     nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d]
    x = torch.randn(2, 8, 12, 12)
    out = block(x)
    assert out.shape == x.shape
    gate = block.excitation.gate(block.body(x))
    torch.testing.assert_close(out, x + block.body(x) * gate)
