"""The dcgan plugin: the PyTorch example's architecture, initialisation, update order and sampling."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_cli
from medsyn_cli.config import build_config
from medsyn_cli.registry import get_model
from medsyn_plugins.dcgan import DCGANConfig
from medsyn_plugins.dcgan.model import DCGAN
from medsyn_cli.gan.dcgan_nets import Discriminator, Generator


def load_covid_images(data_root: Path, n: int = 16, res: int = 32) -> torch.Tensor:
    """``n`` real chest-CT slices as a grey (n, 1, res, res) batch in [-1, 1], read with PIL directly."""
    from PIL import Image

    folder = data_root / "covid-ct-noncovid"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
    images = []
    for path in files:
        with Image.open(path) as im:
            grey = im.convert("L").resize((res, res), Image.Resampling.LANCZOS)
        images.append(torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8).view(1, res, res))
    return torch.stack(images).float() / 127.5 - 1.0


def tiny(res: int = 32, channels: int = 1, **overrides) -> DCGAN:
    config = DCGANConfig(**{"ngf": 8, "ndf": 8, **overrides})
    return DCGAN(config, res, channels)


def weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("res", [64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_each_resolution(res, channels):
    G = Generator(latent_dim=100, channels=channels, res=res, ngf=4)
    D = Discriminator(channels=channels, res=res, ndf=4)
    img = G(torch.randn(2, 100, 1, 1))
    assert img.shape == (2, channels, res, res)
    assert img.abs().max() <= 1.0  # Tanh output
    assert D(img).shape == (2,)
    # One stride-2 block per doubling: 4 at 64, 5 at 128, 6 at 256.
    n_up = sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    n_down = sum(isinstance(m, nn.Conv2d) for m in D.modules())
    assert n_up == n_down == int(math.log2(res)) - 1


def test_64_is_the_pytorch_example():
    """Layer by layer the example's netG/netD for nc=1, nz=100, ngf=ndf=64 (no biases, as there)."""
    G, D = Generator(100, 1, 64, 64), Discriminator(1, 64, 64, norm="batch")
    convs_g = [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
               for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert convs_g == [(100, 512, (4, 4), (1, 1), (0, 0)), (512, 256, (4, 4), (2, 2), (1, 1)),
                       (256, 128, (4, 4), (2, 2), (1, 1)), (128, 64, (4, 4), (2, 2), (1, 1)),
                       (64, 1, (4, 4), (2, 2), (1, 1))]
    convs_d = [(m.in_channels, m.out_channels, m.stride) for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs_d == [(1, 64, (2, 2)), (64, 128, (2, 2)), (128, 256, (2, 2)), (256, 512, (2, 2)), (512, 1, (1, 1))]
    assert sum(p.numel() for p in G.parameters()) == 3_574_656
    assert sum(p.numel() for p in D.parameters()) == 2_763_520
    # BatchNorm after every D conv but the first and the last; LeakyReLU slope 0.2; no Sigmoid (logits).
    layers = list(D.main)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, nn.LeakyReLU))
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert isinstance(list(G.main)[-1], nn.Tanh)


def test_init_statistics():
    torch.manual_seed(0)
    model = DCGAN(DCGANConfig(), 64, 1)
    for net in model.networks.values():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
                assert abs(m.weight.mean().item()) < 2e-3
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.05)
            if isinstance(m, nn.BatchNorm2d) and m.num_features >= 256:
                assert m.weight.mean().item() == pytest.approx(1.0, abs=5e-3)
                assert m.weight.std().item() == pytest.approx(0.02, rel=0.25)
                assert torch.all(m.bias == 0)


def test_optimizers_are_the_papers_adam():
    model = DCGAN(DCGANConfig(), 64, 1)
    for opt in model.optimizers.values():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["lr"] == 2e-4 and opt.param_groups[0]["betas"] == (0.5, 0.999)
    model = DCGAN(build_config(DCGANConfig, {"lr": "1e-3", "beta1": "0.9"}), 64, 1)
    assert model.optimizers["generator"].param_groups[0]["betas"] == (0.9, 0.999)
    assert model.optimizers["discriminator"].param_groups[0]["lr"] == 1e-3


def test_train_step_updates_both_networks_and_returns_finite_losses():
    torch.manual_seed(0)
    model = tiny()
    before = {k: weights(v) for k, v in model.networks.items()}
    entered = []

    class Counting:
        def __enter__(self):
            entered.append(1)

        def __exit__(self, *exc):
            return False

    model.autocast = Counting
    losses = model.train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, step=0)
    assert set(losses) >= {"loss_d", "loss_g", "d_real", "d_fake"}
    # Detached 0-d tensors, not floats: the trainer reads them on the host only at log steps.
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad and math.isfinite(v)
               for v in losses.values())
    assert entered, "forward passes must run inside self.autocast()"
    for name, net in model.networks.items():
        changed = [k for k, v in weights(net).items() if not torch.equal(v, before[name][k])]
        assert any(k.endswith("weight") for k in changed), f"{name} was not updated"
    # The discriminator is trainable again after the generator's update froze it.
    assert all(p.requires_grad for p in model.networks["discriminator"].parameters())


