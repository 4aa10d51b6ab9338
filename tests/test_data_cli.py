"""`medsyn data` and `medsyn cache` as a user runs them, and every bad-input case: exit 2, one line on
stderr naming the file, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _one_error_line(proc, name: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsyn: error:") and name in lines[0], proc.stderr
    assert proc.stdout == ""


def _nifti(path, shape):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.random.default_rng(0).random(shape).astype(np.float32), np.eye(4)), str(path))


def _bad_inputs(tmp_path):
    """(case name, path to give `data info`, the name the error must mention)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "readme.txt").write_text("hello")
    (unreadable / "data.csv").write_text("1,2\n")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(corrupt / "good.png")
    good = (corrupt / "good.png").read_bytes()
    (corrupt / "broken.png").write_bytes(good[: len(good) // 2])
    _nifti(tmp_path / "full.nii.gz", (16, 16, 16))
    blob = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "full.nii.gz").unlink()
    _nifti(tmp_path / "fourd.nii.gz", (8, 8, 8, 3))
    return [("empty folder", empty, "empty"), ("no readable image", unreadable, "unreadable"),
            ("corrupt PNG", corrupt, "broken.png"), ("truncated .nii.gz", tmp_path / "truncated.nii.gz",
                                                    "truncated.nii.gz"),
            ("4D volume", tmp_path / "fourd.nii.gz", "fourd.nii.gz")]


def test_bad_inputs_give_one_line_exit_2_and_write_nothing(tmp_path):
    cases = _bad_inputs(tmp_path)
    before = _listing(tmp_path)
    errors = {}
    for label, path, name in cases:
        proc = run_cli("data", "info", path)
        _one_error_line(proc, name)
        errors[label] = proc.stderr
    assert "empty folder" in errors["empty folder"] and "no readable image" in errors["no readable image"]
    assert "corrupt" in errors["corrupt PNG"] and "4D volume" in errors["4D volume"]
    # the trainer reads data through load_dataset: same one-line error, no run directory
    proc = run_cli("train", "dcgan", "--data", tmp_path / "corrupt", "--res", "64", "--steps", "1",
                   "--out", tmp_path / "run")
    _one_error_line(proc, "broken.png")
    assert _listing(tmp_path) == before


def test_existing_outputs_are_refused_without_force(tmp_path, shared_data):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for args in (["data", "phantom", "--kind", "ct", "--n", "2", "--res", "16", "--out", out],
                 ["data", "prepare", "brats", shared_data / "brats2018-sample", "--out", out]):
        proc = run_cli(*args)
        _one_error_line(proc, str(out))
        assert "--force" in proc.stderr
    assert _listing(tmp_path) == ["out", "out/keep.txt"]
    proc = run_cli("data", "prepare", "brats", tmp_path / "missing", "--out", tmp_path / "new")
    _one_error_line(proc, "missing")
    assert not (tmp_path / "new").exists()


def test_phantom_cli_writes_a_two_domain_folder_that_info_and_force_handle(tmp_path):
    out = tmp_path / "brain"
    proc = run_cli("data", "phantom", "--kind", "brain", "--n", "3", "--res", "32", "--seed", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    assert _listing(out) == sorted([".medsyn-output.json", "masks", "normal", "tumor"] +
                                   [f"{d}/brain_{i:05d}.png" for d in ("masks", "normal", "tumor") for i in range(3)])
    mask = np.asarray(Image.open(out / "masks" / "brain_00000.png"))
    assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the temporary folder is gone
    info = json.loads(run_cli("data", "info", out, "--json").stdout)
    assert info["kind"] == "two-domain" and info["masks"] == 3 and info["tumor"]["images"] == 3
    assert info["normal"]["modes"] == {"L": 3} and info["normal"]["height"] == [32, 32]
    proc = run_cli("data", "phantom", "--kind", "ct", "--n", "2", "--res", "16", "--out", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert _listing(out) == [".medsyn-output.json", "ct_00000.png", "ct_00001.png"]


def test_prepare_brats_cli_counts_masks_and_intensity(tmp_path, shared_data):
    out = tmp_path / "brats"
    proc = run_cli("data", "prepare", "brats", shared_data / "brats2018-sample", "--modality", "t1ce",
                   "--out", out, "--mask-fraction", "0.25", "--res", "64")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out) and "normal" in proc.stderr
    normal, tumor, masks = (sorted(p.name for p in (out / d).iterdir()) for d in ("normal", "tumor", "masks"))
    assert len(normal) > 0 and len(tumor) > 0
    assert len(masks) == round(0.25 * len(tumor)) and set(masks) <= set(tumor)
    doc = json.loads((out / "intensity.json").read_text())
    assert len(doc["volumes"]) == 2 and all(m["kind"] == "percentile" for m in doc["volumes"].values())
    assert doc["counts"]["tumor"] == len(tumor) and doc["settings"]["min_tumor_area"] == 100
    img = np.asarray(Image.open(out / "tumor" / tumor[0]))
    assert img.shape == (64, 64) and img.dtype == np.uint8


def test_cache_ls_path_and_clear(tmp_path, medsyn_home):
    from medsyn_cli.data import load_dataset

    load_dataset("phantom:ct?n=2", res=16)
    path = run_cli("cache", "path").stdout.strip()
    assert path.startswith(str(medsyn_home))
    listing = json.loads(run_cli("cache", "ls", "--json").stdout)
    assert len(listing["entries"]) == 1 and listing["entries"][0]["what"]["path"] == "phantom:ct?n=2"
    assert listing["entries"][0]["size"] > 0
    assert run_cli("cache", "clear").returncode == 2  # not a terminal: needs --yes
    assert len(list((medsyn_home / "cache" / "datasets").glob("*.npz"))) == 1
    assert run_cli("cache", "clear", "--yes").returncode == 0
    assert list((medsyn_home / "cache" / "datasets").iterdir()) == []


def test_cache_lists_and_clears_fid_statistics_but_keeps_weights(medsyn_home):
    from medsyn_cli.metrics.stats_cache import stats_dir

    stats = stats_dir()
    stats.mkdir(parents=True)
    (stats / "abc.npz").write_bytes(b"x" * 100)
    weights = medsyn_home / "cache" / "weights"
    weights.mkdir(parents=True)
    (weights / "fid.pth").write_bytes(b"w")
    listing = json.loads(run_cli("cache", "ls", "--json").stdout)
    assert listing["fid_stats"] == {"dir": str(stats), "files": 1, "size": 100}
    r = run_cli("cache", "clear", "--yes")
    assert r.returncode == 0 and "1 FID statistics file" in r.stderr
    assert list(stats.iterdir()) == []
    assert (weights / "fid.pth").exists()


@pytest.mark.parametrize("group", [["data"], ["data", "prepare"], ["cache"]])
def test_sub_commands_show_help_without_arguments(group):
    proc = run_cli(*group)
    assert "Usage" in proc.stdout + proc.stderr



@pytest.mark.parametrize("command", [["data", "info"], ["data", "phantom"], ["data", "prepare", "brats"],
                                     ["cache", "ls"], ["cache", "clear"], ["cache", "path"]])
def test_every_command_has_examples(command):
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0 and "Examples" in proc.stdout
