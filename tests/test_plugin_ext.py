"""A third-party distribution (tests/plugin_ext_dist, pip-installed into a temp target) adds a file
format and a metric through the hooks: `medsyn eval histgap` and training on .sq8 files work with no
line of host code naming them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def sq8_site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("sq8-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "tests" / "plugin_ext_dist")],
        check=True, capture_output=True, text=True)
    return target


def _env(site: Path) -> dict:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def _write_sq8(site: Path, folder: Path, images: list[np.ndarray]) -> Path:
    sys.path.insert(0, str(site))
    try:
        from medsyn_sq8 import write_sq8
    finally:
        sys.path.remove(str(site))
    folder.mkdir()
    for i, pixels in enumerate(images):
        write_sq8(pixels[None].astype(np.float32) / 127.5 - 1.0, folder / f"{i:02d}.sq8")
    return folder


def test_plugin_metric_gets_its_command_and_reads_the_plugin_format(sq8_site, tmp_path):
    real = _write_sq8(sq8_site, tmp_path / "real", [np.full((16, 16), 64, np.uint8)] * 4)
    fake = tmp_path / "fake"
    fake.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16), 192, np.uint8)).save(fake / f"{i}.png")
    r = run_cli("eval", "histgap", str(real), str(fake), "--json", "--histgap-bins", "8", env=_env(sq8_site))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["metrics"] == {"histgap": pytest.approx(2.0)}  # all of REAL in bin 2, all of FAKE in bin 6
    assert out["settings"]["histgap"] == {"bins": 8} and out["real"]["kinds"] == ["sq8"]
    same = run_cli("eval", "histgap", str(real), str(real), env=_env(sq8_site))
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[0].split() == ["histgap", "0"]
    listed = run_cli("eval", "--help", env=_env(sq8_site))
    assert "histgap" in listed.stdout


def test_training_reads_the_plugin_format(sq8_site, tmp_path):
    rng = np.random.default_rng(0)
    data = _write_sq8(sq8_site, tmp_path / "scans", [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(8)])
    out = tmp_path / "run"
    r = run_cli("train", "dcgan", "--data", str(data), "--res", "64", "--steps", "1", "-b", "4", "--device", "cpu",
                "--set", "ngf=8", "--set", "ndf=8", "--out", str(out), env=_env(sq8_site))
    assert r.returncode == 0, r.stderr
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert stats and stats[-1]["step"] == 1
    info = run_cli("data", "info", str(data / "00.sq8"), "--json", env=_env(sq8_site))
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["kind"] == "sq8"


def test_without_the_plugin_the_format_is_refused(sq8_site, tmp_path):
    data = _write_sq8(sq8_site, tmp_path / "scans", [np.zeros((64, 64), np.uint8)] * 2)
    r = run_cli("train", "dcgan", "--data", str(data), "--res", "64", "--steps", "1", "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "no readable image" in r.stderr
