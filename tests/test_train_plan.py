"""`medsyn train` settings: precedence (flag > --config > MEDSYN_* > config.toml > default), model
settings via --set/--config/--lr, --dry-run, and the input errors (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from medsyn_cli.errors import InputError
from medsyn_cli.training.plan import DEFAULT_STEPS, TrainFlags, resolve_plan
from test_train_tiny import random_images, tiny_models, train  # noqa: F401


def plan(tmp_path, **kw):
    kw.setdefault("out", str(tmp_path / "run"))
    return resolve_plan(TrainFlags(**{"model": "tiny-gan", **kw}))


def write_user_config(home, text: str) -> None:
    cfg = home / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text(text)


def test_defaults(tiny_models, tmp_path):
    p = plan(tmp_path)
    s = p.settings
    assert (p.res, p.channels, p.data) == (16, 1, "phantom:ct")
    assert (s.steps, s.epochs, s.batch_size, s.seed, s.device) == (DEFAULT_STEPS, None, 4, 0, "auto")
    assert (s.checkpoint_every, s.sample_every, s.log_every, s.ema_decay) == (500, 500, 50, 0.999)
    assert plan(tmp_path, model="tiny-translator").data == "phantom:brain"


def test_flag_beats_env_beats_user_config_beats_default(tiny_models, tmp_path, medsyn_home, monkeypatch):
    write_user_config(medsyn_home, "[train]\nbatch_size = 6\nseed = 11\nlog_every = 7\ndevice = 'cpu'\n")
    monkeypatch.setenv("MEDSYN_SEED", "22")
    monkeypatch.setenv("MEDSYN_LOG_EVERY", "9")
    p = plan(tmp_path, log_every=3)
    assert p.settings.batch_size == 6  # config.toml only
    assert p.settings.seed == 22  # env over config.toml
    assert p.settings.log_every == 3  # flag over env
    assert p.settings.device == "cpu"
    assert p.settings.checkpoint_every == 500  # nothing set: the default


def test_config_file_sets_training_and_model_settings(tiny_models, tmp_path, monkeypatch):
    cfg = tmp_path / "exp.toml"
    cfg.write_text("[train]\nsteps = 123\nsample_every = 5\n\n[model]\nlatent_dim = 4\nlr = 0.5\n")
    monkeypatch.setenv("MEDSYN_SAMPLE_EVERY", "99")
    p = plan(tmp_path, config_file=str(cfg))
    assert p.settings.steps == 123 and p.settings.sample_every == 5  # the file counts as a flag
    assert p.config.latent_dim == 4 and p.config.lr == 0.5
    p = plan(tmp_path, config_file=str(cfg), sets=["latent_dim=6", "lr=0.25"])
    assert p.config.latent_dim == 6 and p.config.lr == 0.25  # --set over the file
    p = plan(tmp_path, config_file=str(cfg), sets=["lr=0.25"], lr=0.125)
    assert p.config.lr == 0.125  # --lr over --set


def test_steps_or_epochs_not_both(tiny_models, tmp_path):
    with pytest.raises(InputError, match="not both"):
        plan(tmp_path, steps=5, epochs=2)
    assert plan(tmp_path, epochs=2).settings.steps is None


@pytest.mark.parametrize("kw, message", [
    ({"res": 48}, "does not support --res 48"),
    ({"channels": 2}, "does not support --channels 2"),
    ({"sets": ["nope=1"]}, "unknown model setting 'nope'"),
    ({"sets": ["latent_dim=abc"]}, "expected int"),
    ({"device": "tpu"}, "unknown --device"),
    ({"batch_size": 0}, "batch-size must be a positive integer"),
    ({"model": "no-such-model"}, "unknown model 'no-such-model'"),
])
def test_bad_settings_are_input_errors(tiny_models, tmp_path, kw, message):
    with pytest.raises(InputError, match=message):
        plan(tmp_path, **kw)


def test_existing_output_needs_resume_or_force(tiny_models, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        plan(tmp_path)
    with pytest.raises(InputError, match="not a medsyn run directory"):
        plan(tmp_path, force=True)  # --force never deletes a folder that is not a run
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="no config.json"):
        plan(tmp_path, resume=True)


def test_force_starts_a_run_over(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(8), steps=2)
    (out / "samples" / "stale.png").write_bytes(b"x")
    result, _ = train(out, random_images(8), steps=1, force=True)
    assert result.step == 1 and not (out / "samples" / "stale.png").exists()


def test_resume_keeps_the_runs_identity(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(8), steps=2, batch_size=4, seed=5, sample_every=7)
    p = plan(tmp_path, resume=True, steps=4)
    assert (p.settings.batch_size, p.settings.seed, p.settings.sample_every) == (4, 5, 7)
    assert p.settings.steps == 4
    assert plan(tmp_path, resume=True).settings.steps == 2  # no length given: the recorded total
    with pytest.raises(InputError, match="trained with --batch-size 4, not 8"):
        plan(tmp_path, resume=True, batch_size=8)
    with pytest.raises(InputError, match="trained with --res 16, not 32"):
        plan(tmp_path, resume=True, res=32)
    with pytest.raises(InputError, match="trains 'tiny-gan', not 'tiny-translator'"):
        plan(tmp_path, resume=True, model="tiny-translator")
    assert plan(tmp_path, resume=True, lr=1e-4).config_changes == {"lr": [1e-3, 1e-4]}


def test_resume_with_a_new_lr_uses_it(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(8), steps=2)
    _, model = train(out, random_images(8), steps=3, resume=True, lr=2e-4)
    assert all(g["lr"] == 2e-4 for opt in model.optimizers.values() for g in opt.param_groups)
    assert all(opt.state for opt in model.optimizers.values())  # Adam moments came from the checkpoint
    assert "lr 0.001 -> 0.0002" in (out / "log.txt").read_text()


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "dcgan", "--res", "64", "--out", out, "--dry-run", "--set", "ngf=32", "--steps", "77",
                env={"MEDSYN_BATCH_SIZE": "16"})
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["model"] == "dcgan" and cfg["res"] == 64 and cfg["model_config"]["ngf"] == 32
    assert cfg["training"]["steps"] == 77 and cfg["training"]["batch_size"] == 16
    assert cfg["data"]["path"] == "phantom:ct"
    assert not out.exists()


def test_cli_input_errors_exit_2_with_one_line(tmp_path):
    r = run_cli("train", "dcgan", "--res", "48", "--out", tmp_path / "x", "--dry-run")
    assert r.returncode == 2 and "does not support --res 48" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()
    r = run_cli("train", "nosuchgan", "--out", tmp_path / "x")
    assert r.returncode == 2 and "unknown model 'nosuchgan'" in r.stderr
