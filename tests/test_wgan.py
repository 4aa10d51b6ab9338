"""The wgan plugin: WGAN-GP's critic, penalty, n_critic schedule and sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.nn.gradient_penalty import gradient_penalty
from medsyn_cli.registry import get_model
from medsyn_cli.gan.dcgan_nets import Discriminator, Generator
from medsyn_plugins.wgan import WGANConfig
from medsyn_plugins.wgan.model import WGANGP
from test_dcgan import load_covid_images


def tiny(res: int = 32, **overrides) -> WGANGP:
    return WGANGP(WGANConfig(**{"ngf": 8, "ndf": 8, **overrides}), res, 1)


def weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def count_steps(model: WGANGP) -> dict[str, int]:
    steps = {name: 0 for name in model.optimizers}
    for name, opt in model.optimizers.items():
        opt.register_step_post_hook(lambda *a, _n=name: steps.__setitem__(_n, steps[_n] + 1))
    return steps


@pytest.mark.parametrize("res", [64, 128, 256])
def test_shapes_at_each_resolution(res):
    model = WGANGP(WGANConfig(ngf=4, ndf=4), res, 1)
    img = model.networks["generator"](torch.randn(2, 100, 1, 1))
    assert img.shape == (2, 1, res, res)
    assert model.networks["critic"](img).shape == (2,)
    assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, res, res)


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_critic_has_no_batch_norm(norm):
    model = tiny(critic_norm=norm)
    critic = model.networks["critic"]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    n_layer_norms = sum(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in critic.modules())
    assert n_layer_norms == (2 if norm == "layer" else 0)  # every block but the first (3 blocks at 32)
    for m in critic.modules():  # layer norm starts as the identity map, as in the paper's code
        if isinstance(m, nn.GroupNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    # A critic output depends on its own image only: the per-sample penalty needs this.
    x = torch.randn(4, 1, 32, 32)
    assert torch.allclose(critic(x)[:2], critic(x[:2]), atol=1e-5)
    # The generator is DCGAN's, batch norm included.
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.networks["generator"].modules())


def test_batch_norm_critic_is_refused():
    with pytest.raises(ValueError, match="critic_norm"):
        tiny(critic_norm="batch")


def test_defaults_are_the_papers():
    config = WGANConfig()
    assert (config.gp_weight, config.n_critic, config.lr, config.beta1, config.beta2) == (10.0, 5, 1e-4, 0.5, 0.9)
    model = WGANGP(config, 64, 1)
    for opt in model.optimizers.values():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["betas"] == (0.5, 0.9)
    model = WGANGP(build_config(WGANConfig, {"beta1": "0"}), 64, 1)
    assert model.optimizers["critic"].param_groups[0]["betas"] == (0.0, 0.9)
    with pytest.raises(InputError):
        build_config(WGANConfig, {"n_critic": "five"})


class LinearCritic(nn.Module):
    """f(x) = sum(w * x): its gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


@pytest.mark.parametrize("norm, penalty", [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic(norm, penalty):
    w = torch.randn(1, 1, 8, 8)
    critic = LinearCritic(w / w.norm() * norm)
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(penalty, abs=1e-5)


def test_n_critic_critic_steps_per_generator_step():
    model = tiny(n_critic=5)
    steps = count_steps(model)
    model.train_step({"image": torch.rand(10, 1, 32, 32) * 2 - 1}, step=0)
    assert steps == {"critic": 5, "generator": 1}
    model = tiny(n_critic=3)
    steps = count_steps(model)
    model.train_step({"image": torch.rand(2, 1, 32, 32) * 2 - 1}, step=0)  # fewer images than n_critic
    assert steps == {"critic": 3, "generator": 1}


def test_each_critic_update_sees_its_own_slice_of_the_batch():
    model = tiny(n_critic=5)
    real = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 1, 32, 32)
    slices = model.critic_batches(real)
    assert [s.shape[0] for s in slices] == [2] * 5
    assert torch.equal(torch.cat(slices), real)  # every real image exactly once
    assert all(s.shape[0] == 3 for s in tiny(n_critic=5).critic_batches(real[:3]))  # too few: reused whole


def test_diffaugment_transforms_what_the_critic_sees_in_both_updates(monkeypatch):
    import medsyn_plugins.wgan.model as module
    from conftest import spy_diff_augment

    calls = spy_diff_augment(monkeypatch, module)
    torch.manual_seed(0)
    losses = tiny(n_critic=2, diffaugment="translation").train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, 0)
    assert all(math.isfinite(float(v)) for v in losses.values())
    # Each critic update augments its real slice and its fakes; the generator update its fakes, with a graph.
    assert calls == [(2, False, "translation")] * 4 + [(2, True, "translation")]
    calls.clear()
    tiny(n_critic=2).train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, 0)
    assert calls == []  # off in the paper's recipe


