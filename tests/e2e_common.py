"""What the every-model end-to-end tests share: the model list from the registry and the CLI checks.

The tests live in two files (``test_e2e_every_generator.py``, ``test_e2e_every_translator.py``) so
that the test runner's two workers can take one each: together they are the slowest tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import FID_WEIGHTS, SHARED_DATA, run_cli


def models(task: str) -> list[tuple[str, int]]:
    """(name, resolution) of every registered model of ``task``, at 64² where it offers it."""
    from medsyn_cli.registry import all_models

    return [(name, 64 if 64 in spec.resolutions else min(spec.resolutions))
            for name, spec in all_models().items() if spec.task == task]


def need_shared() -> None:
    if not SHARED_DATA.is_dir() or not FID_WEIGHTS.is_file():
        pytest.skip(f"real data or FID weights not found under {SHARED_DATA.parent}")


def ok(proc) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def fid(real: Path, fake: Path) -> dict:
    result = json.loads(ok(run_cli("eval", "fid", real, fake, "--weights", FID_WEIGHTS, "--json",
                                   "--device", "cpu", "--no-cache")))
    assert math.isfinite(result["metrics"]["fid"]) and result["metrics"]["fid"] >= 0
    return result


def train_and_check_scoring(name: str, data: Path, res: int, run: Path) -> dict:
    """Train a few steps scoring FID; check the best weights were kept. Returns the scored record."""
    ok(run_cli("train", name, "--data", data, "--res", res, "--steps", 2, "-b", 2, "--device", "cpu",
               "--eval-every", 2, "--fid-weights", FID_WEIGHTS, "--out", run))
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    scored = [r for r in records if "fid" in r]
    assert [r["step"] for r in scored] == [2] and math.isfinite(scored[0]["fid"])
    assert (run / "best.safetensors").is_file() and (run / "weights.safetensors").is_file()
    assert (run / "fid.png").is_file()
    return scored[0]
