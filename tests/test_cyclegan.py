"""CycleGAN (Zhu et al. 2017) as the reference code builds and trains it."""

import io

import pytest
import torch
from torch import nn

from medsyn_cli.config import build_config
from medsyn_cli.registry import get_model
from medsyn_cli.gan.networks import PatchDiscriminator, ResnetBlock


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest

TINY = {"ngf": "8", "ndf": "8"}


def build(res: int = 32, channels: int = 1, **overrides):
    spec = get_model("cyclegan")
    return spec.factory(build_config(spec.config_cls, {**TINY, **overrides}), res, channels)


def batch(res: int = 32, n: int = 2, channels: int = 1) -> dict[str, torch.Tensor]:
    return {"normal": torch.rand(n, channels, res, res) * 2 - 1, "tumor": torch.rand(n, channels, res, res) * 2 - 1,
            "tumor_mask": torch.zeros(n, 1, res, res), "tumor_has_mask": torch.zeros(n, dtype=torch.bool)}


def test_spec_is_a_translation_model_with_the_papers_batch_size():
    spec = get_model("cyclegan")
    assert spec.task == "translation"
    assert spec.default_batch_size == 1
    assert set(spec.resolutions) >= {64, 128, 240, 256}
    cfg = spec.config_cls()
    assert (cfg.ngf, cfg.ndf, cfg.lambda_cycle, cfg.lambda_identity, cfg.pool_size) == (64, 64, 10.0, 0.5, 50)
    assert (cfg.lr, cfg.beta1, cfg.beta2) == (2e-4, 0.5, 0.999)


@pytest.mark.parametrize("res,blocks,patches", [(64, 6, 6), (128, 6, 14), (240, 9, 28), (256, 9, 30)])
def test_every_network_shape_at_each_resolution(res, blocks, patches):
    spec = get_model("cyclegan")
    with torch.device("meta"):  # the default widths, shapes only (nothing is computed)
        model = spec.factory(spec.config_cls(), res, 1).to("meta")
    for name, net in model.networks.items():
        out = net(*model.example_inputs(name, 2))
        expected = (2, 1, res, res) if name.startswith("gen_") else (2, 1, patches, patches)
        assert tuple(out.shape) == expected, name
    gen = model.networks["gen_normal_to_tumor"]
    assert sum(isinstance(m, ResnetBlock) for m in gen.modules()) == blocks


def test_real_forward_at_240_keeps_the_size_and_range():
    model = build(240)
    x = torch.rand(1, 1, 240, 240) * 2 - 1
    y, attention = model.translate(x, to="tumor")
    assert y.shape == x.shape and attention is None
    assert y.abs().max() <= 1.0