def test_one_step_per_optimizer_and_through_optimize():
    model = tiny()
    steps = {"generator": 0, "discriminator": 0}
    for name, opt in model.optimizers.items():
        opt.register_step_post_hook(lambda *a, _n=name: steps.__setitem__(_n, steps[_n] + 1))
    synced = []
    model.grad_sync = lambda params: synced.append(len(list(params)))
    model.train_step({"image": torch.rand(2, 1, 32, 32) * 2 - 1}, step=0)
    assert steps == {"generator": 1, "discriminator": 1}
    assert len(synced) == 2  # the trainer's DDP hook runs before each optimizer step


def test_train_step_randomness_comes_from_the_global_rng():
    """Same seed, same start -> bit-identical weights: what exact resume relies on."""
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = tiny()
        batch = {"image": torch.rand(4, 1, 32, 32) * 2 - 1}
        torch.manual_seed(123)
        for step in range(2):
            model.train_step(batch, step)
        results.append(weights(model.networks["generator"]))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_sampling_is_deterministic_by_seed_and_side_effect_free():
    torch.manual_seed(0)
    model = tiny()
    model.train_step({"image": torch.rand(4, 1, 32, 32) * 2 - 1}, step=0)
    state = weights(model.networks["generator"])
    rng = torch.get_rng_state()
    a = model.sample(5, torch.Generator().manual_seed(7))
    torch.manual_seed(999)  # the global RNG must not matter
    b = model.sample(5, torch.Generator().manual_seed(7))
    c = model.sample(5, torch.Generator().manual_seed(8))
    assert a.shape == (5, 1, 32, 32) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    # An image does not depend on how many are drawn with it (eval-mode BatchNorm).
    assert torch.allclose(model.sample(2, torch.Generator().manual_seed(7)), a[:2], atol=1e-6)
    # Sampling leaves the BatchNorm statistics, the training mode and (before the reseed) the RNG alone.
    assert all(torch.equal(v, state[k]) for k, v in weights(model.networks["generator"]).items())
    assert model.networks["generator"].training
    torch.set_rng_state(rng)
    model.sample(3, torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), rng)


def test_flops_per_image_counts_every_multiply_add():
    model = DCGAN(DCGANConfig(), 64, 1)
    expected = {}
    for name, net in model.networks.items():
        macs = []
        hooks = [m.register_forward_hook(
            lambda m, inp, out: macs.append(m.weight.numel() * (inp[0] if isinstance(m, nn.ConvTranspose2d)
                                                                else out)[0, 0].numel()))
            for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        x = torch.randn(1, 100, 1, 1) if name == "generator" else torch.randn(1, 1, 64, 64)
        net.eval()(x)
        for h in hooks:
            h.remove()
        expected[name] = 2 * sum(macs)
    assert model.flops_per_image() == expected
    assert 0.15e9 < expected["generator"] < 0.3e9


def test_registered_through_the_entry_point():
    spec = get_model("dcgan")
    assert spec.task == "unconditional" and spec.resolutions == (64, 128, 256)
    model = spec.factory(build_config(spec.config_cls, {"ngf": "8", "ndf": "8"}), 64, 1)
    assert isinstance(model, DCGAN) and model.inference_networks == ("generator",)
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert models["dcgan"]["config"] == {"latent_dim": 100, "ngf": 64, "ndf": 64, "lr": 2e-4,
                                         "beta1": 0.5, "beta2": 0.999, "augment": "",
                                         # later practice, off by default (the paper recipe)
                                         "loss": "bce", "spectral_norm": False, "d_norm": "batch",
                                         "lr_g": None, "lr_d": None, "diffaugment": "", "ema": False}
    assert "wgan" in models and models["wgan"]["config"]["n_critic"] == 5


def test_entry_point_module_does_not_import_torch():
    code = "import sys, medsyn_plugins.dcgan, medsyn_plugins.wgan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.realdata
def test_a_few_steps_on_real_ct(shared_data):
    real = load_covid_images(shared_data, n=16, res=32)
    assert real.shape == (16, 1, 32, 32) and real.min() >= -1 and real.max() <= 1 and real.std() > 0.1
    torch.manual_seed(0)
    model = tiny()
    history = [model.train_step({"image": real}, step) for step in range(4)]
    assert all(math.isfinite(v) for h in history for v in h.values())
    # The discriminator learns to tell real CT from the untrained generator's output.
    assert history[-1]["loss_d"] < history[0]["loss_d"]
    assert history[-1]["d_real"] > history[-1]["d_fake"]
    assert model.sample(4, torch.Generator().manual_seed(0)).shape == (4, 1, 32, 32)
