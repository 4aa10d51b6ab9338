"""``--amp`` auto (the default): bf16 autocast on CUDA and on CPUs with native bf16 where it measures faster
than fp32, fp32 elsewhere; the choice and its reason are in the run's config and log line; ``--amp/--no-amp``
force it. The measurement itself: tests/test_amp_probe.py."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from e2e_common import ok
from medsyn_cli.training import device as device_mod
from medsyn_cli.training.plan_values import amp_mode

CPU = torch.device("cpu")


@pytest.mark.parametrize("native,speedup,expected", [
    ("avx512_bf16", 1.9, (True, "auto: CPU with avx512_bf16, bf16 measured 1.90x fp32")),
    ("amx", 3.0, (True, "auto: CPU with amx, bf16 measured 3.00x fp32")),
    ("avx512_bf16", 0.57, (False, "auto: CPU with avx512_bf16, but bf16 measured 0.57x fp32")),
    ("avx512_bf16", 1.1, (False, "auto: CPU with avx512_bf16, but bf16 measured 1.10x fp32")),  # too small a gain
    (None, None, (False, "auto: CPU without native bf16"))])
def test_auto_follows_the_cpus_native_bf16_and_its_measured_speed(monkeypatch, native, speedup, expected):
    def measured() -> float:
        assert native is not None, "no native bf16: nothing to measure"
        return speedup

    monkeypatch.setattr(device_mod, "cpu_bf16", lambda: native)
    monkeypatch.setattr(device_mod, "bf16_speedup", measured)
    assert device_mod.amp_choice(CPU, None) == expected


def test_the_flags_force_it_either_way(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_bf16", lambda: None)
    assert device_mod.amp_choice(CPU, True) == (True, "--amp")
    monkeypatch.setattr(device_mod, "cpu_bf16", lambda: "amx")
    monkeypatch.setattr(device_mod, "bf16_speedup", lambda: 0.5)
    assert device_mod.amp_choice(CPU, True) == (True, "--amp")  # forced on even where it measured slower
    monkeypatch.setattr(device_mod, "bf16_speedup", lambda: 2.0)
    assert device_mod.amp_choice(CPU, False) == (False, "--no-amp")
    assert device_mod.amp_choice(torch.device("cuda"), None) == (True, "auto: CUDA")
    assert device_mod.amp_choice(torch.device("mps"), None)[0] is False


def test_the_cpu_probe_agrees_with_the_cpu_flags():
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    found = device_mod.cpu_bf16()
    assert (found is not None) == bool({"avx512_bf16", "amx_bf16"} & flags)


@pytest.mark.parametrize("text,value", [("auto", None), ("AUTO", None), ("on", True), ("0", False), (True, True)])
def test_amp_setting_from_files_and_variables(text, value):
    assert amp_mode(text) == value
    with pytest.raises(ValueError):
        amp_mode("maybe")


def test_the_run_records_what_it_chose_and_why_and_resume_stays_auto(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "dcgan", "--res", 64, "-b", 2, "--steps", 1, "--out", run))
    training = json.loads((run / "config.json").read_text())["training"]
    on, reason = device_mod.amp_choice(CPU, None)  # this machine's flags and (cached) measurement
    assert training["amp_setting"] == "auto" and (training["amp"], training["amp_reason"]) == (on, reason)
    assert reason.startswith("auto: CPU")
    first = (run / "log.txt").read_text().splitlines()[0]
    assert ("bf16 autocast" if on else "fp32") in first and reason in first
    ok(run_cli("train", "dcgan", "--out", run, "--resume", "--steps", 2))
    assert json.loads((run / "config.json").read_text())["training"]["amp_setting"] == "auto"

    forced = tmp_path / "forced"
    ok(run_cli("train", "dcgan", "--res", 64, "-b", 2, "--steps", 1, "--no-amp", "--out", forced))
    training = json.loads((forced / "config.json").read_text())["training"]
    assert training["amp"] is False and training["amp_reason"] == "--no-amp"
