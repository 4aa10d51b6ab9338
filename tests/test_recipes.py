"""`medsyn train --recipe`: named bundles of model settings (dcgan's `fast`), and the dcgan settings of
later practice they turn on (hinge loss, spectral norm, two learning rates, DiffAugment, EMA)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn.utils import parametrize

from conftest import run_cli
from medsyn_cli.errors import InputError
from medsyn_cli.nn.losses import hinge_discriminator, hinge_generator
from medsyn_cli.registry import ModelSpec, get_model
from medsyn_plugins.dcgan import FAST_RECIPE, DCGANConfig
from medsyn_plugins.dcgan.model import DCGAN


def test_recipe_lookup_and_bad_recipes_are_refused():
    spec = get_model("dcgan")
    assert spec.recipe("paper") == {}
    assert spec.recipe("fast") == FAST_RECIPE
    assert spec.as_dict()["recipes"]["fast"]["loss"] == "hinge"
    with pytest.raises(InputError, match="no recipe 'nope'"):
        spec.recipe("nope")
    kw = dict(name="x", task="unconditional", config_cls=DCGANConfig, factory=DCGAN, summary="", citation="")
    with pytest.raises(ValueError, match="unknown"):
        ModelSpec(**kw, recipes={"fast": {"no_such_setting": 1}})
    with pytest.raises(ValueError, match="paper"):
        ModelSpec(**kw, recipes={"paper": {"lr": 1e-3}})


def test_a_recipe_may_give_its_default_batch_size():
    kw = dict(name="x", task="unconditional", config_cls=DCGANConfig, factory=DCGAN, summary="", citation="",
              default_batch_size=64)
    spec = ModelSpec(**kw, recipes={"small": {"lr": 1e-3, "batch_size": 16}, "plain": {"lr": 1e-3}})
    assert spec.recipe("small") == {"lr": 1e-3}  # model settings only: batch_size is the trainer's
    assert [spec.recipe_batch_size(r) for r in ("paper", "small", "plain")] == [64, 16, 64]
    assert spec.as_dict()["recipes"]["small"]["batch_size"] == 16  # `medsyn models --json` shows it
    with pytest.raises(InputError, match="no recipe"):
        spec.recipe_batch_size("nope")
    for bad in (0, -2, 2.5, True, "16"):
        with pytest.raises(ValueError, match="batch_size"):
            ModelSpec(**kw, recipes={"small": {"batch_size": bad}})


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    # relu(1 - real) = [0, .5, 2] -> mean 5/6; relu(1 + fake) = [0, 1, 2] -> mean 1
    assert hinge_discriminator(real, fake).item() == pytest.approx(5 / 6 + 1)
    assert hinge_generator(fake).item() == pytest.approx(1 / 3)


def test_fast_dcgan_is_built_as_its_settings_say():
    model = DCGAN(DCGANConfig(ngf=8, ndf=8, **FAST_RECIPE), 64, 1)
    D = model.networks["discriminator"]
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    assert model.optimizers["generator"].param_groups[0]["lr"] == 1e-4
    assert model.optimizers["discriminator"].param_groups[0]["lr"] == 4e-4
    assert model.optimizers["generator"].param_groups[0]["betas"] == (0.0, 0.9)
    assert model.wants_ema
    paper = DCGAN(DCGANConfig(ngf=8, ndf=8), 64, 1)
    assert not paper.wants_ema
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in paper.networks["discriminator"].modules())
    # one step of each trains and gives finite losses
    batch = {"image": torch.rand(4, 1, 64, 64) * 2 - 1}
    for m in (model, paper):
        losses = m.train_step(batch, 0)
        assert all(torch.isfinite(torch.as_tensor(float(v))) for v in losses.values())


def test_diffaugment_reaches_the_discriminator(monkeypatch):
    import medsyn_plugins.dcgan.model as mod

    calls = []
    real_aug = mod.diff_augment
    monkeypatch.setattr(mod, "diff_augment", lambda x, policy: calls.append(policy) or real_aug(x, policy))
    model = DCGAN(DCGANConfig(ngf=8, ndf=8, diffaugment="translation,cutout"), 64, 1)
    model.train_step({"image": torch.rand(4, 1, 64, 64) * 2 - 1}, 0)
    assert calls == ["translation,cutout"] * 3  # real and fake in D's update, fake in G's
    calls.clear()
    DCGAN(DCGANConfig(ngf=8, ndf=8), 64, 1).train_step({"image": torch.rand(4, 1, 64, 64) * 2 - 1}, 0)
    assert calls == []


def test_train_recipe_flag_records_applies_and_is_fixed_on_resume(tmp_path):
    out = tmp_path / "run"
    dry = run_cli("train", "dcgan", "--recipe", "fast", "--set", "ema=false", "--dry-run", "--out", out)
    assert dry.returncode == 0, dry.stderr
    cfg = json.loads(dry.stdout)
    assert cfg["recipe"] == "fast"
    assert cfg["model_config"]["loss"] == "hinge" and cfg["model_config"]["ema"] is False  # --set wins
    bad = run_cli("train", "dcgan", "--recipe", "nope", "--dry-run", "--out", out)
    assert bad.returncode == 2 and "no recipe 'nope'" in bad.stderr

    args = ("train", "dcgan", "--recipe", "fast", "--out", out, "--batch-size", "4", "--set", "ngf=8",
            "--set", "ndf=8", "--checkpoint-every", "2", "--log-every", "1")
    first = run_cli(*args, "--steps", "2")
    assert first.returncode == 0, first.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "fast" and config["model_config"]["spectral_norm"] is True
    from safetensors import safe_open

    with safe_open(str(out / "weights.safetensors"), framework="pt") as fh:
        assert fh.metadata()["ema"] == "true"  # the fast recipe samples from the generator's average
    changed = run_cli("train", "dcgan", "--out", out, "--resume", "--steps", "3", "--recipe", "paper")
    assert changed.returncode == 2 and "--recipe fast" in changed.stderr
    again = run_cli("train", "dcgan", "--out", out, "--resume", "--steps", "3")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "config.json").read_text())["recipe"] == "fast"