def test_train_step_updates_both_networks_and_returns_finite_losses():
    torch.manual_seed(0)
    model = tiny()
    before = {k: weights(v) for k, v in model.networks.items()}
    losses = model.train_step({"image": torch.rand(10, 1, 32, 32) * 2 - 1}, step=0)
    assert set(losses) >= {"loss_critic", "wasserstein", "gp", "loss_g"}
    # Detached 0-d tensors, not floats: the trainer reads them on the host only at log steps.
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad and math.isfinite(v)
               for v in losses.values())
    assert losses["gp"] >= 0
    for name, net in model.networks.items():
        assert any(not torch.equal(v, before[name][k]) for k, v in weights(net).items()), f"{name} unchanged"
    assert all(p.requires_grad for p in model.networks["critic"].parameters())


def test_gradient_penalty_enters_the_critic_loss():
    """With lambda = 0 the critic's update differs: the penalty really is part of its loss."""
    results = []
    for gp_weight in (10.0, 0.0):
        torch.manual_seed(0)
        model = tiny(gp_weight=gp_weight, n_critic=1)
        torch.manual_seed(1)
        losses = {k: float(v) for k, v in model.train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, step=0).items()}
        assert losses["loss_critic"] == pytest.approx(-losses["wasserstein"] + gp_weight * losses.get("gp", 0.0),
                                                      rel=1e-4)
        assert ("gp" in losses) == (gp_weight > 0)  # with lambda = 0 no penalty is taken, so none is logged
        results.append(weights(model.networks["critic"]))
    assert any(not torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_train_step_randomness_comes_from_the_global_rng():
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = tiny(n_critic=2)
        torch.manual_seed(5)
        model.train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, step=0)
        results.append(weights(model.networks["generator"]) | weights(model.networks["critic"]))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_sampling_is_deterministic_by_seed():
    model = tiny()
    a = model.sample(4, torch.Generator().manual_seed(3))
    torch.manual_seed(42)
    b = model.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, model.sample(4, torch.Generator().manual_seed(4)))


def test_registered_with_alias_and_flops():
    spec = get_model("wgan-gp")
    assert spec.name == "wgan" and spec.task == "unconditional"
    model = spec.factory(build_config(spec.config_cls, {"critic_norm": "none"}), 64, 1)
    assert isinstance(model, WGANGP) and model.inference_networks == ("generator",)
    flops = model.flops_per_image()
    # Same convolutions as DCGAN's at 64x64 (biases and norms are not multiply-adds of a matmul).
    dcgan = get_model("dcgan").factory(get_model("dcgan").config_cls(), 64, 1).flops_per_image()
    assert flops == {"generator": dcgan["generator"], "critic": dcgan["discriminator"]}


@pytest.mark.realdata
def test_a_few_steps_on_real_ct(shared_data):
    real = load_covid_images(shared_data, n=16, res=32)
    torch.manual_seed(0)
    model = tiny(ngf=16, ndf=16)
    history = [model.train_step({"image": real}, step) for step in range(4)]
    assert all(math.isfinite(v) for h in history for v in h.values())
    # The critic learns to score real CT above the untrained generator's output: W estimate grows.
    assert history[-1]["wasserstein"] > history[0]["wasserstein"] + 0.2
    assert history[-1]["wasserstein"] > 0
    assert all(h["gp"] < 1.0 for h in history)  # the penalty keeps the critic near 1-Lipschitz


def test_generator_and_critic_are_dcgans_shapes():
    """The WGAN-GP networks are DCGAN's with the critic's norm swapped: same conv stack."""
    model = tiny()
    dcgan_d = Discriminator(1, 32, 8, norm="batch")
    shapes = [m.weight.shape for m in model.networks["critic"].modules() if isinstance(m, nn.Conv2d)]
    assert shapes == [m.weight.shape for m in dcgan_d.modules() if isinstance(m, nn.Conv2d)]
    g = Generator(100, 1, 32, 8)
    assert [p.shape for p in model.networks["generator"].parameters()] == [p.shape for p in g.parameters()]
