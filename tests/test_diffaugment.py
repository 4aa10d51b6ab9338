"""DiffAugment (medsyn_cli.nn.diffaugment): policies, shared transforms, labels."""

from __future__ import annotations

import pytest
import torch

from medsyn_cli.nn.diffaugment import diff_augment, parse_policy


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b=4, c=1, h=16, w=16, seed=0):
    # strictly positive, so zeros in the output can only come from padding or cutout
    return torch.rand(b, c, h, w, generator=_gen(seed)) * 0.9 + 0.1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("c", [1, 3])
def test_shapes_kept(policy, c):
    x = _images(c=c)
    assert diff_augment(x, policy, generator=_gen()).shape == x.shape


def test_empty_policy_is_identity_and_unknown_policy_raises():
    x = _images()
    assert diff_augment(x, "") is x
    with pytest.raises(ValueError, match="rotation"):
        diff_augment(x, "translation,rotation")
    assert parse_policy(" translation , cutout ") == ("translation", "cutout")


def test_randomness_comes_from_the_given_generator_or_global_rng():
    x = _images()
    assert torch.equal(diff_augment(x, "color,translation,cutout", generator=_gen(3)),
                       diff_augment(x, "color,translation,cutout", generator=_gen(3)))
    torch.manual_seed(5)
    a = diff_augment(x, "translation,cutout")
    torch.manual_seed(5)
    assert torch.equal(a, diff_augment(x, "translation,cutout"))


def test_translation_is_an_integer_shift_with_zero_border():
    x = _images(b=8, h=16, w=16)
    y = diff_augment(x, "translation", generator=_gen(1))
    shifted = 0
    for xi, yi in zip(x, y):
        match = None
        for tx in range(-2, 3):  # ratio 1/8 of 16 = 2 pixels at most
            for ty in range(-2, 3):
                ref = torch.zeros_like(xi)
                src = xi[:, max(tx, 0): 16 + min(tx, 0), max(ty, 0): 16 + min(ty, 0)]
                ref[:, max(-tx, 0): 16 + min(-tx, 0), max(-ty, 0): 16 + min(-ty, 0)] = src
                if torch.equal(ref, yi):
                    match = (tx, ty)
        assert match is not None, "output is not an integer translation of the input"
        shifted += match != (0, 0)
    assert shifted > 0


def test_cutout_zeroes_one_square_and_keeps_the_rest():
    x = _images(b=8, h=16, w=16)
    y = diff_augment(x, "cutout", generator=_gen(2))
    for xi, yi in zip(x, y):
        cut = yi[0] == 0
        assert torch.equal(yi[0][~cut], xi[0][~cut])  # untouched elsewhere
        assert 0 < int(cut.sum()) <= 8 * 8  # at most a half-side square, clipped at the border
        rows, cols = cut.any(1), cut.any(0)
        assert torch.equal(cut, rows[:, None] & cols[None, :])  # one axis-aligned box


def test_color_on_grey_is_brightness_and_contrast_only():
    # on one channel, colour must be a per-sample affine map a*x + b with contrast a in [0.5, 1.5]
    x = _images(b=6, c=1)
    y = diff_augment(x, "color", generator=_gen(4))
    for xi, yi in zip(x, y):
        xs, ys = xi.flatten(), yi.flatten()
        a = ((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum()
        b = ys.mean() - a * xs.mean()
        assert torch.allclose(ys, a * xs + b, atol=1e-5)
        assert 0.5 <= float(a) <= 1.5
    # 3 channels get saturation too: the channels' differences are rescaled, not kept
    x3 = _images(b=4, c=3)
    y3 = diff_augment(x3, "color", generator=_gen(4))
    d_in = x3[:, 0] - x3[:, 1]
    d_out = y3[:, 0] - y3[:, 1]
    assert not torch.allclose(d_in, d_out, atol=1e-3)


@pytest.mark.parametrize("c", [1, 3])
def test_concatenated_images_share_one_transform_per_sample(c):
    a, b = _images(c=c, seed=1), _images(c=c, seed=2)
    policy = "color,translation,cutout"
    both = diff_augment(torch.cat([a, b], 1), policy, channels=c, generator=_gen(7))
    # each part got exactly the transform a lone call with the same random draws gives it
    assert torch.allclose(both[:, :c], diff_augment(a, policy, generator=_gen(7)), atol=1e-6)
    assert torch.allclose(both[:, c:], diff_augment(b, policy, generator=_gen(7)), atol=1e-6)
    # while different samples of the batch get different transforms
    same = diff_augment(torch.cat([a[:1]] * 4), policy, generator=_gen(7))
    assert not torch.equal(same[0], same[1]) or not torch.equal(same[1], same[2])


def test_label_channels_follow_translation_but_not_colour_or_cutout():
    x = _images(b=6, c=1)
    ones = torch.ones(6, 1, 16, 16)
    out = diff_augment(torch.cat([x, ones], 1), "color,translation,cutout", channels=1, label_channels=1,
                       generator=_gen(8))
    assert torch.equal(out[:, 1:], ones)  # replicated border, no cutout, no brightness on labels
    # a label equal to the image moves with it: same pixels wherever the image was not padded
    box = torch.zeros(6, 1, 16, 16)
    box[:, :, 4:10, 5:12] = 1
    out = diff_augment(torch.cat([box, box], 1), "translation", channels=1, label_channels=1, generator=_gen(9))
    inner = (slice(None), slice(None), slice(2, 14), slice(2, 14))  # away from the 2-pixel shifted border
    assert torch.equal(out[:, :1][inner], out[:, 1:][inner])
    assert set(out[:, 1:].unique().tolist()) <= {0.0, 1.0}


def test_gradients_flow_through():
    x = _images().requires_grad_(True)
    diff_augment(x, "color,translation,cutout", generator=_gen()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
