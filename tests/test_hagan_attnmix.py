"""HAGAN's AttnMix: masks, mixing, label arithmetic, consistency loss (hand-computed cases)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medsyn_cli.nn.attention import attention_received
from medsyn_plugins.hagan.attnmix import (area_share, attention_share, box_masks, consistency_loss,
                                          feature_contrast, mix, mixed_label)


def test_label_arithmetic_by_hand():
    # a 2x2 attention map [[0.5, 0.1], [0.3, 0.1]] (every query attends alike) brought to 4x4
    attn = torch.tensor([[0.5, 0.1, 0.3, 0.1]] * 4).unsqueeze(0)
    amap = attention_received(attn, 2, 2, size=4)
    left = torch.zeros(1, 1, 4, 4)
    left[..., :, :2] = 1  # the real part: the left half
    assert area_share(left).item() == pytest.approx(0.5)  # lambda0
    assert attention_share(left, amap).item() == pytest.approx(0.5 + 0.3)  # lambda1
    assert mixed_label(area_share(left), attention_share(left, amap), 0.5).item() == pytest.approx(0.65)

    corner = torch.zeros(1, 1, 4, 4)
    corner[..., 0, 0] = 1  # one pixel of the 0.5 cell, which spreads over 4 pixels
    assert area_share(corner).item() == pytest.approx(1 / 16)
    assert attention_share(corner, amap).item() == pytest.approx(0.5 / 4)
    assert mixed_label(area_share(corner), attention_share(corner, amap), 0.4).item() == pytest.approx(
        0.4 * (1 / 16 + 0.125))


def test_attention_share_with_unnormalised_map_and_without_attention():
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0, :] = 1
    mask[1, 0, :, 1] = 1
    a = torch.tensor([[[[6.0, 2.0], [1.0, 1.0]]], [[[6.0, 2.0], [1.0, 1.0]]]])
    assert torch.allclose(attention_share(mask, a), torch.tensor([0.8, 0.3]))  # sum(M*A)/sum(A)
    # no self-attention: A uniform, so lambda1 is the area share
    assert torch.allclose(attention_share(mask, None), torch.tensor([0.5, 0.5]))


def test_mixed_image_is_exactly_real_inside_and_fake_outside():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    mask = box_masks(4, 16, 16)
    mixed = mix(real, fake, mask)
    inside = mask.bool().expand_as(real)
    assert torch.equal(mixed[inside], real[inside])
    assert torch.equal(mixed[~inside], fake[~inside])


def test_box_masks_are_one_box_at_a_random_place_with_uniform_area():
    g = torch.Generator().manual_seed(1)
    masks = box_masks(400, 32, 32, generator=g)
    assert masks.shape == (400, 1, 32, 32)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    for m in masks[:50, 0].bool():
        rows, cols = m.any(1), m.any(0)
        assert torch.equal(m, rows[:, None] & cols[None, :])
    shares = area_share(masks)
    # sqrt(u) sides, u ~ U(0, 1): unclipped area u; clipping at the border only shrinks it
    assert 0.1 < shares.mean().item() < 0.5
    assert shares.max().item() > 0.6 and shares.min().item() < 0.05
    centres = masks.flatten(2).argmax(-1)  # boxes do not all sit in one place
    assert centres.unique().numel() > 100


def test_box_masks_reproducible_with_a_generator():
    a = box_masks(5, 16, 16, generator=torch.Generator().manual_seed(3))
    b = box_masks(5, 16, 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_consistency_is_zero_for_a_per_pixel_linear_discriminator():
    torch.manual_seed(0)
    pixel_d = nn.Conv2d(1, 1, 1)  # linear per pixel (with bias): D(mix) == mix(D)
    real, fake = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8)
    mask = box_masks(3, 8, 8)
    lam = mixed_label(area_share(mask), attention_share(mask, None), 0.5)  # = lambda0 here
    _, pix = consistency_loss(lam, lam, lam, lam, pixel_d(mix(real, fake, mask)), pixel_d(real),
                              pixel_d(fake), mask)
    assert pix.item() < 1e-12
    # a nonlinear discriminator is not mixing-equivariant: the loss sees it
    nonlinear = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))
    _, pix = consistency_loss(lam, lam, lam, lam, nonlinear(mix(real, fake, mask)), nonlinear(real),
                              nonlinear(fake), mask)
    assert pix.item() > 1e-4


def test_image_consistency_is_zero_for_a_mean_pooled_linear_discriminator_on_flat_images():
    # D(x) = mean(w * x + b) on images that are flat per sample: D(i) = l0 D(x) + (1 - l0) D(G(z)),
    # which is the image-level target when the label is the area share (uniform attention, alpha 1/2)
    torch.manual_seed(0)
    pixel_d = nn.Conv2d(1, 1, 1)

    def image_d(x):
        return pixel_d(x).mean(dim=(1, 2, 3))

    real = torch.randn(3, 1, 1, 1).expand(3, 1, 8, 8)
    fake = torch.randn(3, 1, 1, 1).expand(3, 1, 8, 8)
    mask = box_masks(3, 8, 8)
    lam = mixed_label(area_share(mask), attention_share(mask, None), 0.5)
    img, _ = consistency_loss(image_d(mix(real, fake, mask)), image_d(real), image_d(fake), lam)
    assert img.item() < 1e-12
    wrong = consistency_loss(image_d(mix(real, fake, mask)), image_d(real), image_d(fake), 1 - lam)[0]
    assert wrong.item() > 1e-6


def test_consistency_image_level_by_hand():
    s_mixed, s_real, s_fake = torch.tensor([0.5, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, -1.0])
    lam = torch.tensor([0.25, 0.5])
    img, pix = consistency_loss(s_mixed, s_real, s_fake, lam)
    # targets 0.25 and 0.0: ((0.5 - 0.25)^2 + (0 - 0)^2) / 2
    assert img.item() == pytest.approx(0.03125)
    assert pix.item() == 0.0


def test_feature_contrast_pulls_each_mixed_feature_to_its_source():
    torch.manual_seed(0)
    f_x, f_g = torch.randn(2, 16, 4, 4), torch.randn(2, 16, 4, 4)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :, :4] = 1  # left half real: at 4x4 the left two columns are all real, the rest all fake
    cell = torch.zeros(2, 1, 4, 4)
    cell[..., :, :2] = 1
    faithful = cell * f_x + (1 - cell) * f_g  # each mixed feature equals its source's feature
    swapped = (1 - cell) * f_x + cell * f_g
    good = feature_contrast([faithful], [f_x], [f_g], mask, temperature=0.1)
    bad = feature_contrast([swapped], [f_x], [f_g], mask, temperature=0.1)
    assert 0 <= good.item() < 0.05 < 1.0 < bad.item()
    # with sources that cannot be told apart the loss is KL(m || 1/2) = log 2 on one-hot cells
    same = feature_contrast([f_x], [f_x], [f_x], mask)
    assert same.item() == pytest.approx(math.log(2), rel=1e-5)


def test_feature_contrast_gives_the_discriminator_gradient():
    from medsyn_plugins.hagan.networks import HierarchicalDiscriminator

    torch.manual_seed(0)
    D = HierarchicalDiscriminator(1, 32, d_channels=8, max_channels=32, pixel_channels=4)
    x, g = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    mask = box_masks(2, 32, 32, generator=torch.Generator().manual_seed(3))
    _, _, feats = D(torch.cat([x, g, mix(x, g, mask)]), return_features=True)
    levels = [f.split(2) for f in feats.values()]
    assert len(levels) == 4  # every level of the image branch: res/2 ... res/16
    loss = feature_contrast([f[2] for f in levels], [f[0] for f in levels], [f[1] for f in levels], mask)
    loss.backward()
    first_conv = D.down[0][0]
    grad = first_conv.parametrizations.weight.original.grad
    assert loss.item() > 0 and grad is not None and grad.abs().sum() > 0
