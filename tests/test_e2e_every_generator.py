"""Every registered unconditional model, end to end through the CLI, on real data: train a few steps
scoring FID, then sample from the run directory, from ``weights.safetensors`` and from
``best.safetensors``, and score the result with ``medsyn eval fid``.

The model list comes from the registry, so a new model is covered without anyone writing a test for
it. (A trained hagan run once could not be sampled although every unit test passed.) The translation
models have their own file, ``test_e2e_every_translator.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import SHARED_DATA, run_cli
from e2e_common import fid, models, need_shared, ok, train_and_check_scoring

N_REAL = 8  # training images (native sizes differ: eval fid prepares them)
MODELS = models("unconditional")


@pytest.fixture(scope="module")
def covid_subset(tmp_path_factory) -> Path:
    need_shared()
    files = sorted((SHARED_DATA / "covid-ct-noncovid").iterdir())
    folder = tmp_path_factory.mktemp("covid")
    for f in files[:: len(files) // N_REAL][:N_REAL]:
        shutil.copy(f, folder / f.name)
    return folder


def test_the_registry_has_unconditional_models():
    assert {"dcgan", "wgan", "hagan", "ct-kernel-wgan"} <= {name for name, _ in MODELS}


def test_every_registered_model_is_in_one_of_the_two_end_to_end_files():
    from medsyn_cli.registry import all_models

    covered = {name for task in ("unconditional", "translation") for name, _ in models(task)}
    assert covered == set(all_models()), "a model of a new task needs its own end-to-end test file"


@pytest.mark.realdata
@pytest.mark.parametrize("name,res", MODELS, ids=[m[0] for m in MODELS])
def test_train_score_sample_and_evaluate(name, res, covid_subset, tmp_path):
    run = tmp_path / "run"
    scored = train_and_check_scoring(name, covid_subset, res, run)
    assert scored["fid_images"] == N_REAL  # equal counts: as many samples as training images

    fake = tmp_path / "auto"
    paths = ok(run_cli("sample", run, "--n", "auto", "--weights", "best", "--out", fake)).split()
    assert len(paths) == N_REAL  # --n auto: as many as the training images
    for i, source in enumerate((run, run / "weights.safetensors", run / "best.safetensors")):
        assert len(ok(run_cli("sample", source, "-n", 2, "--out", tmp_path / f"s{i}")).split()) == 2
    result = fid(covid_subset, fake)
    # The native-size reals were brought to the samples' size through the training pipeline.
    assert result["real"]["prepared"] == {"res": res, "channels": 1, "fit": "resize", "from": "FAKE side"}
    assert result["real"]["count"] == result["fake"]["count"] == N_REAL
