"""sag-gan's later-practice settings (off in the paper recipe; docs/models/sag-gan.md): attention only inside
the head, a prior on A_N's area, the tumor detector finding the grown tumor, the cycle mask, each real
image judged through its own map, whole-image discriminators first; and cyclegan's keep_background."""

from __future__ import annotations

import pytest
import torch

from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.nn.masks import area_prior, head_mask, quantile_distance, share_inside
from medsyn_cli.registry import get_model
from medsyn_plugins.sag_gan.lesion import lesion_intensity

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"ngf": 8, "ndf": 8, "attention_ngf": 4, "se_reduction": 4}
RES = 32


def build(name: str = "sag-gan", **overrides):
    spec = get_model(name)
    tiny = TINY if name == "sag-gan" else {"ngf": 8, "ndf": 8}
    return spec.factory(build_config(spec.config_cls, {**tiny, **overrides}), RES, 1)


def head_images(n: int = 2) -> torch.Tensor:
    """Black frames with a bright square 'head' in the middle (and a dark hole inside it)."""
    x = torch.full((n, 1, RES, RES), -1.0)
    x[:, :, 8:24, 8:24] = torch.rand(n, 1, 16, 16) * 0.5
    x[:, :, 15:17, 15:17] = -1.0  # a ventricle: dark, still head
    return x


def batch(n: int = 2) -> dict[str, torch.Tensor]:
    mask = torch.zeros(n, 1, RES, RES)
    mask[:, :, 10:16, 10:16] = 1
    return {"normal": head_images(n), "tumor": head_images(n), "tumor_mask": mask,
            "tumor_has_mask": torch.ones(n, dtype=torch.bool)}


def test_head_mask_is_the_bright_region_with_its_dark_holes_closed():
    m = head_mask(head_images(1))[0, 0]
    assert m[8:24, 8:24].all() and not m[:6].any() and not m[:, 26:].any()
    assert m[15, 15] == 1  # the dark hole inside counts as head


def test_area_prior_is_zero_inside_the_band_and_grows_outside_it():
    mask = torch.ones(1, 1, 10, 10)
    maps = torch.zeros(1, 1, 10, 10)
    maps[..., :2, :] = 1  # 20 % of the mask
    assert float(share_inside(maps, mask)) == pytest.approx(0.2)
    assert float(area_prior(maps, mask, 0.1, 0.3)) == 0.0
    assert float(area_prior(maps, mask, 0.3, 0.5)) == pytest.approx(0.1)
    assert float(area_prior(maps, mask, 0.0, 0.15)) == pytest.approx(0.05)


def test_attention_in_brain_is_zero_outside_the_head():
    model = build(attention_in_brain=True)
    x = head_images()
    _, att = model.translate(x, "tumor")
    assert float(att[..., :6, :].abs().max()) == 0.0 and float(att[..., 8:24, 8:24].max()) > 0
    _, free = build(attention_in_brain=False).translate(x, "tumor")
    assert float(free[..., :6, :].max()) > 0  # the paper's map may attend the background


def test_each_new_loss_is_logged_only_when_weighted():
    base = build().train_step(batch(), 0)
    assert not {"area", "cycle_mask", "tumor_found", "lesion_intensity"} & set(base)
    losses = build(lambda_area=1.0, area_min=0.1, area_max=0.3, lambda_cycle_mask=1.0,
                   lambda_tumor_found=1.0, lambda_lesion_intensity=1.0).train_step(batch(), 0)
    assert {"area", "cycle_mask", "tumor_found", "lesion_intensity"} <= set(losses)
    assert all(torch.isfinite(torch.as_tensor(losses[k])) for k in ("area", "cycle_mask", "tumor_found"))


def test_tumor_found_trains_the_tumor_side_but_never_the_tumor_detector():
    """The term's gradient reaches G_nt and A_N through the grown tumor, not A_T's weights (the masks
    alone teach A_T what a tumor is)."""
    model = build(lambda_tumor_found=1.0, mask_supervision=False, lambda_gan=0.0, lambda_cycle=0.0)
    grads = {}
    model.optimize = lambda name, loss, **kw: (loss.backward(), grads.update(
        {k: [p.grad for p in net.parameters()] for k, net in model.networks.items()}))[0]
    model.train_step(batch(), 0)
    assert all(g is None or float(g.abs().max()) == 0 for g in grads["attn_tumor"])
    assert any(g is not None and float(g.abs().max()) > 0 for g in grads["gen_normal_to_tumor"])
    assert any(g is not None and float(g.abs().max()) > 0 for g in grads["attn_normal"])


