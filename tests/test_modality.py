"""The data's modality is recorded with a run, and `translate` warns (or with --strict refuses) when an
input's modality or intensity scale differs from the model's training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.data.datasets import load_dataset
from medsyn_cli.data.modality import modality_from_name, trained_modality
from medsyn_cli.domain_check import DomainCheck
from medsyn_cli.errors import InputError
from tiny_translator import brats_case, head, save_nifti, tiny_run

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("name,modality", [
    ("Brats18_2013_2_1_t1ce.nii.gz", "t1ce"), ("Brats18_2013_2_1_t1.nii.gz", "t1"), ("FLAIR.nii.gz", "flair"),
    ("T1.nii.gz", "t1"), ("case_T2.nii", "t2"), ("sub-01_T1w.nii.gz", "t1"), ("case_t1-ce.nii.gz", "t1ce"),
    ("scan.nii.gz", None), ("Brats18_2013_2_1_z077.png", None), ("t2star_notes.png", None),
])
def test_modality_from_the_file_name(name, modality):
    assert modality_from_name(name) == modality


def test_brats_cases_record_the_modality_read(tmp_path):
    brats_case(tmp_path / "cases", "Brats18_X_1")
    data = load_dataset(tmp_path / "cases", res=32, task="translation", modality="flair", use_cache=False)
    assert data.normal.intensity["modality"] == "flair" and data.tumor.intensity["modality"] == "flair"
    assert trained_modality({"normal": data.normal.intensity, "tumor": data.tumor.intensity}) == "flair"


def test_a_prepared_folder_records_the_modality_of_its_intensity_json(tmp_path):
    for d in ("normal", "tumor"):
        (tmp_path / d).mkdir()
        for i in range(2):
            Image.fromarray(np.full((16, 16), 100 + 50 * i, np.uint8)).save(tmp_path / d / f"c_z{i:03d}.png")
    (tmp_path / "intensity.json").write_text(json.dumps({"settings": {"modality": "t2"}}))
    data = load_dataset(tmp_path, res=16, task="translation", use_cache=False)
    assert data.normal.intensity["modality"] == "t2" and data.tumor.intensity["modality"] == "t2"


def test_names_that_disagree_record_nothing(tmp_path):
    save_nifti(tmp_path / "a_t1.nii.gz", head())
    save_nifti(tmp_path / "b_t2.nii.gz", head())
    assert "modality" not in load_dataset(tmp_path, res=16, use_cache=False).intensity


def test_train_writes_the_modality_to_config_and_weights(tmp_path):
    data = tmp_path / "scans"
    data.mkdir()
    save_nifti(data / "case1_flair.nii.gz", head())
    save_nifti(data / "case2_flair.nii.gz", head())
    out = tmp_path / "run"
    r = run_cli("train", "dcgan", "--data", data, "--steps", "1", "-b", "4", "--device", "cpu",
                "--set", "ngf=8", "--set", "ndf=8", "--out", out, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "config.json").read_text())["data"]["intensity"]["modality"] == "flair"
    from medsyn_cli.training.export import read_weights

    assert read_weights(out / "weights.safetensors")[1]["intensity"]["modality"] == "flair"


def test_domain_check_warns_or_refuses(tmp_path, capsys):
    record = {"normal": {"kind": "percentile", "lo_value": 0, "hi_value": 1, "modality": "t1ce"},
              "tumor": {"kind": "percentile", "lo_value": 0, "hi_value": 1, "modality": "t1ce"}}
    check = DomainCheck(record)
    check.name(tmp_path / "case_t1ce.nii.gz")
    check.volume(tmp_path / "case_t1ce.nii.gz", head())
    assert capsys.readouterr().err == ""
    check.name(tmp_path / "case_flair.nii.gz")
    check.volume(tmp_path / "ct.nii.gz", head(ct=True))
    err = capsys.readouterr().err
    assert "case_flair.nii.gz" in err and "flair" in err and "t1ce" in err and "CT" in err
    strict = DomainCheck(record, strict=True)
    with pytest.raises(InputError, match="flair"):
        strict.name(tmp_path / "case_flair.nii.gz")
    with pytest.raises(InputError, match="Hounsfield"):
        strict.volume(tmp_path / "ct.nii.gz", head(ct=True))
    ct_model = DomainCheck({"kind": "ct_window", "center": 40, "width": 400}, strict=True)
    ct_model.volume(tmp_path / "ct.nii.gz", head(ct=True))
    with pytest.raises(InputError, match="CT-windowed"):
        ct_model.volume(tmp_path / "mr.nii.gz", head())


def test_translate_warns_and_strict_refuses_before_writing(tmp_path):
    run = tiny_run(tmp_path / "run", modality="t1ce")
    scan = save_nifti(tmp_path / "case_flair.nii.gz", head())
    out = tmp_path / "out.nii.gz"
    r = run_cli("translate", "--to", "tumor", scan, "--model", run, "-o", out, "--device", "cpu", env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "flair" in r.stderr and "t1ce" in r.stderr and out.exists()
    out2 = tmp_path / "out2.nii.gz"
    r = run_cli("translate", "--to", "tumor", scan, "--model", run, "-o", out2, "--device", "cpu", "--strict",
                env=ONE_THREAD)
    assert r.returncode == 2 and str(scan) in r.stderr and "Traceback" not in r.stderr
    assert not out2.exists()
