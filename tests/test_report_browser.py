"""The report page in a real browser: headless Chromium (Debian's package; `.ci/run` installs it)
loads it from disk, every image must decode, nothing may be requested from the network, no script
may fail, the grid slider must work, and a screenshot is taken (kept in $MEDSYN_SCREENSHOTS if set).

dcgan, hagan and sag-gan each train 2 steps at 64x64 with tiny widths on 16 phantoms first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from browser import find_chromium, inspect_page

TINY = {
    "dcgan": ("phantom:ct?n=16", ["ngf=8", "ndf=8"]),
    "hagan": ("phantom:ct?n=16", ["g_channels=8", "d_channels=8", "pixel_channels=4", "max_channels=32"]),
    "sag-gan": ("phantom:brain?n=16", ["ngf=4", "ndf=4", "attention_ngf=4", "se_reduction=4", "n_blocks=1"]),
}


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    return path


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny runs on a shared 2-core machine
    yield
    torch.set_num_threads(before)


def keep(shot: Path) -> None:
    folder = os.environ.get("MEDSYN_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def train_tiny(model: str, out: Path) -> None:
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.trainer import run_training

    data, sets = TINY[model]
    plan = resolve_plan(TrainFlags(model=model, data=data, res=64, out=str(out), steps=2, batch_size=4,
                                   sample_every=1, log_every=1, checkpoint_every=2, device="cpu", sets=sets))
    assert run_training(plan).exit_code == 0


@pytest.mark.parametrize("model", list(TINY))
def test_report_renders_in_headless_chromium(model, chromium, tmp_path, one_thread):
    from medsyn_cli.report.build import build_report

    run = tmp_path / model
    train_tiny(model, run)
    result = build_report(run)
    seen = inspect_page(chromium, result.path, tmp_path / f"report-{model}.png")
    keep(seen["screenshot"])

    assert seen["title"] == f"medsyn report: {model} {model}"
    assert len(seen["images"]) == result.images >= 3  # loss curves + 2 grids (+ translations)
    undecoded = [i["alt"] for i in seen["images"] if not (i["complete"] and i["width"] > 0)]
    assert undecoded == []
    assert {i["scheme"] for i in seen["images"]} == {"data"}
    network = [u for u in seen["requests"] if not (u.startswith("data:") or u == seen["url"])]
    assert network == []
    assert seen["errors"] == []
    assert seen["slider"] == {"max": 1, "shown": 1}  # two grids, one shown at a time
    if model == "sag-gan":
        assert "translation" in result.sections
        assert sum(i["alt"] == "true tumor mask" for i in seen["images"]) == 6

    with Image.open(seen["screenshot"]) as shot:
        assert shot.size[0] == 1200 and shot.size[1] > 1500
        pixels = np.asarray(shot.convert("L"), dtype=np.float32)
    assert pixels.std() > 20  # text, plots and grids were painted, not a blank page


def test_the_browser_check_catches_a_page_that_reaches_out(chromium, tmp_path):
    """The same checks fail on a page that asks for an outside image (port 9 refuses at once)."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><head><title>leaky</title></head><body>'
                    '<img alt="outside" src="http://127.0.0.1:9/x.png"></body></html>')
    seen = inspect_page(chromium, page, tmp_path / "leaky.png")
    assert "http://127.0.0.1:9/x.png" in seen["requests"]
    assert seen["images"][0]["width"] == 0