def test_generator_uses_reflection_padding_and_instance_norm_only():
    gen = build().networks["gen_normal_to_tumor"]
    kinds = {type(m) for m in gen.modules()}
    assert nn.ReflectionPad2d in kinds and nn.InstanceNorm2d in kinds and nn.Tanh in kinds
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
    norms = [m for m in gen.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert all(not m.affine and not m.track_running_stats for m in norms)


def test_patchgan_receptive_field_is_70_pixels():
    disc = PatchDiscriminator(1, ndf=4, n_layers=3, spectral_norm=True)  # no norm: locality is exact
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    out = disc(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    cols = x.grad[0, 0].abs().sum(dim=0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70 and int(cols.max() - cols.min() + 1) == 70


def test_weights_initialised_from_n0_002_with_zero_bias():
    torch.manual_seed(0)
    model = build(32, ngf="64", ndf="64")
    convs = [m for net in model.networks.values() for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    big = max(convs, key=lambda m: m.weight.numel())
    assert abs(float(big.weight.detach().std()) - 0.02) < 0.001
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in convs if m.bias is not None)


def test_step_order_generators_with_frozen_discriminators_then_discriminators():
    model = build()
    calls = []
    original = model.optimize

    def spy(name, loss, **kw):
        frozen = not any(p.requires_grad for k in ("disc_tumor", "disc_normal")
                         for p in model.networks[k].parameters())
        calls.append((name, frozen))
        return original(name, loss, **kw)

    model.optimize = spy
    before = {k: [p.detach().clone() for p in v.parameters()] for k, v in model.networks.items()}
    losses = model.train_step(batch(), 0)
    assert calls == [("generators", True), ("discriminators", False)]
    for k, net in model.networks.items():  # every network moved
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), k
    assert {"g_nt", "g_tn", "cycle_normal", "cycle_tumor", "idt_tumor", "idt_normal", "d_tumor", "d_normal"} <= set(losses)
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in losses.values())


def test_identity_loss_weight_is_half_lambda_and_can_be_turned_off():
    torch.manual_seed(0)
    model = build()
    b = batch()
    g = model.networks["gen_normal_to_tumor"]
    with torch.no_grad():
        expected = float(torch.nn.functional.l1_loss(g(b["tumor"]), b["tumor"])) * 10 * 0.5
    assert model.train_step(b, 0)["idt_tumor"] == pytest.approx(expected, rel=1e-5)
    assert "idt_tumor" not in build(lambda_identity="0").train_step(batch(), 0)


def test_learning_rate_constant_then_linear_decay_and_resumed_from_state():
    model = build(n_epochs="3", n_epochs_decay="2")
    lrs = []
    for epoch in range(6):
        lrs.append(model.optimizers["generators"].param_groups[0]["lr"])
        model.on_epoch_end(epoch)
    base = 2e-4
    assert lrs == pytest.approx([base, base, base, base * 2 / 3, base / 3, 0.0])
    assert model.optimizers["discriminators"].param_groups[0]["lr"] == pytest.approx(0.0)

    fresh = build(n_epochs="3", n_epochs_decay="2")
    model2 = build(n_epochs="3", n_epochs_decay="2")
    model2.on_epoch_end(0)
    model2.on_epoch_end(1)
    model2.on_epoch_end(2)
    fresh.load_state_dict(model2.state_dict())
    assert fresh.optimizers["generators"].param_groups[0]["lr"] == pytest.approx(base * 2 / 3)


def _roundtrip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_resume_from_state_and_rng_repeats_the_uninterrupted_run_exactly():
    torch.manual_seed(0)
    batches = [batch() for _ in range(4)]
    torch.manual_seed(1)
    model = build(pool_size="2")
    for s in range(2):
        model.train_step(batches[s], s)
    state, rng = _roundtrip(model.state_dict()), torch.get_rng_state()
    straight = [model.train_step(batches[s], s) for s in (2, 3)]

    resumed = build(pool_size="2")
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    again = [resumed.train_step(batches[s], s) for s in (2, 3)]
    assert straight == again


def test_translate_directions_and_bad_direction():
    model = build()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    to_t, _ = model.translate(x, to="tumor")
    to_n, _ = model.translate(x, to="normal")
    assert not torch.equal(to_t, to_n)  # two different generators
    with pytest.raises(ValueError):
        model.translate(x, to="sideways")
    assert model.inference_networks == ("gen_normal_to_tumor", "gen_tumor_to_normal")


def test_spectral_norm_switch_gives_the_sag_gan_papers_baseline():
    """CycleGAN + SN (the SAG-GAN paper's baseline): off by default (Zhu et al.), every D conv wrapped when on."""
    from torch.nn.utils import parametrize

    assert get_model("cyclegan").config_cls().spectral_norm is False
    for flag in (False, True):
        model = build(spectral_norm=str(flag))
        for name in ("disc_tumor", "disc_normal"):
            convs = [m for m in model.networks[name].modules() if isinstance(m, nn.Conv2d)]
            assert all(parametrize.is_parametrized(c, "weight") == flag for c in convs)
        gen_convs = [m for m in model.networks["gen_normal_to_tumor"].modules() if isinstance(m, nn.Conv2d)]
        assert not any(parametrize.is_parametrized(c, "weight") for c in gen_convs)  # generators never
    losses = build(spectral_norm="true").train_step(batch(), 0)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())


def test_cyclegan_and_sag_gan_import_neither_each_other_nor_another_model():
    """DESIGN.md: a plugin imports only its own package and medsyn_cli (what they share: medsyn_cli.gan)."""
    import ast
    from pathlib import Path

    plugins = Path(__file__).resolve().parents[1] / "plugins"
    for package in (plugins / "cyclegan", plugins / "sag_gan"):
        for source in package.rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    if name.startswith("medsyn_plugins."):
                        assert name.split(".")[1] == package.name, f"{source.name} imports {name}"
