"""``medsyn train --holdout F`` and the critic diagnostics (issue 37): the split is seeded, recorded and part of
the run's identity; held-out images never reach a batch; every unconditional model records finite critic
scores; the diagnostics leave training bit for bit as it is; the report and ``bench/plot_critic.py`` draw them;
the WGAN-GP updates give the gradient norm at the penalty's interpolates."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import ROOT
from medsyn_cli.data.types import ImageSet
from medsyn_cli.errors import InputError
from medsyn_cli.training.critic_watch import overfit_ratio
from medsyn_cli.training.holdout import holdout_count, split_holdout
from test_resume import HAGAN_SMALL, compare_runs
from test_train_tiny import TinyGAN, random_images, tiny_models, train  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Per model, settings that make its networks small enough for a few CPU steps (others run as they are).
SMALL = {
    "dcgan": ["ngf=8", "ndf=8", "latent_dim=16"],
    "wgan": ["ngf=8", "ndf=8", "latent_dim=16"],
    "hagan": HAGAN_SMALL,
    "ct-kernel-wgan": ["widths=32,16,8", "critic_widths=8,16,32,64"],
    "wgan-linconv": ["widths=32,16,8", "critic_widths=8,16,32,64"],
}


def _unconditional() -> list[tuple[str, int]]:
    from medsyn_cli.registry import all_models

    return [(name, min(spec.resolutions)) for name, spec in all_models().items() if spec.task == "unconditional"]


UNCONDITIONAL = _unconditional()


def config(run) -> dict:
    return json.loads((run / "config.json").read_text())


def stats(run) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def without(data: ImageSet, held: list[int]) -> ImageSet:
    """``data`` without the images at ``held``, the others in their order: what a run without --holdout
    would be given to train on the same images."""
    kept = [i for i in range(len(data)) if i not in set(held)]
    return ImageSet(images=data.images[kept], sources=[data.sources[i] for i in kept], intensity=data.intensity)


# -- the split -------------------------------------------------------------------------------------
def test_the_split_is_seeded_disjoint_and_keeps_the_training_images_in_order():
    data = random_images(40)
    train_a, held_a = split_holdout(data, 0.25, seed=3)
    _, held_b = split_holdout(data, 0.25, seed=3)
    assert len(held_a) == 10 and held_a.indices == held_b.indices and held_a.total == 40
    assert split_holdout(data, 0.25, seed=4)[1].indices != held_a.indices  # the seed chooses
    kept = train_a.images[:, 0, 0, 0].mul(1000).round().long().tolist()  # pixel [0,0,0] holds the index
    assert kept == sorted(kept) and sorted(kept + held_a.indices) == list(range(40))
    assert train_a.sources == [f"random#{i}" for i in kept]
    assert torch.equal(held_a.images, data.images[held_a.indices])
    assert held_a.sources == [f"random#{i}" for i in held_a.indices]
    assert split_holdout(data, 0, seed=3) == (data, None)
    assert holdout_count(3, 0.1) == 1 and holdout_count(10, 0.25) == 3  # at least one, rounded half up
    with pytest.raises(InputError, match="leaves none to train on"):
        split_holdout(random_images(1), 0.5, seed=0)


def test_held_out_images_never_reach_a_batch_and_the_split_is_recorded(tiny_models, tmp_path):
    data = random_images(20)
    result, model = train(tmp_path / "run", data, steps=30, batch_size=4, holdout=0.25, log_every=5)
    assert result.step == 30
    cfg = config(tmp_path / "run")
    held = cfg["data"]["holdout"]
    assert held["indices"] == split_holdout(data, 0.25, seed=0)[1].indices
    assert (held["fraction"], held["count"], held["of"], cfg["data"]["count"]) == (0.25, 5, 20, 15)
    assert held["sources"] == [f"random#{i}" for i in held["indices"]]
    assert cfg["training"]["holdout"] == 0.25
    seen = set(torch.cat(model.seen)[:, 0, 0, 0].mul(1000).round().long().tolist())
    assert not seen & set(held["indices"])  # 30 steps of 4 over the 15 others: 8 epochs, none held out
    assert seen == set(range(20)) - set(held["indices"])
    records = [r["critic"] for r in stats(tmp_path / "run") if "losses" in r]
    assert len(records) == 6 and all(r["images"] == 5 for r in records)


def test_holdout_is_part_of_the_runs_identity(tiny_models, tmp_path):
    data = random_images(16)
    run = tmp_path / "run"
    train(run, data, steps=2, batch_size=4, holdout=0.25)
    with pytest.raises(InputError, match="trained with --holdout 0.25, not 0.1"):
        train(run, data, steps=4, batch_size=4, resume=True, holdout=0.1)
    with pytest.raises(InputError, match="trained with --holdout 0.25, not 0.0"):
        train(run, data, steps=4, batch_size=4, resume=True, holdout=0)
    before = config(run)["data"]["holdout"]
    result, _ = train(run, data, steps=4, batch_size=4, resume=True)  # the run's own split, again
    assert result.step == 4 and config(run)["training"]["holdout"] == 0.25
    assert config(run)["data"]["holdout"] == before
    plain = tmp_path / "plain"
    train(plain, data, steps=2, batch_size=4)
    with pytest.raises(InputError, match="trained with --holdout 0.0, not 0.2"):
        train(plain, data, steps=4, batch_size=4, resume=True, holdout=0.2)


@pytest.mark.parametrize("value", [0.6, -0.1, float("nan"), 1])
def test_a_holdout_outside_zero_to_a_half_is_refused(value, tmp_path):
    from medsyn_cli.training.plan import TrainFlags, resolve_plan

    with pytest.raises(InputError, match=r"--holdout must be a fraction in \(0, 0.5\]"):
        resolve_plan(TrainFlags(model="dcgan", out=str(tmp_path / "run"), holdout=value))


def test_holdout_comes_from_the_environment_and_config_files_and_translation_models_refuse_it(tmp_path,
                                                                                               monkeypatch):
    from medsyn_cli.training.plan import TrainFlags, resolve_plan

    out = str(tmp_path / "run")
    assert resolve_plan(TrainFlags(model="dcgan", out=out)).settings.holdout == 0.0
    monkeypatch.setenv("MEDSYN_HOLDOUT", "0.7")
    with pytest.raises(InputError, match="MEDSYN_HOLDOUT"):
        resolve_plan(TrainFlags(model="dcgan", out=out))
    monkeypatch.setenv("MEDSYN_HOLDOUT", "0.2")
    assert resolve_plan(TrainFlags(model="dcgan", out=out)).settings.holdout == 0.2
    toml = tmp_path / "train.toml"
    toml.write_text("[train]\nholdout = 0.1\n")
    assert resolve_plan(TrainFlags(model="dcgan", out=out, config_file=str(toml))).settings.holdout == 0.1
    monkeypatch.delenv("MEDSYN_HOLDOUT")
    with pytest.raises(InputError, match="translation model"):
        resolve_plan(TrainFlags(model="sag-gan", out=out, holdout=0.1))


# -- every model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name,res", UNCONDITIONAL, ids=[n for n, _ in UNCONDITIONAL])
def test_every_unconditional_model_records_finite_critic_scores(name, res, tmp_path):
    data = random_images(16, res=res)
    result, model = train(tmp_path / "run", data, model=name, steps=2, batch_size=4, holdout=0.25, log_every=1,
                          sample_every=100, checkpoint_every=100, sets=SMALL.get(name, []))
    records = [r for r in stats(tmp_path / "run") if "losses" in r]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        critic = r["critic"]
        assert critic["images"] == 4
        values = [critic[k] for k in ("train", "holdout", "fake", "gap")]
        assert all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in values), critic
        assert critic["gap"] == pytest.approx(critic["train"] - critic["holdout"])
        assert critic["r_v"] is None or critic["r_v"] == pytest.approx(
            (critic["train"] - critic["holdout"]) / (critic["train"] - critic["fake"]))
        if "gp" in r["losses"]:  # the WGAN-GP models log the gradient norm beside the penalty
            assert 0 < r["losses"]["grad_norm"] < float("inf")

    # The hook itself: one float32 score per image, no gradient, every module's mode and every buffer kept.
    model.train()
    model.networks["generator"].eval()
    modes = {n: [m.training for m in net.modules()] for n, net in model.networks.items()}
    buffers = {n: {k: v.clone() for k, v in net.state_dict().items()} for n, net in model.networks.items()}
    scores = model.discriminator_scores(data.images[:3])
    assert scores.shape == (3,) and scores.dtype == torch.float32 and not scores.requires_grad
    assert modes == {n: [m.training for m in net.modules()] for n, net in model.networks.items()}
    for n, net in model.networks.items():
        for k, v in net.state_dict().items():
            assert torch.equal(v, buffers[n][k]), f"{name}: {n}.{k} changed"


@pytest.mark.parametrize("name", ["dcgan", "wgan", "hagan"])
def test_the_diagnostics_leave_training_bit_identical(name, tmp_path):
    """dcgan (BatchNorm in both networks), wgan (the penalty's random interpolates) and hagan (its own
    discriminator_scores, spectral norm, DiffAugment after the warm-up): a run with --holdout and one without
    it on the same remaining images end with equal weights, optimizer states and RNG states."""
    data = random_images(16, res=64)
    common = dict(model=name, steps=4, batch_size=4, log_every=1, sample_every=100, checkpoint_every=100,
                  sets=SMALL[name])
    train(tmp_path / "watched", data, holdout=0.25, **common)
    held = config(tmp_path / "watched")["data"]["holdout"]["indices"]
    train(tmp_path / "plain", without(data, held), **common)
    assert all("critic" in r for r in stats(tmp_path / "watched") if "losses" in r)
    assert not any("critic" in r for r in stats(tmp_path / "plain"))
    compare_runs(tmp_path / "watched", tmp_path / "plain")


def test_a_model_without_a_discriminator_score_trains_on_the_rest_and_says_so(tiny_models, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(TinyGAN, "discriminator_scores", lambda self, images: None)
    run = tmp_path / "run"
    train(run, random_images(16), steps=2, batch_size=4, holdout=0.25, log_every=1)
    assert config(run)["data"]["holdout"]["count"] == 4
    assert not any("critic" in r for r in stats(run))
    notes = [line for line in (run / "log.txt").read_text().splitlines() if "no discriminator score" in line]
    assert len(notes) == 1 and "diagnostics are skipped" in notes[0]


def test_overfit_ratio_is_none_where_train_and_fake_score_alike():
    assert overfit_ratio(1.0, 0.5, 0.0) == 0.5
    assert overfit_ratio(2.0, 2.0, -1.0) == 0.0
    assert overfit_ratio(0.3, 0.1, 0.3) is None
    assert overfit_ratio(float("nan"), 0.1, 0.3) is None


# -- the gradient norm -----------------------------------------------------------------------------
def test_penalty_and_norm_of_a_linear_critic():
    from medsyn_cli.nn.gradient_penalty import gradient_penalty, penalty_and_norm

    w = torch.full((1, 4, 4), 0.5)  # ||w|| = 2 for every interpolate

    def critic(x):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    gp, norm = penalty_and_norm(critic, real, fake)
    assert norm.item() == pytest.approx(2.0) and gp.item() == pytest.approx(1.0) and not norm.requires_grad
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(1.0)


# -- the report and the plot -----------------------------------------------------------------------
@pytest.fixture
def watched_run(tiny_models, tmp_path):
    run = tmp_path / "run"
    train(run, random_images(16), steps=6, batch_size=4, holdout=0.25, log_every=1, sets=["latent_dim=6"])
    with open(run / "stats.jsonl", "a") as fh:  # FID records as --eval-every writes them
        for step, fid in ((3, 210.0), (6, 190.0)):
            fh.write(json.dumps({"step": step, "epoch": step / 3, "fid": fid, "fid_images": 12, "best": True}) + "\n")
    return run


def test_the_report_shows_the_critic_scores_with_fid_and_how_to_read_them(watched_run):
    from medsyn_cli.report.build import build_report

    result = build_report(watched_run)
    page = result.path.read_text()
    assert "critic" in result.sections and result.sections.index("critic") == result.sections.index("fid") + 1
    section = page.split('<section id="critic">', 1)[1].split("</section>", 1)[0]
    assert "Is the critic memorising?" in section and "<img " in section
    assert "a train-holdout gap that opens" in section and "memorising its training images" in section
    assert "6 records of 4 images each" in section
    assert "--holdout 0.25" in page  # the command that reproduces the run


def test_plot_critic_writes_a_png_and_refuses_a_run_without_records(watched_run, tmp_path, capsys):
    from PIL import Image

    spec = importlib.util.spec_from_file_location("plot_critic", ROOT / "bench" / "plot_critic.py")
    plot_critic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot_critic)
    out = tmp_path / "critic.png"
    assert plot_critic.main([str(watched_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 400
    records, fid = plot_critic.read_run(watched_run)
    assert len(records) == 6 and fid == [(3, 210.0), (6, 190.0)]
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "stats.jsonl").write_text(json.dumps({"step": 1, "losses": {"loss_d": 1.0}}) + "\n")
    with pytest.raises(SystemExit, match="no critic records"):
        plot_critic.main([str(tmp_path / "bare")])
