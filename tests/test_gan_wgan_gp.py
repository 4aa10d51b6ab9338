"""medsyn_cli.gan.wgan_gp: the shared WGAN-GP critic and generator updates."""

from __future__ import annotations

import torch
from torch import nn

from medsyn_cli.gan.wgan_gp import critic_step, generator_step
from medsyn_cli.model import GANModel
from medsyn_cli.nn.gradient_penalty import gradient_penalty


def toy_model() -> GANModel:
    torch.manual_seed(0)
    model = GANModel(None, 4, 1)
    model.networks = {"generator": nn.Linear(3, 4), "critic": nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))}
    model.optimizers = {k: torch.optim.SGD(v.parameters(), lr=0.1) for k, v in model.networks.items()}
    return model


def params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_critic_step_updates_only_the_critic_with_the_wgan_gp_loss():
    model = toy_model()
    G, C = model.networks["generator"], model.networks["critic"]
    real, z = torch.randn(6, 4), torch.randn(6, 3)
    g_before, c_before = params(G), params(C)
    # The same figures computed by hand, with the same penalty interpolates (same RNG state).
    state = torch.get_rng_state()
    with torch.no_grad():
        fake = G(z)
        w = C(real).mean() - C(fake).mean()
    gp = gradient_penalty(C, real, fake)
    torch.set_rng_state(state)
    out = critic_step(model, real, z, gp_weight=10.0)
    assert torch.allclose(out.wasserstein, w) and torch.allclose(out.gp, gp)
    assert torch.allclose(out.loss, -w + 10.0 * gp)
    assert all(torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    # Every critic weight moves (the last bias cancels out of E[C(real)] - E[C(fake)] and the penalty).
    assert all(not torch.equal(a, b) for a, b in zip(c_before, C.parameters()) if b.dim() > 1)
    assert not out.loss.requires_grad


def test_generator_step_updates_only_the_generator_and_unfreezes_the_critic():
    model = toy_model()
    G, C = model.networks["generator"], model.networks["critic"]
    z = torch.randn(6, 3)
    with torch.no_grad():
        expected = -C(G(z)).mean()
    g_before, c_before = params(G), params(C)
    loss = generator_step(model, z)
    assert torch.allclose(loss, expected)
    assert all(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(c_before, C.parameters()))
    assert all(p.requires_grad and p.grad is None for p in C.parameters())  # no critic grads were kept


def test_hinge_objective_without_penalty_is_the_sngan_critic_loss_and_skips_the_penalty():
    import pytest

    model = toy_model()
    G, C = model.networks["generator"], model.networks["critic"]
    real, z = torch.randn(6, 4), torch.randn(6, 3)
    with torch.no_grad():
        s_real, s_fake = C(real), C(G(z))
    hinge = torch.relu(1 - s_real).mean() + torch.relu(1 + s_fake).mean()
    state = torch.get_rng_state()
    out = critic_step(model, real, z, gp_weight=0.0, objective="hinge")
    assert torch.equal(torch.get_rng_state(), state)  # no interpolates drawn: the penalty is off
    assert out.gp is None and out.grad_norm is None
    assert torch.allclose(out.loss, hinge) and torch.allclose(out.wasserstein, s_real.mean() - s_fake.mean())
    # With a penalty weight the hinge loss gains the same penalty WGAN-GP's loss does.
    model = toy_model()
    state = torch.get_rng_state()
    with torch.no_grad():
        fake = model.networks["generator"](z)
    gp = gradient_penalty(model.networks["critic"], real, fake)
    torch.set_rng_state(state)
    out = critic_step(model, real, z, gp_weight=10.0, objective="hinge")
    assert torch.allclose(out.loss, hinge + 10.0 * gp)
    with pytest.raises(ValueError, match="objective must be one of"):
        critic_step(model, real, z, gp_weight=0.0, objective="bce")
