"""`medsyn train` settings, in process (``resolve_plan``) and from the shell: precedence (flag > --config >
MEDSYN_* > config.toml > default), model settings via --set/--config/--lr, --dry-run, an existing output,
and the input errors (exit 2, one line)."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from medsyn_cli.errors import InputError
from medsyn_cli.training.plan import DEFAULT_STEPS, TrainFlags, resolve_plan
from test_train_tiny import random_images, tiny_models, train  # noqa: F401


ENV = {"OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}


def dry(*args, env: dict | None = None, cwd=None) -> dict:
    proc = run_cli("train", *args, "--dry-run", env={**ENV, **(env or {})}, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


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


def test_settings_precedence_flag_over_config_file_over_env_over_user_config(tmp_path, medsyn_home):
    (medsyn_home / "config").mkdir()
    (medsyn_home / "config" / "config.toml").write_text(
        "[train]\nbatch_size = 5\nseed = 11\nlog_every = 3\ncheckpoint_every = 9\nsteps = 99\n")
    t = dry("dcgan", "--out", tmp_path / "r")["training"]
    assert {k: t[k] for k in ("batch_size", "seed", "log_every", "checkpoint_every", "steps")} == {
        "batch_size": 5, "seed": 11, "log_every": 3, "checkpoint_every": 9, "steps": 99}
    env = {"MEDSYN_BATCH_SIZE": "6", "MEDSYN_SEED": "12", "MEDSYN_LOG_EVERY": "4", "MEDSYN_LR": "0.005"}
    file = tmp_path / "train.toml"
    file.write_text("[train]\nbatch_size = 7\nseed = 13\n[model]\nngf = 24\nlr = 0.003\n")
    t = dry("dcgan", "--out", tmp_path / "r", env=env)
    assert (t["training"]["batch_size"], t["training"]["seed"], t["training"]["log_every"]) == (6, 12, 4)
    assert t["model_config"]["lr"] == 0.005 and t["training"]["checkpoint_every"] == 9
    t = dry("dcgan", "--out", tmp_path / "r", "--config", file, env=env)
    assert (t["training"]["batch_size"], t["training"]["seed"], t["training"]["log_every"]) == (7, 13, 4)
    assert t["model_config"]["lr"] == 0.003 and t["model_config"]["ngf"] == 24
    t = dry("dcgan", "--out", tmp_path / "r", "--config", file, "--batch-size", "8", "--set", "lr=0.002",
            "--set", "ngf=40", env=env)
    assert t["training"]["batch_size"] == 8 and t["model_config"]["lr"] == 0.002 and t["model_config"]["ngf"] == 40
    t = dry("dcgan", "--out", tmp_path / "r", "--config", file, "--set", "lr=0.002", "--lr", "0.001", env=env)
    assert t["model_config"]["lr"] == 0.001


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
    # The same from the shell: exit 2, one line, a hint.
    proc = run_cli("train", "dcgan", "--out", out, "--steps", "1", env=ENV)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "exists and is not empty" in proc.stderr and "--resume" in proc.stderr
    proc = run_cli("train", "dcgan", "--out", out, "--steps", "1", "--force", env=ENV)
    assert proc.returncode == 2 and "not a medsyn run directory" in proc.stderr
    assert (out / "notes.txt").read_text() == "mine"
    proc = run_cli("train", "dcgan", "--out", tmp_path / "none", "--resume", env=ENV)
    assert proc.returncode == 2 and "config.json" in proc.stderr


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
    # A tuple setting comes back from config.json as a list: unchanged, not reported as a change.
    assert plan(tmp_path, resume=True).config_changes == {}


def test_resume_with_a_new_lr_uses_it(tiny_models, tmp_path):
    out = tmp_path / "run"
    train(out, random_images(8), steps=2)
    _, model = train(out, random_images(8), steps=3, resume=True, lr=2e-4)
    assert all(g["lr"] == 2e-4 for opt in model.optimizers.values() for g in opt.param_groups)
    assert all(opt.state for opt in model.optimizers.values())  # Adam moments came from the checkpoint
    assert "(lr 0.001 -> 0.0002)" in (out / "log.txt").read_text()  # only what changed


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path):
    cfg = dry("dcgan", "--res", "128", "--steps", "7", "--set", "ngf=16", "--lr", "1e-3", cwd=tmp_path)
    assert cfg["model"] == "dcgan" and cfg["res"] == 128 and cfg["channels"] == 1
    assert cfg["training"]["steps"] == 7 and cfg["training"]["batch_size"] == 64  # the model's default
    assert cfg["model_config"]["ngf"] == 16 and cfg["model_config"]["lr"] == 1e-3
    assert cfg["data"]["path"] == "phantom:ct" and cfg["out"] == "runs/dcgan-128"
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "run"
    cfg = dry("dcgan", "--res", "64", "--out", out, "--set", "ngf=32", "--steps", "77", env={"MEDSYN_BATCH_SIZE": "16"})
    assert cfg["model"] == "dcgan" and cfg["res"] == 64 and cfg["model_config"]["ngf"] == 32
    assert cfg["training"]["steps"] == 77 and cfg["training"]["batch_size"] == 16
    assert cfg["data"]["path"] == "phantom:ct"
    assert not out.exists()


@pytest.mark.parametrize("args, needle, dry_run", [
    (["nosuchgan"], "unknown model 'nosuchgan'", True),
    (["nosuchgan"], "unknown model 'nosuchgan'", False),
    (["dcgan", "--res", "48"], "does not support --res 48", True),
    (["dcgan", "--set", "nosuch=1"], "nosuch", True),
    (["dcgan", "--steps", "5", "--epochs", "2"], "not both", True),
    (["dcgan", "--device", "tpu"], "unknown --device 'tpu'", True),
])
def test_bad_invocations_exit_2_with_one_line(args, needle, dry_run, tmp_path):
    proc = run_cli("train", *args, "--out", tmp_path / "r", *(["--dry-run"] if dry_run else []), env=ENV)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert proc.stderr.startswith("medsyn: error: ")
    assert not (tmp_path / "r").exists()


def test_a_model_with_an_epoch_schedule_trains_its_schedule_by_default(tmp_path):
    from medsyn_cli.training.plan import schedule_epochs

    cyclegan = plan(tmp_path, model="cyclegan", data="phantom:brain")
    assert (cyclegan.settings.steps, cyclegan.settings.epochs) == (None, 200)  # 100 + 100, the paper's
    short = plan(tmp_path, model="sag-gan", data="phantom:brain", sets=["n_epochs=4", "n_epochs_decay=2"])
    assert (short.settings.steps, short.settings.epochs) == (None, 6)
    explicit = plan(tmp_path, model="sag-gan", data="phantom:brain", steps=50)
    assert (explicit.settings.steps, explicit.settings.epochs) == (50, None)
    assert schedule_epochs(object()) is None
