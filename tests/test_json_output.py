"""`--json` on every command that prints a result, and `-` reading the JSON lines `sample --json` prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.errors import InputError
from medsyn_cli.stdin_paths import paths_from_lines
from tiny_translator import brats_case

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    """A 2-step dcgan run (with --json) and what it printed."""
    out = tmp_path_factory.mktemp("train") / "run"
    proc = run_cli("train", "dcgan", "--data", "phantom:ct?n=16", "--steps", "2", "-b", "4", "--device", "cpu",
                   "--set", "ngf=8", "--set", "ndf=8", "--out", out, "--json", env=ONE_THREAD)
    return out, _json(proc)


def test_train_json_reports_the_run(dcgan_run):
    out, doc = dcgan_run
    assert doc["run_dir"] == str(out) and doc["finished"] is True and doc["exit_code"] == 0
    assert doc["steps"] == 2 and doc["total_steps"] == 2 and doc["losses_step"] == 2
    assert set(doc["losses"]) and all(np.isfinite(v) for v in doc["losses"].values())
    assert doc["seconds"] > 0 and doc["weights"] and (out / "weights.safetensors").samefile(doc["weights"])


@pytest.fixture(scope="module")
def sampled(dcgan_run, tmp_path_factory):
    """(real folder, fake folder, the JSON lines `sample --json` printed)."""
    run, _ = dcgan_run
    where = tmp_path_factory.mktemp("sampled")
    sample = run_cli("sample", run, "--n", "4", "--out", where / "fake", "--json", env=ONE_THREAD)
    assert sample.returncode == 0, sample.stderr
    assert len(sample.stdout.splitlines()) == 4 and sample.stdout.startswith("{")
    real = run_cli("data", "phantom", "--kind", "ct", "--n", "4", "--res", "64", "--out", where / "real")
    assert real.returncode == 0, real.stderr
    return where / "real", where / "fake", sample.stdout


def test_eval_edges_reads_the_json_lines_of_sample(sampled):
    real, _, lines = sampled
    doc = _json(run_cli("eval", "edges", real, "-", "--json", input=lines))
    assert doc["fake"]["n_images"] == 4 and doc["real"]["n_images"] == 4


def test_eval_fid_takes_the_path_out_of_a_json_line(sampled, tmp_path):
    real, _, _ = sampled
    missing = tmp_path / "gone.png"
    r = run_cli("eval", "fid", real, "-", input=json.dumps({"path": str(missing), "index": 0}) + "\n")
    assert r.returncode == 2 and f"{missing}: no such file" in r.stderr  # the path, not the JSON text


@pytest.mark.slow  # Inception features and a 2048-d sqrtm on the CPU
def test_eval_fid_reads_the_json_lines_of_sample(sampled, fid_weights):
    real, _, lines = sampled
    env = {**ONE_THREAD, "MEDSYN_FID_WEIGHTS": str(fid_weights)}
    doc = _json(run_cli("eval", "fid", real, "-", "--json", input=lines, env=env))
    assert doc["fake"]["count"] == 4 and np.isfinite(doc["metrics"]["fid"])


def test_stdin_lines_may_be_paths_or_medsyn_json():
    lines = ['{"path": "a.png", "index": 0}', "", "  b.png  ", '{"output": "c.nii.gz", "input": "x"}']
    assert paths_from_lines(lines) == ["a.png", "b.png", "c.nii.gz"]
    with pytest.raises(InputError, match="line 1"):
        paths_from_lines(['{"index": 0}'])
    with pytest.raises(InputError, match="line 2"):
        paths_from_lines(["a.png", "{not json"])


def test_edges_json_one_object_per_output_and_edges_read_json_from_stdin(tmp_path):
    for i in range(2):
        Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)) + i).save(tmp_path / f"im{i}.png")
    listing = "".join(json.dumps({"path": str(tmp_path / f"im{i}.png")}) + "\n" for i in range(2))
    r = run_cli("edges", "-", "--out", tmp_path / "e", "--json", input=listing)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [d["input"] for d in docs] == [str(tmp_path / f"im{i}.png") for i in range(2)]
    assert all(d["method"] == "sobel" and d["kind"] == "image" and (tmp_path / "e").joinpath(
        d["output"]).exists() for d in docs)


def test_data_phantom_prepare_and_cache_path_json(tmp_path, medsyn_home):
    doc = _json(run_cli("data", "phantom", "--kind", "brain", "--n", "2", "--res", "32", "--out",
                        tmp_path / "ph", "--json"))
    assert doc["out"] == str(tmp_path / "ph") and doc["n"] == 2 and doc["folders"] == ["normal", "tumor", "masks"]
    brats_case(tmp_path / "cases", "Brats18_X_1")
    doc = _json(run_cli("data", "prepare", "brats", tmp_path / "cases", "--modality", "flair",
                        "--out", tmp_path / "prep", "--json"))
    assert doc["out"] == str(tmp_path / "prep") and doc["modality"] == "flair"
    assert doc["counts"]["normal"] > 0 and doc["counts"]["tumor"] > 0
    doc = _json(run_cli("cache", "path", "--json"))
    assert doc["path"].startswith(str(medsyn_home))
    doc = _json(run_cli("cache", "clear", "--yes", "--json"))
    assert doc["datasets_removed"] >= 0 and doc["bytes_freed"] >= 0 and "fid_statistics_removed" in doc
