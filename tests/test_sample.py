"""``medsyn sample``: one path per line, readable files in each format, determinism by --seed, safety."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from test_train_tiny import random_images, train

torch.set_num_threads(1)
ENV = {"OMP_NUM_THREADS": "1", "MEDSYN_PROGRESS": "0"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-step dcgan run (narrow networks) trained in this process; its own MEDSYN_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSYN_HOME", str(tmp_path_factory.mktemp("home")))
        out = tmp_path_factory.mktemp("runs") / "dcgan"
        result, _ = train(out, random_images(8, res=64), model="dcgan", steps=2, batch_size=4,
                          sets=["ngf=8", "ndf=8", "latent_dim=16"])
    assert result.weights is not None and result.weights.exists()
    return out


def test_png_samples_one_path_per_line_and_deterministic_by_seed(run_dir, tmp_path):
    proc = run_cli("sample", run_dir, "--n", "8", "--out", tmp_path / "fake", "--batch-size", "3", env=ENV)
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.splitlines()
    assert len(paths) == 8 and len(set(paths)) == 8
    arrays = [np.asarray(Image.open(p)) for p in paths]
    assert all(a.shape == (64, 64) and a.dtype == np.uint8 for a in arrays)
    assert sorted(p.name for p in (tmp_path / "fake").iterdir()) == sorted(p.rsplit("/", 1)[1] for p in paths)
    again = run_cli("sample", run_dir, "--n", "8", "--out", tmp_path / "again", "--batch-size", "3", env=ENV)
    other = run_cli("sample", run_dir, "--n", "8", "--out", tmp_path / "other", "--seed", "1",
                    "--batch-size", "3", env=ENV)
    same = [np.asarray(Image.open(p)) for p in again.stdout.splitlines()]
    diff = [np.asarray(Image.open(p)) for p in other.stdout.splitlines()]
    assert all(np.array_equal(a, b) for a, b in zip(arrays, same))
    assert not np.array_equal(arrays[0], diff[0])


def test_npy_with_json_and_nii_formats_from_the_checkpoint_and_the_export(run_dir, tmp_path):
    import nibabel as nib

    proc = run_cli("sample", run_dir / "checkpoints" / "latest.pt", "--n", "3", "--out", tmp_path / "npy",
                   "--format", "npy", "--json", env=ENV)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2] and records[0]["model"] == "dcgan" and records[0]["step"] == 2
    x = np.load(records[0]["path"])
    assert x.shape == (1, 64, 64) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    # The checkpoint and the safetensors export hold the same generator: the same images.
    proc = run_cli("sample", run_dir / "weights.safetensors", "--n", "3", "--out", tmp_path / "npy2",
                   "--format", "npy", env=ENV)
    assert np.array_equal(np.load(proc.stdout.splitlines()[0]), x)
    proc = run_cli("sample", run_dir, "--n", "2", "--out", tmp_path / "nii", "--format", "nii", env=ENV)
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.splitlines()
    assert all(p.endswith(".nii.gz") for p in paths)
    vol = np.asarray(nib.load(paths[0]).dataobj)
    assert vol.dtype == np.float32 and vol.size == 64 * 64 and -1 <= vol.min() and vol.max() <= 1


def test_existing_output_needs_force(run_dir, tmp_path):
    out = tmp_path / "fake"
    out.mkdir()
    (out / "old.png").write_bytes(b"x")
    proc = run_cli("sample", run_dir, "--n", "2", "--out", out, env=ENV)
    assert proc.returncode == 2 and "output exists" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["old.png"]
    proc = run_cli("sample", run_dir, "--n", "2", "--out", out, "--force", env=ENV)
    assert proc.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["sample_00000.png", "sample_00001.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary dirs left behind


def test_bad_sources_exit_2(run_dir, tmp_path):
    from medsyn_cli.training.checkpoint import build_model
    from medsyn_cli.training.export import export_weights

    # A translation model's weights: sampling is refused with a pointer to `medsyn translate`.
    spec, model = build_model("cyclegan", {}, 64, 1)
    weights = export_weights(tmp_path / "cg.safetensors",
                             {n: model.networks[n].state_dict() for n in model.inference_networks},
                             model="cyclegan", task="translation", res=64, channels=1, step=0,
                             config={}, intensity={}, ema=False)
    proc = run_cli("sample", weights, "--n", "2", "--out", tmp_path / "f", env=ENV)
    assert proc.returncode == 2 and "translation model" in proc.stderr and "medsyn translate" in proc.stderr
    for source in (tmp_path / "missing", tmp_path):
        proc = run_cli("sample", source, "--n", "2", "--out", tmp_path / "f", env=ENV)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("sample", run_dir, "--n", "2", "--out", tmp_path / "f", "--format", "jpg", env=ENV)
    assert proc.returncode == 2 and "unknown --format" in proc.stderr
    assert not (tmp_path / "f").exists()
