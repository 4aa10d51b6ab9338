"""SAG-GAN (Qi et al.): attention-guided, mask-supervised CycleGAN, with every ablation switch."""

import io
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.nn.squeeze_excitation import AMSEResidualBlock
from medsyn_cli.registry import get_model
from medsyn_cli.gan.networks import ResnetBlock
from medsyn_plugins.sag_gan.model import masked_l1
from medsyn_plugins.sag_gan.networks import AttentionGuidedDiscriminator, attention_compose


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest

TINY = {"ngf": "8", "ndf": "8", "attention_ngf": "4", "se_reduction": "4"}

#: Switch combinations (medsyn's own ablations; the paper has no ablation table), docs/models/sag-gan.md.
ABLATIONS = {
    "sag-gan": {},
    "cyclegan+sn": {"attention": "false", "attention_in_d": "false", "mask_supervision": "false", "amse": "false"},
    "unsupervised-attention": {"mask_supervision": "false", "amse": "false"},
    "no-amse": {"amse": "false"},
    "no-sn": {"spectral_norm": "false"},
    "no-attention-in-d": {"attention_in_d": "false"},
    "no-mask": {"mask_supervision": "false"},
    "no-cycle-adversarial": {"cycle_adversarial": "false"},
    "lsgan": {"gan_loss": "lsgan"},
}


def build(res: int = 32, channels: int = 1, **overrides):
    spec = get_model("sag-gan")
    return spec.factory(build_config(spec.config_cls, {**TINY, **overrides}), res, channels)


