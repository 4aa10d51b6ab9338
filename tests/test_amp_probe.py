"""The measurement behind ``--amp auto`` on the CPU: bf16 against fp32 on a small conv and matmul workload,
taken once per CPU model and torch version, kept in the user cache dir, listed and cleared by ``medsyn cache``."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from conftest import run_cli
from medsyn_cli.training import amp_probe
from medsyn_cli.training import device as device_mod


@pytest.fixture
def counted(monkeypatch, medsyn_home):
    """A fake measurement that counts its calls; no measurement kept yet (conftest gives every home the
    session's), and the in-process memo starts empty."""
    shutil.rmtree(medsyn_home / "cache", ignore_errors=True)
    calls = []

    def measure() -> float:
        calls.append(1)
        return 1.7

    monkeypatch.setattr(device_mod, "measure_bf16_speedup", measure)
    monkeypatch.setattr(device_mod, "_SPEEDUPS", {})
    return calls


def test_measured_once_then_kept_in_the_cache_dir(counted, monkeypatch, medsyn_home):
    assert device_mod.bf16_speedup() == 1.7 and device_mod.bf16_speedup() == 1.7
    assert len(counted) == 1
    path = amp_probe.probe_path()
    assert path.parent == medsyn_home / "cache"
    (key, record), = json.loads(path.read_text()).items()
    assert key == device_mod._cpu_key() and "torch" in key
    assert record["speedup"] == 1.7 and record["threads"] >= 1 and record["measured"]
    monkeypatch.setattr(device_mod, "_SPEEDUPS", {})  # a new process reads the file
    assert device_mod.bf16_speedup() == 1.7 and len(counted) == 1


def test_another_cpu_or_torch_is_measured_again_and_kept_beside(counted, monkeypatch):
    device_mod.bf16_speedup()
    monkeypatch.setattr(device_mod, "_cpu_key", lambda: "Other CPU | amx | torch 9")
    device_mod.bf16_speedup()
    assert len(counted) == 2 and len(amp_probe.probe_records()) == 2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"KEY": {"speedup": "fast"}}'])
def test_a_damaged_file_means_measuring_again(counted, content):
    path = amp_probe.probe_path()
    path.parent.mkdir(parents=True)
    path.write_text(content.replace("KEY", device_mod._cpu_key()))
    assert device_mod.bf16_speedup() == 1.7 and len(counted) == 1
    assert json.loads(path.read_text())[device_mod._cpu_key()]["speedup"] == 1.7


def test_an_unwritable_cache_dir_still_gives_a_measurement(counted, medsyn_home):
    (medsyn_home / "cache").write_text("a file where the cache dir should be")
    assert device_mod.bf16_speedup() == 1.7
    assert amp_probe.probe_records() == {}


def test_the_real_measurement_is_a_positive_ratio():
    speedup = device_mod.measure_bf16_speedup()
    assert math.isfinite(speedup) and 0.05 < speedup < 50


def test_cache_ls_lists_it_and_clear_removes_it(counted, medsyn_home):
    device_mod.bf16_speedup()
    listing = json.loads(run_cli("cache", "ls", "--json").stdout)
    assert listing["amp_probe"]["path"] == str(amp_probe.probe_path())
    assert listing["amp_probe"]["measurements"][device_mod._cpu_key()]["speedup"] == 1.7
    assert "bf16 measured 1.7x fp32" in run_cli("cache", "ls").stderr
    done = json.loads(run_cli("cache", "clear", "--yes", "--json").stdout)
    assert done["amp_probe_removed"] is True and not amp_probe.probe_path().exists()
    assert json.loads(run_cli("cache", "clear", "--yes", "--json").stdout)["amp_probe_removed"] is False
