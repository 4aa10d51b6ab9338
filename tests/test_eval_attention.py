"""`medsyn eval attention`: Dice of a translation model's attention maps with the true tumor masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medsyn_cli.data.types import ImageSet
from medsyn_cli.metrics.attention import attention_dice, case_of, dice, soft_dice


def test_dice_of_known_masks():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 pixels
    b[:2, :] = True  # 8 pixels, 4 shared
    assert dice(a, b) == pytest.approx(2 * 4 / 12)
    assert dice(a, a) == 1.0 and dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert soft_dice(a.astype(float) * 0.5, a) == pytest.approx(2 * 2 / (2 + 4))
    assert case_of("Brats18_CBICA_AAB_1_z077.png") == "Brats18_CBICA_AAB_1"


class AttendsToBrightPixels:
    """A stand-in translator whose attention is exactly the pixels above 0 (optionally shifted)."""

    task, device = "translation", torch.device("cpu")

    def __init__(self, shift: int = 0):
        self.shift = shift

    def translate(self, x, to):
        att = (x > 0).float().roll(self.shift, dims=-1)
        return x, att


def _tumors() -> ImageSet:
    images = -torch.ones(3, 1, 8, 8)
    images[:, :, 2:6, 2:4] = 1.0  # an 8-pixel "tumor" in each
    masks = (images > 0).float()
    return ImageSet(images, [f"caseA_z{i:03d}.png" for i in range(2)] + ["caseB_z000.png"], masks=masks,
                    has_mask=torch.tensor([True, True, False]))


def test_attention_on_the_tumor_scores_one_and_a_shifted_one_less():
    perfect = attention_dice(AttendsToBrightPixels(), _tumors())
    assert perfect["dice_mean"] == 1.0 and perfect["slices"] == 2  # the unlabelled slice is not scored
    assert list(perfect["per_case"]) == ["caseA"]
    shifted = attention_dice(AttendsToBrightPixels(shift=1), _tumors())
    assert shifted["dice_mean"] == pytest.approx(2 * 4 / 16)  # half the tumor columns still covered


def test_cli_scores_a_tiny_sag_gan_on_phantom_masks(cli, tmp_path):
    from tiny_translator import tiny_run

    run = tiny_run(tmp_path / "run", res=32)
    data = tmp_path / "ph"
    assert cli("data", "phantom", "--kind", "brain", "--n", 4, "--res", 32, "--out", data).returncode == 0
    proc = cli("eval", "attention", run, "--data", data, "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["slices"] == 4 and 0.0 <= result["dice_mean"] <= 1.0 and result["model"] == "sag-gan"
    unconditional = cli("eval", "attention", run, "--data", data, "--weights", "best")
    assert unconditional.returncode == 2 and "best.safetensors" in unconditional.stderr