@pytest.mark.parametrize("which,expected", [("other", "attn_normal"), ("own", "attn_tumor")])
def test_a_real_tumor_is_judged_through_the_map_the_setting_names(which, expected):
    torch.manual_seed(0)
    model = build(pool_size=0, d_real_attention=which)
    b = batch()
    with torch.no_grad():
        maps = {"attn_normal": model.networks["attn_normal"](b["normal"]),
                "attn_tumor": model.networks["attn_tumor"](b["tumor"])}
    seen = []
    model.networks["disc_tumor"].register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    model.train_step(b, 0)
    torch.testing.assert_close(seen[1], b["tumor"] * maps[expected])  # the D step's real batch


def test_whole_image_discriminators_first_then_attention_guided():
    model = build(whole_d_epochs=2)
    seen = []
    model.networks["disc_tumor"].register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    b = batch()
    model.train_step(b, 0, epoch=1)
    torch.testing.assert_close(seen[1], b["tumor"])  # whole real image in epoch 1
    seen.clear()
    model.train_step(b, 0, epoch=2)
    assert not torch.equal(seen[1], b["tumor"])  # through a map from epoch 2 on


def test_inconsistent_practice_settings_are_refused():
    with pytest.raises(InputError, match="area_min"):
        build(area_min=0.5, area_max=0.2)
    with pytest.raises(InputError, match="needs attention=true"):
        build(attention=False, attention_in_d=False, mask_supervision=False, lambda_tumor_found=1.0)


@pytest.mark.parametrize("name", ["sag-gan", "cyclegan"])
def test_a_region_keeps_the_input_outside_it(name):
    model = build(name)
    x = head_images()
    region = torch.zeros(2, 1, RES, RES)
    region[..., 10:20, 10:20] = 1
    y, att = model.translate(x, "tumor", region=region)
    outside = region == 0
    torch.testing.assert_close(y[outside], x[outside])
    if att is not None:
        assert float(att[outside].abs().max()) == 0.0


def _spy_translations(model) -> list[tuple[str, torch.Tensor]]:
    """Record (to, attention map) of every translation a train step makes."""
    calls, inner = [], model._translate

    def spy(x, to, region=None, place=None, keep=None):
        y, att = inner(x, to, region=region, place=place, keep=keep)
        calls.append((to, att.detach().clone()))
        return y, att
    model._translate = spy
    return calls


def test_region_training_grows_tumors_in_the_batchs_masks_and_puts_removed_ones_back_in_theirs():
    model = build(region_training=1.0, lambda_area=10.0, area_min=0.9, area_max=1.0)
    calls = _spy_translations(model)
    b = batch()
    b["tumor_has_mask"] = torch.tensor([True, False])
    with torch.no_grad():
        a_n = model.networks["attn_normal"](b["normal"])  # A_N before the step changes it
    losses = model.train_step(b, 0)
    (_, forward), _, _, (_, cycle) = calls  # n -> t, t -> n, cycle to n, cycle to t
    borrowed = b["tumor_mask"] * head_mask(b["normal"])
    torch.testing.assert_close(forward[0], borrowed[0])  # row 0: the tumor row's mask, inside this head
    torch.testing.assert_close(cycle[0], b["tumor_mask"][0])  # the removed tumor goes back into its own mask
    torch.testing.assert_close(forward[1], a_n[1])  # row 1's tumor has no mask: A_N chooses
    assert float(losses["area"]) > 0  # the prior still holds A_N on the row it placed


def test_without_region_training_a_train_step_places_nothing():
    model = build()
    calls = _spy_translations(model)
    b = batch()
    model.train_step(b, 0)
    with torch.no_grad():
        a_n = model.networks["attn_normal"](b["normal"])
    assert not torch.equal(calls[0][1], b["tumor_mask"] * head_mask(b["normal"]))
    assert calls[0][1].shape == a_n.shape


def test_the_area_prior_leaves_out_rows_whose_map_was_given():
    losses = build(region_training=1.0, lambda_area=10.0, area_min=0.5, area_max=0.6).train_step(batch(), 0)
    assert float(losses["area"]) == 0.0  # every row grew its tumor in a given region


