"""Flip/pan augmentation of real batches (medsyn_cli.nn.augment) and its use by the dcgan and wgan baselines."""

from __future__ import annotations

import pytest
import torch

from medsyn_cli.errors import InputError
from medsyn_cli.nn.augment import augment_real, parse_augment
from medsyn_plugins.dcgan import DCGANConfig
from medsyn_plugins.dcgan.model import DCGAN
from medsyn_plugins.wgan import WGANConfig
from medsyn_plugins.wgan.model import WGANGP


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_parse_and_off_is_identity():
    assert parse_augment(" flip , translate ") == ("flip", "translate")
    with pytest.raises(ValueError, match="rotate"):
        parse_augment("flip,rotate")
    x = torch.rand(2, 1, 8, 8)
    assert augment_real(x, "") is x


def test_flip_mirrors_about_half_of_the_images_left_right():
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    y = augment_real(x, "flip", generator=_gen(1))
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))  # each image is either mirrored or untouched
    assert 16 < sum(flipped) < 48


def test_translate_shifts_whole_pixels_and_fills_black():
    x = torch.rand(32, 1, 16, 16) * 0.5  # no pixel is -1, so the fill is recognisable
    y = augment_real(x, "translate", generator=_gen(2))
    moved = 0
    for i in range(32):
        found = None
        for dy in range(-2, 3):  # 1/8 of 16 px
            for dx in range(-2, 3):
                shifted = torch.roll(x[i], shifts=(-dy, -dx), dims=(-2, -1))
                rows = slice(max(0, -dy), 16 - max(0, dy))
                cols = slice(max(0, -dx), 16 - max(0, dx))
                if torch.equal(y[i][:, rows, cols], shifted[:, rows, cols]):
                    found = (dy, dx)
        assert found is not None
        border = torch.ones(16, 16, dtype=torch.bool)
        border[max(0, -found[0]):16 - max(0, found[0]), max(0, -found[1]):16 - max(0, found[1])] = False
        assert torch.all(y[i][0][border] == -1)
        moved += found != (0, 0)
    assert moved > 16


def _first_d_input(model, name: str, real: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = model.networks[name].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        torch.manual_seed(0)
        model.train_step({"image": real}, 0)
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("kind", ["dcgan", "wgan"])
def test_baselines_augment_real_batches_only_when_asked(kind):
    real = torch.rand(10, 1, 32, 32) * 2 - 1
    original = real.clone()

    def build(augment: str):
        if kind == "dcgan":
            return DCGAN(DCGANConfig(ngf=4, ndf=4, augment=augment), 32, 1), "discriminator"
        return WGANGP(WGANConfig(ngf=4, ndf=4, n_critic=1, augment=augment), 32, 1), "critic"

    model, d = build("")
    assert torch.equal(_first_d_input(model, d, real), real)  # off: D sees the real batch as it is
    model, d = build("flip,translate")
    seen = _first_d_input(model, d, real)
    assert seen.shape == real.shape and not torch.equal(seen, real)
    assert torch.equal(real, original)  # the batch itself is never modified in place


def test_unknown_augmentation_is_bad_input():
    with pytest.raises(InputError, match="zoom"):
        DCGAN(DCGANConfig(ngf=4, ndf=4, augment="flip,zoom"), 32, 1)
