"""SAGAN self-attention (medsyn_cli.nn.attention)."""

from __future__ import annotations

import pytest
import torch

from medsyn_cli.nn.attention import SelfAttention, attention_received


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_shapes_and_rows_are_distributions(spectral_norm):
    torch.manual_seed(0)
    layer = SelfAttention(16, spectral_norm=spectral_norm)
    x = torch.randn(3, 16, 5, 7)
    y, attn = layer(x, return_attention=True)
    assert y.shape == x.shape
    assert attn.shape == (3, 35, 35)
    assert torch.allclose(attn.sum(-1), torch.ones(3, 35), atol=1e-5)  # softmax over keys
    assert (attn >= 0).all()


def test_gamma_zero_is_identity_and_nonzero_gamma_is_not():
    torch.manual_seed(0)
    layer = SelfAttention(8, spectral_norm=False)
    x = torch.randn(2, 8, 4, 4)
    assert layer.gamma.detach().item() == 0.0  # SAGAN starts from the identity
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.gamma.fill_(0.7)
    y = layer(x)
    assert not torch.allclose(y, x)
    # y = gamma * o + x: the residual part is exactly gamma times the attention output
    _, attn = layer(x, return_attention=True)
    v = layer.value(x).flatten(2)
    o = torch.bmm(v, attn.transpose(1, 2)).view_as(x)
    assert torch.allclose(y, 0.7 * o + x, atol=1e-5)


def test_attention_received_averages_over_queries_and_upsamples():
    # 2x2 map, N = 4; every query attends the same way except one, so the mean is hand-computable
    rows = torch.tensor([[0.5, 0.1, 0.3, 0.1]] * 3 + [[0.1, 0.5, 0.3, 0.1]])
    amap = attention_received(rows.unsqueeze(0), 2, 2)
    expected = torch.tensor([[0.4, 0.2], [0.3, 0.1]]).view(1, 1, 2, 2)
    assert torch.allclose(amap, expected, atol=1e-6)
    up = attention_received(rows.unsqueeze(0), 2, 2, size=4)
    assert up.shape == (1, 1, 4, 4)
    assert torch.allclose(up.sum(), torch.tensor(1.0))
    # nearest upsampling: each cell's weight spread evenly over its 2x2 pixel block
    assert torch.allclose(up[0, 0, :2, :2], torch.full((2, 2), 0.4 / 4))
    assert torch.allclose(up[0, 0, 2:, 2:], torch.full((2, 2), 0.1 / 4))


def test_attention_received_rejects_mismatched_shape():
    with pytest.raises(ValueError):
        attention_received(torch.ones(1, 6, 6) / 6, 2, 2)