def test_a_region_trained_run_fills_the_whole_region_it_is_given():
    model = build(region_training=0.5, attention_in_brain=True)
    x = head_images()
    region = torch.zeros(2, 1, RES, RES)
    region[..., 4:14, 4:14] = 1  # partly outside the head
    y, att = model.translate(x, "tumor", region=region)
    torch.testing.assert_close(att, region * head_mask(x))
    with torch.no_grad():
        generated = model.networks["gen_normal_to_tumor"](x)
    inside = att > 0.5
    torch.testing.assert_close(y[inside], generated[inside])
    torch.testing.assert_close(y[~inside], x[~inside])
    with pytest.raises(InputError, match="needs attention=true"):
        build(attention=False, attention_in_d=False, mask_supervision=False, region_training=0.5)


def test_cyclegan_keep_background_changes_only_the_head():
    model = build("cyclegan", keep_background=True)
    x = head_images()
    y, _ = model.translate(x, "tumor")
    background = head_mask(x) == 0
    torch.testing.assert_close(y[background], x[background])
    losses = model.train_step(batch(), 0)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())


@pytest.mark.parametrize("name", ["sag-gan", "cyclegan"])
def test_fast_recipe_is_batch_4_half_widths_and_trains_a_step(name, tmp_path):
    import json

    from conftest import run_cli

    spec = get_model(name)
    fast = spec.recipe("fast")
    assert (spec.recipe_batch_size("fast"), spec.recipe_batch_size("paper")) == (4, 1)
    assert fast["ngf"] == fast["ndf"] == 32
    if name == "sag-gan":
        assert fast["lambda_mask"] == 100 and fast["attention_in_brain"] and fast["d_real_attention"] == "own"
        assert (fast["area_min"], fast["area_max"], fast["lambda_tumor_found"], fast["lambda_gan"]) == (0.1, 0.3, 10, 10)
        assert fast["ema"] and (fast["n_epochs"], fast["n_epochs_decay"]) == (4, 2)
    else:
        assert fast["keep_background"]
    dry = run_cli("train", name, "--recipe", "fast", "--dry-run", "--out", tmp_path / "r")
    assert dry.returncode == 0, dry.stderr
    cfg = json.loads(dry.stdout)
    assert cfg["recipe"] == "fast" and cfg["training"]["batch_size"] == 4
    if name == "sag-gan":  # the run is the recipe's schedule unless --steps/--epochs says otherwise
        assert (cfg["training"]["steps"], cfg["training"]["epochs"]) == (None, 6)
    assert all(cfg["model_config"][k] == v for k, v in fast.items())
    # the recipe's settings together train (tiny widths over the recipe's, as the paper recipe's tests do)
    model = build(name, **{**fast, "ngf": 8, "ndf": 8})
    logs = model.train_step(batch(4), 0)
    assert all(torch.isfinite(torch.tensor(float(v))) for v in logs.values())
    if name == "sag-gan":
        assert "tumor_found" in logs and "area" in logs


def test_ema_averages_generators_and_attention_and_translate_uses_it(tmp_path):
    from conftest import run_cli

    from medsyn_cli.training.checkpoint import load_checkpoint, load_for_inference

    run = tmp_path / "run"
    sets = [a for k, v in {**TINY, "ema": "true"}.items() for a in ("--set", f"{k}={v}")]
    proc = run_cli("train", "sag-gan", "--res", "64", "--data", "phantom:brain?n=16&seed=1", "--steps", "3",
                   "--batch-size", "2", "--ema-decay", "0.5", "--no-amp", "--out", run, *sets)
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert ckpt["ema"]["updates"] == 3
    assert set(ckpt["ema"]["networks"]) == {"gen_normal_to_tumor", "gen_tumor_to_normal", "attn_normal", "attn_tumor"}
    live, live_meta = load_for_inference(run, weights="live")
    average, meta = load_for_inference(run)
    assert meta["ema"] and not live_meta["ema"]
    x = torch.nn.functional.interpolate(head_images(2), size=64)
    y_avg, att_avg = average.translate(x, "tumor")
    y_live, att_live = live.translate(x, "tumor")
    assert not torch.equal(y_avg, y_live) and not torch.equal(att_avg, att_live)
    # the CLI: the average by default, --weights live the last step's
    from PIL import Image

    Image.fromarray(((x[0, 0] + 1) * 127.5).round().byte().numpy()).save(tmp_path / "in.png")
    images = {}
    for which in ("last", "live"):
        target = tmp_path / f"{which}.png"
        out = run_cli("translate", tmp_path / "in.png", "--to", "tumor", "--model", run, "--weights", which,
                      "--no-amp", "-o", target)
        assert out.returncode == 0, out.stderr
        images[which] = Image.open(target).tobytes()
    assert images["last"] != images["live"]


