"""Every registered translation model, end to end through the CLI, on a real BraTS case: train a few
steps scoring FID, translate normal slices to tumor from the run directory, from
``weights.safetensors`` and with the best weights, and score the result with ``medsyn eval fid``.

The model list comes from the registry, so a new model is covered without anyone writing a test for
it. The unconditional models have their own file, ``test_e2e_every_generator.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA, run_cli
from e2e_common import fid, models, need_shared, ok, train_and_check_scoring

N_DOMAIN = 6  # normal and tumor slices each
MODELS = models("translation")


@pytest.fixture(scope="module")
def brats_subset(tmp_path_factory) -> Path:
    """A few normal and tumor slices (with masks) of a real BraTS case, prepared by the CLI."""
    need_shared()
    base = tmp_path_factory.mktemp("brats")
    prepared = base / "prepared"
    ok(run_cli("data", "prepare", "brats", SHARED_DATA / "brats2018-sample", "--out", prepared, "--res", "64"))
    small = base / "small"
    for domain in ("normal", "tumor"):
        names = sorted(p.name for p in (prepared / domain).iterdir())
        picks = names[:: max(1, len(names) // N_DOMAIN)][:N_DOMAIN]
        for sub in ((domain, "masks") if domain == "tumor" else (domain,)):
            (small / sub).mkdir(parents=True, exist_ok=True)
            for name in picks:
                if (prepared / sub / name).exists():
                    shutil.copy(prepared / sub / name, small / sub / name)
    return small


def test_the_registry_has_translation_models():
    assert {"cyclegan", "sag-gan"} <= {name for name, _ in MODELS}


@pytest.mark.realdata
@pytest.mark.parametrize("name,res", MODELS, ids=[m[0] for m in MODELS])
def test_train_score_translate_and_evaluate(name, res, brats_subset, tmp_path):
    run = tmp_path / "run"
    train_and_check_scoring(name, brats_subset, res, run)

    normals = sorted((brats_subset / "normal").iterdir())
    outs = []
    for i, (model, extra) in enumerate(((run, []), (run / "weights.safetensors", []),
                                        (run, ["--weights", "best"]))):
        out = tmp_path / f"t{i}"
        printed = ok(run_cli("translate", "--to", "tumor", *normals, "--model", model, *extra,
                             "--out", out, "--device", "cpu")).split()
        assert len(printed) == len(normals)
        outs.append(out)
    fid(brats_subset / "tumor", outs[2])
