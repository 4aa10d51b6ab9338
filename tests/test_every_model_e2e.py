"""Every registered model, end to end through the CLI, on real data: train a few steps scoring FID,
then sample (or translate) from the run directory, from ``weights.safetensors`` and from
``best.safetensors``, and score the result with ``medsyn eval fid``.

The model list comes from the registry, so a new model is covered without anyone writing a test for
it. (A trained hagan run once could not be sampled although every unit test passed.)
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import FID_WEIGHTS, SHARED_DATA, run_cli

N_REAL = 8  # unconditional training images (native sizes differ: eval fid prepares them)
N_DOMAIN = 6  # translation: normal and tumor slices each


def _models() -> list[tuple[str, str, int]]:
    from medsyn_cli.registry import all_models

    return [(name, spec.task, 64 if 64 in spec.resolutions else min(spec.resolutions))
            for name, spec in all_models().items()]


MODELS = _models()


def _need_shared() -> None:
    if not SHARED_DATA.is_dir() or not FID_WEIGHTS.is_file():
        pytest.skip(f"real data or FID weights not found under {SHARED_DATA.parent}")


@pytest.fixture(scope="module")
def covid_subset(tmp_path_factory) -> Path:
    _need_shared()
    files = sorted((SHARED_DATA / "covid-ct-noncovid").iterdir())
    folder = tmp_path_factory.mktemp("covid")
    for f in files[:: len(files) // N_REAL][:N_REAL]:
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def brats_subset(tmp_path_factory) -> Path:
    """A few normal and tumor slices (with masks) of a real BraTS case, prepared by the CLI."""
    _need_shared()
    base = tmp_path_factory.mktemp("brats")
    prepared = base / "prepared"
    proc = run_cli("data", "prepare", "brats", SHARED_DATA / "brats2018-sample", "--out", prepared, "--res", "64")
    assert proc.returncode == 0, proc.stderr
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


def _ok(proc) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def _fid(real: Path, fake: Path) -> dict:
    out = _ok(run_cli("eval", "fid", real, fake, "--weights", FID_WEIGHTS, "--json", "--device", "cpu",
                      "--no-cache"))
    result = json.loads(out)
    assert math.isfinite(result["metrics"]["fid"]) and result["metrics"]["fid"] >= 0
    return result


@pytest.mark.realdata
@pytest.mark.parametrize("name,task,res", MODELS, ids=[m[0] for m in MODELS])
def test_train_score_sample_and_evaluate(name, task, res, covid_subset, brats_subset, tmp_path):
    data = covid_subset if task == "unconditional" else brats_subset
    run = tmp_path / "run"
    _ok(run_cli("train", name, "--data", data, "--res", res, "--steps", 2, "-b", 2, "--device", "cpu",
                "--eval-every", 2, "--fid-weights", FID_WEIGHTS, "--out", run))

    # Training scored FID with equal counts and kept the best weights.
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    scored = [r for r in records if "fid" in r]
    assert [r["step"] for r in scored] == [2] and math.isfinite(scored[0]["fid"])
    assert (run / "best.safetensors").is_file() and (run / "weights.safetensors").is_file()
    assert (run / "fid.png").is_file()

    if task == "unconditional":
        assert scored[0]["fid_images"] == N_REAL
        fake = tmp_path / "auto"
        paths = _ok(run_cli("sample", run, "--n", "auto", "--weights", "best", "--out", fake)).split()
        assert len(paths) == N_REAL  # --n auto: as many as the training images
        for i, source in enumerate((run, run / "weights.safetensors", run / "best.safetensors")):
            assert len(_ok(run_cli("sample", source, "-n", 2, "--out", tmp_path / f"s{i}")).split()) == 2
        result = _fid(data, fake)
        # The native-size reals were brought to the samples' size through the training pipeline.
        assert result["real"]["prepared"] == {"res": res, "channels": 1, "fit": "resize", "from": "FAKE side"}
        assert result["real"]["count"] == result["fake"]["count"] == N_REAL
    else:
        normals = sorted((data / "normal").iterdir())
        outs = []
        for i, (model, extra) in enumerate(((run, []), (run / "weights.safetensors", []),
                                            (run, ["--weights", "best"]))):
            out = tmp_path / f"t{i}"
            printed = _ok(run_cli("translate", "--to", "tumor", *normals, "--model", model, *extra,
                                  "--out", out, "--device", "cpu")).split()
            assert len(printed) == len(normals)
            outs.append(out)
        _fid(data / "tumor", outs[2])
