"""Exact resume: N steps then a resumed N steps equal 2N steps straight, bit for bit (CPU, fixed seed);
a run killed with SIGKILL leaves a loadable checkpoint that ``--resume`` continues from."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from medsyn_cli.training.checkpoint import load_checkpoint
from test_train_tiny import random_images, train

torch.set_num_threads(1)
ENV = {"OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}
#: Narrow networks (the architecture is the paper's, only the widths shrink) keep each step fast.
SMALL = ["ngf=8", "ndf=8", "latent_dim=16"]


@pytest.fixture
def ct_folder(shared_data, tmp_path) -> Path:
    """16 real COVID-CT slices copied into a temporary folder."""
    src = shared_data / "covid-ct-noncovid"
    folder = tmp_path / "ct"
    folder.mkdir()
    for path in sorted(p for p in src.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:16]:
        shutil.copy(path, folder / path.name)
    return folder


def assert_same(a, b, where: str = "") -> None:
    """Recursive exact equality of checkpoint contents (tensors with torch.equal)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def compare_runs(straight: Path, resumed: Path) -> None:
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    b = load_checkpoint(resumed / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"]
    assert_same(a["model_state"]["networks"], b["model_state"]["networks"], "networks")
    assert_same(a["model_state"]["optimizers"], b["model_state"]["optimizers"], "optimizers")
    assert_same(a["model_state"]["extra"], b["model_state"]["extra"], "extra")
    assert_same(a["rng"], b["rng"], "rng")


#: hagan narrowed; its warm-up ends at step 2, so the resumed half runs DiffAugment and AttnMix.
HAGAN_SMALL = ["g_channels=8", "d_channels=8", "pixel_channels=4", "max_channels=32", "latent_dim=16",
               "attn_max_res=16", "warmup_steps=2"]


@pytest.mark.parametrize("model,sets", [("dcgan", SMALL), ("wgan", SMALL),
                                        ("dcgan", SMALL + ["augment=flip,translate"]), ("hagan", HAGAN_SMALL)],
                         ids=["dcgan", "wgan", "dcgan-augment", "hagan"])
def test_resume_is_bit_exact_in_process(model, sets, tmp_path):
    # 12 images, batch 4: the resume point (step 3) is an epoch boundary and step 4 starts a new epoch.
    data = random_images(12, res=64)
    common = dict(model=model, batch_size=4, sets=sets, log_every=1, checkpoint_every=100, sample_every=2)
    train(tmp_path / "straight", data, steps=6, **common)
    train(tmp_path / "resumed", data, steps=3, **common)
    result, _ = train(tmp_path / "resumed", data, steps=6, resume=True, **common)
    assert result.step == 6
    compare_runs(tmp_path / "straight", tmp_path / "resumed")
    # The stats of the resumed run are those of the straight run (the loss values included).
    assert (tmp_path / "straight" / "stats.jsonl").read_text().count("\n") == 6
    strip = [__import__("json").loads(x) for x in (tmp_path / "resumed" / "stats.jsonl").read_text().splitlines()]
    ref = [__import__("json").loads(x) for x in (tmp_path / "straight" / "stats.jsonl").read_text().splitlines()]
    assert [r["losses"] for r in strip] == [r["losses"] for r in ref]


def test_resume_is_bit_exact_through_the_cli_on_real_images(ct_folder, tmp_path):
    args = ["--data", ct_folder, "--res", "64", "--batch-size", "4", "--device", "cpu", "--seed", "3",
            *sum((["--set", s] for s in SMALL), [])]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for out, steps, extra in ((straight, 4, []), (resumed, 2, []), (resumed, 4, ["--resume"])):
        proc = run_cli("train", "dcgan", *args, "--out", out, "--steps", steps, *extra, env=ENV)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(out)
    compare_runs(straight, resumed)
    config = __import__("json").loads((resumed / "config.json").read_text())
    assert [r["step"] for r in config["resumes"]] == [2]


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"training ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for training")
        time.sleep(0.05)


def _start(ct_folder: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "medsyn_cli", "train", "dcgan", "--data", str(ct_folder), "--res", "64",
           "--out", str(out), "--steps", "200", "--batch-size", "4", "--checkpoint-every", "2",
           "--log-every", "1", "--device", "cpu", *sum((["--set", s] for s in SMALL), [])]
    return subprocess.Popen(cmd, env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*.pt"))


def test_sigkill_leaves_a_loadable_checkpoint_that_resume_continues(ct_folder, tmp_path):
    out = tmp_path / "run"
    proc = _start(ct_folder, out)
    _wait_for(lambda: len(_checkpoints(out)) >= 3, proc)  # several checkpoints written, more on the way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    raw = torch.load(out / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    step = raw["step"]
    newest = int(_checkpoints(out)[-1].stem.split("-")[1])
    # The step file is written before latest.pt: a kill between the two leaves latest one checkpoint behind.
    assert step in (newest, newest - 2) and step >= 4 and step % 2 == 0
    k = step + 2
    proc = run_cli("train", "dcgan", "--out", out, "--resume", "--steps", k, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert f"step {step} -> {k}" in proc.stderr
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == k
    steps = [__import__("json").loads(x)["step"] for x in (out / "stats.jsonl").read_text().splitlines()]
    assert steps == list(range(1, k + 1))  # records past the checkpoint were dropped and trained again
    assert (out / "weights.safetensors").exists()


def test_sigterm_saves_a_checkpoint_and_exits_143_with_a_resume_hint(ct_folder, tmp_path):
    out = tmp_path / "run"
    proc = _start(ct_folder, out)
    _wait_for(lambda: len(_checkpoints(out)) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stdout == ""
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("medsyn: SIGTERM at step ") and f"medsyn train dcgan --out {out} --resume" in last
    step = int(last.split("at step ")[1].split(":")[0])
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == step
