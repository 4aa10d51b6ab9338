"""``medsyn train`` from the shell: --dry-run, settings precedence, one-line errors, the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

ENV = {"OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}


def dry(*args: str, env: dict | None = None, cwd: Path | None = None) -> dict:
    proc = run_cli("train", *args, "--dry-run", env={**ENV, **(env or {})}, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_dry_run_prints_the_resolved_config_and_writes_nothing(tmp_path):
    cfg = dry("dcgan", "--res", "128", "--steps", "7", "--set", "ngf=16", "--lr", "1e-3", cwd=tmp_path)
    assert cfg["model"] == "dcgan" and cfg["res"] == 128 and cfg["channels"] == 1
    assert cfg["training"]["steps"] == 7 and cfg["training"]["batch_size"] == 64  # the model's default
    assert cfg["model_config"]["ngf"] == 16 and cfg["model_config"]["lr"] == 1e-3
    assert cfg["data"]["path"] == "phantom:ct" and cfg["out"] == "runs/dcgan-128"
    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.parametrize("args, needle", [
    (["nosuchgan"], "unknown model 'nosuchgan'"),
    (["dcgan", "--res", "48"], "does not support --res 48"),
    (["dcgan", "--set", "nosuch=1"], "nosuch"),
    (["dcgan", "--steps", "5", "--epochs", "2"], "not both"),
    (["dcgan", "--device", "tpu"], "unknown --device 'tpu'"),
])
def test_bad_invocations_exit_2_with_one_line(args, needle, tmp_path):
    proc = run_cli("train", *args, "--out", tmp_path / "r", "--dry-run", env=ENV)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert proc.stderr.startswith("medsyn: error: ")
    assert not (tmp_path / "r").exists()


def test_an_existing_output_needs_resume_or_force(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_cli("train", "dcgan", "--out", out, "--steps", "1", env=ENV)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "exists and is not empty" in proc.stderr and "--resume" in proc.stderr
    # --force only ever deletes a medsyn run directory, never an arbitrary folder.
    proc = run_cli("train", "dcgan", "--out", out, "--steps", "1", "--force", env=ENV)
    assert proc.returncode == 2 and "not a medsyn run directory" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
    proc = run_cli("train", "dcgan", "--out", tmp_path / "none", "--resume", env=ENV)
    assert proc.returncode == 2 and "config.json" in proc.stderr


def test_run_directory_contents(tmp_path):
    from safetensors import safe_open
    from PIL import Image

    out = tmp_path / "run"
    proc = run_cli("train", "dcgan", "--data", "phantom:ct?n=16", "--res", "64", "--out", out, "--steps", "4",
                   "--batch-size", "4", "--set", "ngf=8", "--set", "ndf=8", "--sample-every", "2",
                   "--log-every", "2", "--checkpoint-every", "2", "--device", "cpu", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {"config.json", "stats.jsonl", "log.txt", "loss.png", "weights.safetensors", "checkpoints/latest.pt",
            "checkpoints/step-000002.pt", "checkpoints/step-000004.pt", "samples/step-000002.png",
            "samples/step-000004.png"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "medsyn-run-1" and cfg["training"]["steps"] == 4 and cfg["data"]["count"] == 16
    assert cfg["data"]["fingerprint"] and cfg["versions"]["torch"]
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [2, 4] and set(stats[0]["losses"]) >= {"loss_d", "loss_g"}
    grid = Image.open(out / "samples" / "step-000004.png")
    assert grid.size[0] > 64 * 7  # an 8x8 grid of 64-pixel images
    assert Image.open(out / "loss.png").size[0] > 100
    with safe_open(str(out / "weights.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        assert any(k.startswith("generator.") for k in fh.keys())
        assert not any(k.startswith("discriminator.") for k in fh.keys())
    assert {k: meta[k] for k in ("format", "model", "task", "res", "channels", "step")} == {
        "format": "medsyn-weights-1", "model": "dcgan", "task": "unconditional", "res": "64", "channels": "1",
        "step": "4"}
    assert json.loads(meta["config"])["ngf"] == 8 and "version" in meta and "intensity" in meta
    # Nothing on stdout but the run directory; the log went to stderr and log.txt.
    assert "step 4/4" in proc.stderr and "step 4/4" in (out / "log.txt").read_text()