def test_quantile_distance_compares_whole_distributions():
    a = torch.linspace(-1, 1, 101)
    assert float(quantile_distance(a, a.flip(0))) == pytest.approx(0.0, abs=1e-6)  # order does not matter
    assert float(quantile_distance(a, a + 0.5)) == pytest.approx(0.5, abs=1e-5)  # a shift is its size
    assert float(quantile_distance(a, a * 0.0)) > 0.4  # same mean, no spread: far apart
    darker = torch.where(a < 0, a - 0.5, a)  # only the lower half differs
    assert float(quantile_distance(a, darker)) > 0.1
    assert float(quantile_distance(a, darker, low=0.5)) == pytest.approx(0.0, abs=1e-6)


def test_quantile_distance_below_only_is_a_floor():
    """``below_only``: tissue darker than the reference costs as before, brighter tissue costs nothing, and a mix
    costs only its darker quantiles."""
    a = torch.linspace(-1, 1, 101)
    assert float(quantile_distance(a - 0.5, a, below_only=True)) == pytest.approx(0.5, abs=1e-5)
    assert float(quantile_distance(a + 0.5, a, below_only=True)) == pytest.approx(0.0, abs=1e-6)
    wider = a * 2  # darker in its lower half, brighter in its upper half
    assert 0 < float(quantile_distance(wider, a, below_only=True)) < float(quantile_distance(wider, a))
    assert float(quantile_distance(wider, a, low=0.5, below_only=True)) == pytest.approx(0.0, abs=1e-6)
    values = (a - 0.3).requires_grad_()
    quantile_distance(values, a, below_only=True).backward()  # the floor pushes darker tissue up
    assert float(values.grad.sum()) < 0


def test_lesion_intensity_is_zero_without_enough_grown_or_tumor_pixels():
    b = batch()
    grown, x = torch.zeros_like(b["normal"]), b["normal"]
    none = torch.zeros_like(b["tumor_mask"])
    assert float(lesion_intensity(grown, x, none, b["tumor"], b["tumor_mask"], b["tumor_has_mask"])) == 0.0
    everywhere = torch.ones_like(none)
    assert float(lesion_intensity(grown, x, everywhere, b["tumor"], none, b["tumor_has_mask"])) == 0.0
    assert float(lesion_intensity(grown, x, everywhere, b["tumor"], b["tumor_mask"],
                                  torch.zeros(2, dtype=torch.bool))) == 0.0  # masks on unlabelled rows are not used
    assert float(lesion_intensity(grown, x, everywhere, b["tumor"], b["tumor_mask"], b["tumor_has_mask"])) > 0


def test_lesion_intensity_at_a_few_pixels_tells_a_dot_pattern_from_tissue():
    """The same per-pixel histogram (half 0.2, half 0.9) as a checkerboard of dots and as two smooth halves: equal
    per pixel, far apart as 3-pixel means."""
    region = torch.zeros(1, 1, RES, RES)
    region[..., 4:28, 4:28] = 1
    smooth = torch.full((1, 1, RES, RES), -1.0)
    smooth[..., 4:28, 4:16], smooth[..., 4:28, 16:28] = 0.2, 0.9
    dots = torch.full((1, 1, RES, RES), -1.0)
    dots[..., 4:28, 4:28] = 0.2
    dots[..., 4:28:2, 4:28:2] = dots[..., 5:28:2, 5:28:2] = 0.9
    has = torch.ones(1, dtype=torch.bool)
    assert float(lesion_intensity(dots, dots, region, smooth, region, has, scale=1)) == pytest.approx(0.0, abs=1e-6)
    assert float(lesion_intensity(dots, dots, region, smooth, region, has, scale=3)) > 0.1
    assert float(lesion_intensity(smooth, smooth, region, smooth, region, has, scale=3)) == pytest.approx(0.0, abs=1e-6)