def batch(res: int = 32, n: int = 2, has_mask=(True, False)) -> dict[str, torch.Tensor]:
    mask = torch.zeros(n, 1, res, res)
    mask[:, :, res // 4: res // 2, res // 4: res // 2] = 1
    return {"normal": torch.rand(n, 1, res, res) * 2 - 1, "tumor": torch.rand(n, 1, res, res) * 2 - 1,
            "tumor_mask": mask, "tumor_has_mask": torch.tensor(has_mask)}


def _force_attention(model, value: float) -> None:
    """Make both attention maps exactly ``value`` (0 or 1): zero weights, a saturating bias."""
    for name in ("attn_normal", "attn_tumor"):
        last = [m for m in model.networks[name].modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(1000.0 if value == 1 else -1000.0)


def test_spec_names_aliases_and_defaults():
    for name in ("sag-gan", "sag_gan", "saggan", "SAG-GAN"):
        assert get_model(name).name == "sag-gan"
    spec = get_model("sag-gan")
    assert spec.task == "translation" and spec.default_batch_size == 1
    cfg = spec.config_cls()
    assert cfg.attention and cfg.attention_in_d and cfg.amse and cfg.spectral_norm and cfg.mask_supervision
    assert (cfg.lambda_gan, cfg.lambda_cycle) == (1.0, 10.0)
    assert cfg.lambda_mask == 1.0  # Eq. 9 adds L_M without a weight
    assert cfg.gan_loss == "bce" and cfg.cycle_adversarial  # Eq. 6-7 log loss; Sec. II cycle fakes judged


def test_dry_run_shows_the_paper_recipe(tmp_path):
    """`medsyn train sag-gan --dry-run` prints the recipe: Eq. 9's weights, the log loss, and the
    optimizer and batch size medsyn fills in (CycleGAN's; the paper gives none)."""
    import json

    from conftest import run_cli

    proc = run_cli("train", "sag-gan", "--data", "phantom:brain", "--out", tmp_path / "r", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    cfg = doc["model_config"]
    assert (cfg["lambda_gan"], cfg["lambda_cycle"], cfg["lambda_mask"]) == (1.0, 10.0, 1.0)
    assert cfg["gan_loss"] == "bce" and cfg["cycle_adversarial"] is True and cfg["spectral_norm"] is True
    assert (cfg["lr"], cfg["beta1"], cfg["beta2"]) == (2e-4, 0.5, 0.999)
    assert doc["training"]["batch_size"] == 1
    assert not (tmp_path / "r").exists()


def _disc_inputs(model) -> dict[str, list[torch.Tensor]]:
    """Record every batch each discriminator is shown (attention applied), in call order."""
    seen: dict[str, list[torch.Tensor]] = {"disc_tumor": [], "disc_normal": []}
    for name in seen:
        def hook(mod, args, out, _name=name):
            x = args[0] if len(args) < 2 or args[1] is None else args[0] * args[1]
            seen[_name].append(x.detach().clone())
        model.networks[name].register_forward_hook(hook)
    return seen


def test_discriminators_judge_the_real_image_through_the_other_domains_map():
    """Eq. 6: D_T sees M_N' * t with M_N' = A_N(n); Eq. 7: D_N sees M_T' * n with M_T' = A_T(t)."""
    torch.manual_seed(0)
    model = build(pool_size="0")
    b = batch()
    with torch.no_grad():
        map_n = model.networks["attn_normal"](b["normal"])
        map_t = model.networks["attn_tumor"](b["tumor"])
    seen = _disc_inputs(model)
    model.train_step(b, 0)
    _, real_t_seen, _ = seen["disc_tumor"]  # G step, then the D step's real and fake batches
    _, real_n_seen, _ = seen["disc_normal"]
    torch.testing.assert_close(real_t_seen, b["tumor"] * map_n)
    torch.testing.assert_close(real_n_seen, b["normal"] * map_t)
    assert not torch.allclose(real_t_seen, b["tumor"] * map_t)  # not its own map (the old behaviour)


@pytest.mark.parametrize("on", [True, False])
def test_cycle_generated_images_get_an_adversarial_loss(on):
    """Sec. II: D_T also judges T_g^g = G_nt-translation of the generated normal image (and D_N N_g^g),
    in the generator step and, through the pool, in the discriminator step."""
    torch.manual_seed(0)
    model = build(pool_size="0", cycle_adversarial=str(on))
    b = batch()
    with torch.no_grad():
        fake_n, _ = model._translate(b["tumor"], "normal")
        rec_t, map_rec = model._translate(fake_n, "tumor")
        fake_t, map_n = model._translate(b["normal"], "tumor")
    seen = _disc_inputs(model)
    model.train_step(b, 0)
    g_step, _, d_fake = seen["disc_tumor"]
    n = b["tumor"].shape[0]
    assert g_step.shape[0] == (2 * n if on else n) and d_fake.shape[0] == g_step.shape[0]
    torch.testing.assert_close(g_step[:n], fake_t * map_n)
    if on:
        torch.testing.assert_close(g_step[n:], rec_t * map_rec)


@pytest.mark.parametrize("kind,g_term,d_term", [("bce", math.log(2), math.log(2)), ("lsgan", 1.0, 0.5)])
def test_adversarial_loss_is_the_log_loss_by_default_and_lsgan_on_request(kind, g_term, d_term):
    """With every discriminator score 0 (logit 0, D = 1/2): the log loss gives -log(1/2) for G and
    for each D term; LSGAN gives (0 - 1)^2 = 1 for G and 0.5 * (1 + 0) for D."""
    # Plain discriminators, so that a zeroed last conv gives exact zeros; bce is not set: the default.
    model = build(spectral_norm="false", **({} if kind == "bce" else {"gan_loss": "lsgan"}))
    for name in ("disc_tumor", "disc_normal"):
        last = [m for m in model.networks[name].modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
    losses = model.train_step(batch(), 0)
    assert losses["gan_nt"] == pytest.approx(g_term, rel=1e-5)
    assert losses["gan_tn"] == pytest.approx(g_term, rel=1e-5)
    assert losses["d_tumor"] == pytest.approx(d_term, rel=1e-5)


@pytest.mark.parametrize("res,patches", [(64, 6), (128, 14), (240, 28), (256, 30)])
def test_every_network_shape_at_each_resolution(res, patches):
    spec = get_model("sag-gan")
    with torch.device("meta"):
        model = spec.factory(spec.config_cls(), res, 1).to("meta")
    assert set(model.networks) == {"gen_normal_to_tumor", "gen_tumor_to_normal", "attn_normal", "attn_tumor",
                                   "disc_tumor", "disc_normal"}
    for name, net in model.networks.items():
        out = net(*model.example_inputs(name, 2))
        expected = (2, 1, patches, patches) if name.startswith("disc_") else (2, 1, res, res)
        assert tuple(out.shape) == expected, name


def test_real_forward_at_240_gives_attention_in_unit_range():
    model = build(240)
    y, attention = model.translate(torch.rand(1, 1, 240, 240) * 2 - 1, to="normal")
    assert y.shape == (1, 1, 240, 240) and attention.shape == (1, 1, 240, 240)
    assert float(attention.min()) >= 0.0 and float(attention.max()) <= 1.0


def test_composition_where_attention_is_zero_returns_the_input_exactly():
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    g = torch.rand(2, 1, 8, 8) * 2 - 1
    m = (torch.rand(2, 1, 8, 8) > 0.5).float()
    y = attention_compose(g, x, m)
    assert torch.equal(y[m == 0], x[m == 0])
    assert torch.equal(y[m == 1], g[m == 1])
    torch.testing.assert_close(attention_compose(g, x, torch.full_like(m, 0.25)), 0.25 * g + 0.75 * x)


@pytest.mark.parametrize("to,generator", [("tumor", "gen_normal_to_tumor"), ("normal", "gen_tumor_to_normal")])
def test_model_translation_is_identity_under_zero_attention_and_generator_under_full(to, generator):
    model = build()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    _force_attention(model, 0.0)
    y, attention = model.translate(x, to=to)
    assert torch.equal(attention, torch.zeros_like(attention))
    assert torch.equal(y, x)
    _force_attention(model, 1.0)
    y, attention = model.translate(x, to=to)
    with torch.no_grad():
        assert torch.equal(y, model.networks[generator].eval()(x))


def test_amse_switch_chooses_the_generator_blocks():
    def blocks(model, kind):
        return sum(isinstance(m, kind) for m in model.networks["gen_normal_to_tumor"].modules())

    assert blocks(build(64), AMSEResidualBlock) == 6 and blocks(build(64), ResnetBlock) == 0
    plain = build(64, amse="false")
    assert blocks(plain, AMSEResidualBlock) == 0 and blocks(plain, ResnetBlock) == 6


def test_spectral_norm_switch_wraps_every_discriminator_conv():
    for flag in (True, False):
        disc = build(spectral_norm=str(flag)).networks["disc_tumor"]
        convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
        assert all(parametrize.is_parametrized(c, "weight") == flag for c in convs)
        assert any(isinstance(m, nn.InstanceNorm2d) for m in disc.modules()) == (not flag)


def test_attention_guided_discriminator_judges_the_image_times_the_map():
    disc = AttentionGuidedDiscriminator(1, ndf=4, n_layers=3)
    x, m = torch.randn(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(disc(x, m), disc(x * m))


@pytest.mark.parametrize("guided", [True, False])
def test_discriminators_see_only_the_attended_region_when_guided(guided):
    model = build(attention_in_d=str(guided))
    _force_attention(model, 0.0)
    seen = []
    for name in ("disc_tumor", "disc_normal"):
        model.networks[name].register_forward_hook(lambda mod, args, out: seen.append(args[0] * (
            args[1] if len(args) > 1 and args[1] is not None else 1)))
    model.train_step(batch(), 0)
    assert len(seen) == 6  # one fake each in the G step; real and pooled fake each in the D step
    all_zero = all(float(t.detach().abs().max()) == 0.0 for t in seen)
    assert all_zero == guided


def test_masked_l1_uses_only_rows_with_a_mask():
    att = torch.zeros(3, 1, 4, 4)
    mask = torch.ones(3, 1, 4, 4)
    att[1] = 1.0  # row 1 matches its mask perfectly, rows 0 and 2 miss by 1 everywhere
    assert float(masked_l1(att, mask, torch.tensor([False, True, False]))) == 0.0
    assert float(masked_l1(att, mask, torch.tensor([True, True, False]))) == pytest.approx(0.5)
    assert float(masked_l1(att, mask, torch.tensor([False, False, False]))) == 0.0


def test_mask_loss_ignores_masks_of_unlabelled_rows_and_is_zero_without_labels():
    torch.manual_seed(0)
    b = batch(has_mask=(True, False))
    state = build().state_dict()

    def loss_with(b):
        model = build()
        model.load_state_dict(state)
        torch.manual_seed(5)
        return model.train_step(b, 0)

    base = loss_with(b)
    assert base["mask"] > 0
    changed = dict(b, tumor_mask=b["tumor_mask"].clone())
    changed["tumor_mask"][1] = 1 - changed["tumor_mask"][1]  # an unlabelled row's "mask" is noise
    assert loss_with(changed) == base
    changed["tumor_mask"][0] = 1 - changed["tumor_mask"][0]  # a labelled row's mask counts
    assert loss_with(changed)["mask"] != base["mask"]
    assert loss_with(batch(has_mask=(False, False)))["mask"] == 0.0


def test_mask_supervision_moves_the_tumor_attention_towards_the_mask():
    torch.manual_seed(0)
    model = build(lambda_gan="0", lambda_cycle="0", lambda_mask="1", lr="1e-3")
    b = batch(has_mask=(True, True))
    first = model.train_step(b, 0)["mask"]
    for s in range(1, 6):
        last = model.train_step(b, s)["mask"]
    assert last < first


def test_inconsistent_switches_are_an_input_error():
    spec = get_model("sag-gan")
    with pytest.raises(InputError, match="needs attention=true"):
        build_config(spec.config_cls, {"attention": "false"})
    with pytest.raises(InputError, match="gan_loss"):
        build_config(spec.config_cls, {"gan_loss": "hinge"})


@pytest.mark.parametrize("row", sorted(ABLATIONS))
def test_each_ablation_row_trains_and_translates(row):
    torch.manual_seed(0)
    model = build(**ABLATIONS[row])
    before = {k: [p.detach().clone() for p in v.parameters()] for k, v in model.networks.items()}
    for s in range(2):
        losses = model.train_step(batch(), s)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    for k, net in model.networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), k
    y, attention = model.translate(torch.rand(1, 1, 32, 32) * 2 - 1, to="tumor")
    assert y.shape == (1, 1, 32, 32)
    assert (attention is None) == (ABLATIONS[row].get("attention") == "false")
    assert ("mask" in losses) == model.config.mask_supervision
    expected_nets = {"gen_normal_to_tumor", "gen_tumor_to_normal"} | (
        {"attn_normal", "attn_tumor"} if model.config.attention else set())
    assert set(model.inference_networks) == expected_nets


@pytest.mark.parametrize("extra", [{}, {"region_training": "0.5"}])
def test_resume_from_state_and_rng_repeats_the_uninterrupted_run_exactly(extra):
    torch.manual_seed(0)
    batches = [batch() for _ in range(4)]
    torch.manual_seed(1)
    model = build(pool_size="2", n_epochs="1", n_epochs_decay="3", **extra)
    for s in range(2):
        model.train_step(batches[s], s)
    model.on_epoch_end(0)
    model.on_epoch_end(1)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state, rng = torch.load(buf, weights_only=True), torch.get_rng_state()
    straight = [model.train_step(batches[s], s) for s in (2, 3)]

    resumed = build(pool_size="2", n_epochs="1", n_epochs_decay="3", **extra)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    again = [resumed.train_step(batches[s], s) for s in (2, 3)]
    assert straight == again
    assert resumed.optimizers["generators"].param_groups[0]["lr"] == pytest.approx(2e-4 * 2 / 4)


@pytest.mark.parametrize("name", ["sag-gan", "cyclegan"])
def test_train_step_and_translate_run_under_bf16_autocast(name):
    import functools

    spec = get_model(name)
    keys = {f.name for f in __import__("dataclasses").fields(spec.config_cls)}
    model = spec.factory(build_config(spec.config_cls, {k: v for k, v in TINY.items() if k in keys}), 32, 1)
    model.autocast = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)  # what the trainer sets on GPU
    for s in range(2):  # the second step reads bf16 fakes back from the pools
        losses = model.train_step(batch(), s)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    y, _ = model.translate(torch.rand(1, 1, 32, 32) * 2 - 1, to="tumor")
    assert y.dtype == torch.float32
    assert model.extra_state()["pool_tumor"]["images"].dtype == torch.float32
