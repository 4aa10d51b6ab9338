"""Shared fixtures. Every test gets its own MEDSYN_HOME so no test touches the user's dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
FID_WEIGHTS = SHARED / "weights" / "fid-inception-pool3.pth"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("MEDSYN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: set MEDSYN_SLOW=1 (make test-all) to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def amp_probe_record() -> dict:
    """``--amp auto``'s bf16 measurement, taken once per session (a real one) and given to every test's
    home: each process of a test then chooses the same precision, as a user's runs on one machine do
    (a fresh measurement per process could fall either side of the threshold on a busy machine)."""
    from medsyn_cli.training import device

    if device.cpu_bf16() is None:
        return {}
    return {device._cpu_key(): {"speedup": round(device.measure_bf16_speedup(), 3), "threads": 0,
                                "measured": "once for this test session"}}


@pytest.fixture(autouse=True)
def medsyn_home(tmp_path_factory, monkeypatch, amp_probe_record) -> Path:
    home = tmp_path_factory.mktemp("medsyn-home")
    monkeypatch.setenv("MEDSYN_HOME", str(home))
    monkeypatch.delenv("MEDSYN_DEBUG", raising=False)
    if amp_probe_record:
        from medsyn_cli.training import amp_probe

        amp_probe.write_probe(amp_probe.probe_path(), amp_probe_record)
    return home


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside a CI/dev checkout)")
    return SHARED_DATA


@pytest.fixture
def fid_weights() -> Path:
    if not FID_WEIGHTS.is_file():
        pytest.skip(f"FID Inception weights not found at {FID_WEIGHTS}")
    return FID_WEIGHTS


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: int = 600,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m medsyn_cli ARGS`` as a user would; returns the completed process."""
    full_env = dict(os.environ)
    full_env.setdefault("MEDSYN_PROGRESS", "0")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "medsyn_cli", *map(str, args)],
        input=input, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread avoids waiting on a busy second core (much faster here). Use as
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def spy_diff_augment(monkeypatch, module) -> list:
    """Replace ``module.diff_augment`` by a differentiable stand-in (a flip) that records each call as
    (batch size, whether the images carry a graph, policy); returns the list of calls."""
    calls = []

    def spy(images, policy):
        calls.append((images.shape[0], images.requires_grad, policy))
        return images.flip(-1)

    monkeypatch.setattr(module, "diff_augment", spy)
    return calls