def test_lesion_intensity_trains_the_generator_not_the_attention():
    """Shrinking A_N below the level would empty the term: the map is detached, so only G_nt answers for it."""
    model = build(lambda_lesion_intensity=1.0, lambda_gan=0.0, lambda_cycle=0.0, mask_supervision=False)
    grads = {}
    model.optimize = lambda name, loss, **kw: (loss.backward(), grads.update(
        {k: [p.grad for p in net.parameters()] for k, net in model.networks.items()}))[0]
    b = batch()
    b["tumor"][b["tumor_mask"].bool()] = 0.6
    model.train_step(b, 0)
    assert all(g is None or float(g.abs().max()) == 0 for g in grads["attn_normal"])
    assert any(g is not None and float(g.abs().max()) > 0 for g in grads["gen_normal_to_tumor"])


def test_lesion_intensity_alone_makes_the_grown_tissue_as_bright_as_the_tumors():
    """With the term as the only loss, G_nt learns to fill A_N's region with tissue whose intensities approach
    the tumors' inside their masks (here 0.6, against a head of 0-0.5; A_N's untrained map, about 0.5, blends
    the input in, so a brighter target would be out of reach)."""
    torch.manual_seed(0)
    model = build(lambda_lesion_intensity=1.0, lambda_gan=0.0, lambda_cycle=0.0, mask_supervision=False,
                  attention_in_brain=True, lr=2e-3)
    b = batch()
    b["tumor"][b["tumor_mask"].bool()] = 0.6

    def grown_mean() -> float:
        y, att = model.translate(b["normal"], "tumor")
        return float(y[att >= 0.5].mean())

    before = grown_mean()
    first = model.train_step(b, 0)["lesion_intensity"]
    for step in range(1, 60):
        last = model.train_step(b, step)["lesion_intensity"]
    assert float(last) < 0.5 * float(first)
    assert abs(grown_mean() - 0.6) < 0.5 * abs(before - 0.6)


def test_lesion_contrast_compares_each_lesion_with_the_brain_around_it():
    """A tumor slice's brain at -0.2 with its tumor at 0.3, a normal slice's brain at 0.2 with a grown lesion at
    0.7: the same contrast (0.5), far apart in absolute intensity."""
    region = torch.zeros(1, 1, RES, RES)
    region[..., 12:20, 12:20] = 1
    tumor, grown = torch.full((1, 1, RES, RES), -1.0), torch.full((1, 1, RES, RES), -1.0)
    tumor[..., 4:28, 4:28], grown[..., 4:28, 4:28] = -0.2, 0.2
    tumor[region.bool()], grown[region.bool()] = 0.3, 0.7
    has = torch.ones(1, dtype=torch.bool)
    assert float(lesion_intensity(grown, grown, region, tumor, region, has, scale=1, contrast=True)) == pytest.approx(0.0, abs=1e-6)
    assert float(lesion_intensity(grown, grown, region, tumor, region, has, scale=1, contrast=False)) == pytest.approx(0.4, abs=1e-5)


def test_lesion_below_only_leaves_a_brighter_lesion_alone():
    """With ``lesion_below_only`` a lesion brighter than the tumors costs nothing and a darker one costs its gap;
    the setting reaches the term through the model's config."""
    region = torch.zeros(1, 1, RES, RES)
    region[..., 12:20, 12:20] = 1
    tumor, grown = torch.full((1, 1, RES, RES), -1.0), torch.full((1, 1, RES, RES), -1.0)
    tumor[..., 4:28, 4:28] = grown[..., 4:28, 4:28] = 0.0
    has = torch.ones(1, dtype=torch.bool)
    tumor[region.bool()] = 0.5
    for level, cost in ((0.8, 0.0), (0.2, 0.3)):
        grown[region.bool()] = level
        assert float(lesion_intensity(grown, grown, region, tumor, region, has, scale=1, below_only=True)) \
            == pytest.approx(cost, abs=1e-5)
    assert float(lesion_intensity(grown, grown, region, tumor, region, has, scale=1)) == pytest.approx(0.3, abs=1e-5)
    model = build(lambda_lesion_intensity=1.0, lesion_below_only=True)
    b = batch()
    b["tumor"][b["tumor_mask"].bool()] = -1.0  # tumors darker than anything grown: the floor is met
    assert float(model.train_step(b, 0)["lesion_intensity"]) == pytest.approx(0.0, abs=1e-6)
