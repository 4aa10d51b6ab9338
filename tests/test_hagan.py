"""The hagan model: registration, shapes, parameter counts, reverse skip, schedule, ablations, real data."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from conftest import run_cli
from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.registry import get_model
from medsyn_plugins.hagan import ABLATIONS, COMPONENTS, HAGANConfig
from medsyn_plugins.hagan.attnmix import mix
from medsyn_plugins.hagan.model import HAGAN

#: Narrow networks: every wiring of the full model at a fraction of the cost.
TINY = dict(g_channels=8, d_channels=8, pixel_channels=4, max_channels=32)


def tiny(res: int = 32, channels: int = 1, **overrides) -> HAGAN:
    torch.manual_seed(0)
    return HAGAN(HAGANConfig(**{**TINY, **overrides}), res, channels)


def test_registered_with_the_paper_defaults():
    spec = get_model("hagan")
    assert spec.task == "unconditional" and spec.default_batch_size == 32
    assert spec.resolutions == (64, 128, 256)
    cfg = spec.default_config()
    assert cfg["lr"] == 1e-3 and cfg["policy"] == "color,translation,cutout" and cfg["warmup_epochs"] == 100
    assert cfg["latent_dim"] == 100 and cfg["feature_contrast"] is True
    assert HAGAN(HAGANConfig(**TINY), 64, 1).latent_dim == 100
    assert HAGAN(HAGANConfig(**TINY), 256, 1).latent_dim == 100  # the paper's 1000 at 256 is explicit


def test_dry_run_shows_the_papers_recipe(tmp_path):
    import json

    proc = run_cli("train", "hagan", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    cfg, training = run["model_config"], run["training"]
    assert training["batch_size"] == 32 and run["res"] == 64  # §IV.A: mini-batch 32 at low resolution
    assert cfg["lr"] == 1e-3 and cfg["latent_dim"] == 100  # Adam 1e-3 for G and D; z in [-1, 1]^100
    assert cfg["warmup_epochs"] == 100 and cfg["ablation"] == "full"  # n = 100 warm-up epochs
    assert cfg["alpha"] == 0.5  # lambda = alpha (lambda0 + lambda1) normalised into [0, 1]
    assert (cfg["beta_g_pixel"], cfg["beta_d_pixel"], cfg["beta_cons"]) == (1.0, 1.0, 1.0)


def test_ablation_rows_and_overrides():
    rows = [ABLATIONS[name] for name in ("base", "attnmix", "skip", "hierarchical", "full")]
    assert not any(rows[0].values()) and all(rows[-1].values())
    for before, after in zip(rows, rows[1:]):  # each row adds components, never removes one
        assert all(after[k] for k in COMPONENTS if before[k]) and sum(after.values()) > sum(before.values())
    cfg = build_config(HAGANConfig, {"ablation": "skip", "hierarchical_d": "true", "diffaugment": "false"})
    parts = cfg.components()
    assert parts["reverse_skip"] and parts["hierarchical_d"] and not parts["diffaugment"] and not parts["warmup"]
    with pytest.raises(InputError, match="ablation"):
        HAGANConfig(ablation="nope").components()
    with pytest.raises(InputError, match="policy"):
        HAGAN(HAGANConfig(**TINY, policy="translation,zoom"), 32, 1)
    with pytest.raises(InputError, match="contrast_temperature"):
        HAGAN(HAGANConfig(**TINY, contrast_temperature=0.0), 32, 1)


@pytest.mark.parametrize("res", [64, 128, 256])
def test_shapes(res):
    model = tiny(res, latent_dim=8)
    G, D = model.networks["generator"], model.networks["discriminator"]
    z = model.latents(2)
    assert z.shape == (2, 8) and z.min() >= -1 and z.max() <= 1
    image, (attn, h, w) = G(z, return_attention=True)
    assert image.shape == (2, 1, res, res) and image.abs().max() <= 1
    assert (h, w) == (min(res // 2, 64),) * 2 and attn.shape == (2, h * w, h * w)  # last attention layer
    score, pixel = D(image)
    assert score.shape == (2,) and pixel.shape == (2, 1, res, res)
    assert set(D.features(image)) == {res // 2, res // 4, res // 8, res // 16}


def test_paper_latent_size_at_256():
    assert HAGAN(HAGANConfig(**{**TINY, "latent_dim": 0}), 256, 1).latent_dim == 1000  # 0 = by resolution
    assert HAGAN(HAGANConfig(**{**TINY, "latent_dim": 0}), 64, 1).latent_dim == 100


def test_parameter_counts_at_64_match_table_one():
    torch.manual_seed(0)
    counts = HAGAN(HAGANConfig(), 64, 1).parameter_counts()
    assert abs(counts["generator"] - 3.6e6) / 3.6e6 < 0.15
    assert abs(counts["discriminator"] - 2.8e6) / 2.8e6 < 0.15


def test_reverse_skip_changes_the_generator_output():
    model = tiny(64)
    G, D = model.networks["generator"], model.networks["discriminator"]
    z = model.latents(2)
    feats = {r: f.mean(0, keepdim=True) for r, f in D.features(torch.rand(4, 1, 64, 64) * 2 - 1).items()}
    G.eval()
    with torch.no_grad():
        a = G(z, feats)
        b = G(z, {r: f * 3 + 0.5 for r, f in feats.items()})
        for r in feats:  # each resolution's skip is wired in
            assert not torch.allclose(a, G(z, {**feats, r: feats[r] + 1.0}))
    assert not torch.allclose(a, b)
    # through the model: D's features of a different real batch give a different G(z)
    with torch.no_grad():
        s1 = model.real_skips(torch.rand(4, 1, 64, 64) * 2 - 1)
        s2 = model.real_skips(-torch.rand(4, 1, 64, 64))
        assert not torch.allclose(G(z, s1), G(z, s2))


def test_reverse_skip_switched_off_ignores_features():
    model = tiny(64, reverse_skip=False)
    G, D = model.networks["generator"], model.networks["discriminator"]
    assert G.skip_res == () and model.real_skips(torch.zeros(2, 1, 64, 64)) is None
    z = model.latents(2)
    feats = D.features(torch.rand(2, 1, 64, 64))
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z, feats), G(z, {r: f * 5 for r, f in feats.items()}))


def test_sampling_uses_the_running_mean_of_real_features():
    model = tiny(64)
    G = model.networks["generator"]
    model.train_step({"image": torch.rand(4, 1, 64, 64) * 2 - 1}, 0)
    assert int(G.skip_count) == 1 and G.skip_mean_32.abs().sum() > 0
    a = model.sample(2, torch.Generator().manual_seed(0))
    assert torch.equal(a, model.sample(2, torch.Generator().manual_seed(0)))  # seeded, eval mode
    with torch.no_grad():
        G.skip_mean_16.add_(1.0)
    assert not torch.allclose(a, model.sample(2, torch.Generator().manual_seed(0)))
    assert a.shape == (2, 1, 64, 64) and a.abs().max() <= 1 and G.training  # train mode restored


def test_warmup_switches_to_attnmix_at_the_configured_step():
    model = tiny(32, warmup_steps=1)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    first, second = model.train_step({"image": x}, 0), model.train_step({"image": x}, 1)
    assert first["attnmix"] == 0.0 and first["d_cons"] == 0.0 and "label" not in first
    assert second["attnmix"] == 1.0 and second["d_cons"] > 0.0 and 0.0 <= second["label"] <= 1.0


def test_warmup_counted_in_the_trainers_epochs():
    model = tiny(32, warmup_epochs=2)
    assert not model.attnmix_active(10_000, epoch=0)
    assert not model.attnmix_active(10_001, epoch=1)
    assert model.attnmix_active(10_002, epoch=2)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    assert model.train_step({"image": x}, 5, 1)["attnmix"] == 0.0
    assert model.train_step({"image": x}, 6, 2)["attnmix"] == 1.0
    # No counter of its own: nothing to save, and an older checkpoint's "epochs_done" is ignored.
    state = model.state_dict()
    assert state["extra"] == {}
    state["extra"] = {"epochs_done": 7}
    other = tiny(32, warmup_epochs=2)
    other.load_state_dict(state)
    assert not other.attnmix_active(0, epoch=1)
    assert tiny(32, warmup=False).attnmix_active(0)  # no training strategy: AttnMix from the start
    assert not tiny(32, attnmix=False, warmup=False).attnmix_active(10**6, epoch=10**3)


def test_mixed_image_is_made_of_what_d_sees_as_real_and_fake():
    model = tiny(32, warmup=False)
    real, fake = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    torch.manual_seed(1)
    x_a, f_a, mixed, mask, label, stats = model.discriminator_inputs(real, fake, None, step=0)
    assert not torch.equal(x_a, real) and not torch.equal(f_a, fake)  # T(x), T(G(z))
    # i = AttnMix(T(x), T(G(z)), M): D's three inputs are "T(G(z)), T(x) and i" (§III.B)
    assert torch.equal(mixed, mix(x_a, f_a, mask)) and label.shape == (4,)
    assert stats["attnmix"] == 1.0 and stats["diffaugment"] == 1.0


def test_default_policy_changes_brightness_of_grey_images():
    model = tiny(32, warmup=False, policy="color")
    x = torch.zeros(8, 1, 32, 32)
    torch.manual_seed(0)
    y = model.augment(x)
    assert not torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))  # brightness moved


def test_warmup_sees_the_complete_real_data_unaugmented():
    """§III.E: "the complete real data is used for preliminary learning": no DiffAugment, no AttnMix."""
    model = tiny(32, warmup_steps=1)
    seen: list[torch.Tensor] = []
    D = model.networks["discriminator"]
    D.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    torch.manual_seed(0)
    log = model.train_step({"image": x}, 0)
    assert log["diffaugment"] == 0.0 and log["attnmix"] == 0.0
    assert len(seen) == 2  # the D step and the G step
    d_step, g_step = seen
    assert d_step.shape[0] == 8 and torch.equal(d_step[:4], x)  # x exactly as loaded
    assert torch.equal(d_step[4:], g_step)  # the same G(z), un-augmented, in both steps
    seen.clear()
    log = model.train_step({"image": x}, 1)
    assert log["diffaugment"] == 1.0 and log["attnmix"] == 1.0
    assert seen[0].shape[0] == 12 and not torch.equal(seen[0][:4], x)  # T(x), T(G(z)), i after warm-up


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_each_ablation_trains(ablation):
    model = tiny(32, ablation=ablation, warmup_steps=1)
    parts = model.parts
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in model.networks.items()}
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    logs = [model.train_step({"image": x}, step) for step in range(2)]
    for log in logs:
        assert all(math.isfinite(v) for v in log.values()), log
        assert (log["d_pixel"] > 0) == parts["hierarchical_d"]
        assert (log["g_pixel"] > 0) == parts["hierarchical_d"]
    assert logs[-1]["attnmix"] == float(parts["attnmix"])
    assert logs[0]["attnmix"] == float(parts["attnmix"] and not parts["warmup"])
    assert logs[0]["diffaugment"] == float(parts["diffaugment"] and not parts["warmup"])
    assert (logs[-1]["d_feat"] > 0) == parts["attnmix"]  # the feature-map contrast joins L_cons
    for name, net in model.networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    G = model.networks["generator"]
    assert bool(G.attention) == parts["self_attention"]
    assert (model.networks["discriminator"].pixel_branch is not None) == parts["hierarchical_d"]


def test_rgb_and_resume_roundtrip():
    model = tiny(32, channels=3)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    model.train_step({"image": x}, 0)
    state = model.state_dict()
    other = tiny(32, channels=3)
    other.load_state_dict(state)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(model.sample(2, g()), other.sample(2, g()))
    assert model.sample(2, g()).shape == (2, 3, 32, 32)


def test_example_inputs_and_flops():
    model = tiny(64)
    (z,) = model.example_inputs("generator", 3)
    (img,) = model.example_inputs("discriminator", 3)
    assert z.shape == (3, model.latent_dim) and img.shape == (3, 1, 64, 64)
    assert model.networks["generator"](*model.example_inputs("generator", 2)).shape == (2, 1, 64, 64)
    flops = model.flops_per_image()
    assert flops["generator"] > 0 and flops["discriminator"] > 0
    with pytest.raises(KeyError):
        model.example_inputs("encoder", 1)


def test_config_is_a_plain_dataclass_with_lr():
    names = {f.name for f in dataclasses.fields(HAGANConfig)}
    assert "lr" in names and set(COMPONENTS) <= names


def test_models_cli_lists_hagan():
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"hagan"' in proc.stdout


def _load_covid(folder, n: int, res: int) -> torch.Tensor:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
    images = []
    for path in files:
        with Image.open(path) as im:
            grey = im.convert("L").resize((res, res), Image.BILINEAR)
        images.append(torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8).view(1, res, res))
    return torch.stack(images).float() / 127.5 - 1


def test_steps_on_real_covid_ct(shared_data):
    images = _load_covid(shared_data / "covid-ct-noncovid", 16, 64)
    assert images.shape == (16, 1, 64, 64) and images.min() >= -1 and images.max() <= 1
    torch.manual_seed(0)
    model = HAGAN(HAGANConfig(warmup_steps=1), 64, 1)  # the paper's widths
    logs = [model.train_step({"image": batch}, step) for step, batch in enumerate(images.split(4)[:2])]
    assert [log["attnmix"] for log in logs] == [0.0, 1.0]
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert model.sample(2, torch.Generator().manual_seed(0)).shape == (2, 1, 64, 64)


def test_optional_switches_survive_a_config_json_roundtrip():
    """A resumed run rebuilds the config from config.json, where unset switches are null."""
    import json

    stored = json.loads(json.dumps(dataclasses.asdict(HAGANConfig())))
    assert stored["warmup"] is None
    assert build_config(HAGANConfig, stored) == HAGANConfig()


def test_ema_setting_averages_the_generator_and_keeps_its_skip_features():
    from medsyn_cli.training.ema import EMA

    assert not tiny().wants_ema  # the paper recipe samples from the live generator
    model = tiny(ema=True)
    assert model.wants_ema
    ema = EMA(model, decay=0.9)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    for step in range(3):
        model.train_step({"image": x}, step)
        ema.update(model)
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    live = model.sample(2, g())
    with ema.applied(model):
        averaged = model.sample(2, g())
        skip = {k: v for k, v in model.networks["generator"].state_dict().items() if "skip" in k}
    assert not torch.equal(live, averaged)
    assert torch.equal(model.sample(2, g()), live)  # the live weights come back
    live_skip = model.networks["generator"].state_dict()
    assert skip and all(torch.equal(v, live_skip[k]) for k, v in skip.items())  # buffers are copied


def test_ema_setting_reaches_the_exported_weights_and_sample(tmp_path):
    from safetensors import safe_open

    out = tmp_path / "run"
    sets = [a for k, v in {**TINY, "ema": "true"}.items() for a in ("--set", f"{k}={v}")]
    trained = run_cli("train", "hagan", "--res", "64", "--steps", "2",
                      "--batch-size", "4", "--out", out, *sets)
    assert trained.returncode == 0, trained.stderr
    with safe_open(str(out / "weights.safetensors"), framework="pt") as fh:
        assert fh.metadata()["ema"] == "true"
    sampled = run_cli("sample", out, "--n", "3", "--out", tmp_path / "samples")
    assert sampled.returncode == 0, sampled.stderr
    assert len(list((tmp_path / "samples").glob("*.png"))) == 3


def test_fast_recipe_shortens_the_warmup_and_samples_the_average(tmp_path):
    from medsyn_plugins.hagan import FAST_RECIPE

    spec = get_model("hagan")
    assert FAST_RECIPE == {"warmup_epochs": 10, "ema": True, "batch_size": 16}
    assert spec.recipe("fast") == {"warmup_epochs": 10, "ema": True}
    assert (spec.recipe_batch_size("fast"), spec.recipe_batch_size("paper")) == (16, 32)
    dry = run_cli("train", "hagan", "--recipe", "fast", "--dry-run", "--out", tmp_path / "run")
    assert dry.returncode == 0, dry.stderr
    import json

    cfg = json.loads(dry.stdout)
    assert cfg["recipe"] == "fast"
    assert cfg["model_config"]["warmup_epochs"] == 10 and cfg["model_config"]["ema"] is True
    assert cfg["training"]["batch_size"] == 16  # the recipe's batch ...
    own = run_cli("train", "hagan", "--recipe", "fast", "--batch-size", "32", "--dry-run", "--out", tmp_path / "r2")
    assert own.returncode == 0, own.stderr
    assert json.loads(own.stdout)["training"]["batch_size"] == 32  # ... and --batch-size still wins
    paper = run_cli("train", "hagan", "--dry-run", "--out", tmp_path / "r3")
    assert json.loads(paper.stdout)["training"]["batch_size"] == 32
    assert tiny(warmup_epochs=10, ema=True).wants_ema


def test_step_decay_factor():
    from medsyn_cli.gan.schedule import step_decay_factor

    assert [step_decay_factor(s, -1, 10, 0.1) for s in (0, 50)] == [1.0, 1.0]  # off
    assert [round(step_decay_factor(s, 4, 10, 0.1), 6) for s in (0, 3, 4, 9, 14, 100)] == [1, 1, 1, 0.55, 0.1, 0.1]
    assert step_decay_factor(5, 5, 0, 0.25) == 0.25  # no length: straight to the floor


def test_lr_decay_setting_sets_both_rates_per_step_and_resumes_from_the_step_alone(tmp_path):
    import json

    model = tiny(lr_decay_start=1, lr_decay_steps=2, lr_decay_floor=0.5, warmup_steps=0)
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    seen = []
    for step in range(4):
        model.train_step({"image": x}, step)
        seen.append({k: opt.param_groups[0]["lr"] for k, opt in model.optimizers.items()})
    assert [s["generator"] for s in seen] == [1e-3, 1e-3, 7.5e-4, 5e-4]
    assert all(s["generator"] == s["discriminator"] for s in seen)
    paper = tiny(warmup_steps=0)  # the paper recipe: the rate is never touched
    paper.train_step({"image": x}, 5000)
    assert paper.optimizers["generator"].param_groups[0]["lr"] == 1e-3

    # Through the CLI, across a resume: the logged rate is the decay's at each step.
    out = tmp_path / "run"
    sets = [a for k, v in {**TINY, "lr_decay_start": 2, "lr_decay_steps": 2, "lr_decay_floor": 0.0,
                           "warmup_steps": 0}.items() for a in ("--set", f"{k}={v}")]
    common = ["--res", "64", "--batch-size", "4", "--out", out, "--log-every", "1", *sets]
    assert run_cli("train", "hagan", "--steps", "2", *common).returncode == 0
    resumed = run_cli("train", "hagan", "--steps", "4", "--resume", *common)
    assert resumed.returncode == 0, resumed.stderr
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    rates = {rec["step"]: rec["lr"]["generator"] for rec in stats if "lr" in rec}
    assert rates[4] == pytest.approx(5e-4), rates  # step index 3: halfway down from 1e-3 to 0
