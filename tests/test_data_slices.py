"""``medsyn data prepare slices``: BraTS single-modality and ACDC cine volumes -> 2D training slices."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.data import slices
from medsyn_cli.errors import InputError


def _brain_slices(path) -> int:
    """Axial slices with at least 2 % of pixels above the volume minimum, counted straight from the file."""
    vol = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
    assert nib.aff2axcodes(nib.load(str(path)).affine)[2] in "SI"  # voxel axis 2 is axial in BraTS
    return sum(np.mean(vol[:, :, k] > vol.min()) >= 0.02 for k in range(vol.shape[2]))


def test_brats_single_modality_keeps_every_slice_with_brain(shared_data):
    root = shared_data / "brats2018-flair-t1"
    prep = slices.prepare(root, modality="flair")
    flairs = sorted(root.glob("*/FLAIR.nii.gz"))
    assert len(flairs) == 6 and prep.volumes == 6 and len(prep.mappings) == 6  # T1 and GT_W left out
    expected = sum(_brain_slices(p) for p in flairs)
    assert len(prep.images) == expected and prep.dropped == 6 * 155 - expected
    assert all(img.shape == (240, 240) and img.min() >= -1 and img.max() <= 1 for img in prep.images.values())
    assert all(name.startswith("Brats18_") and "_FLAIR_z" in name for name in prep.images)
    one = slices.prepare(flairs[0].parent, modality="FLAIR")  # one case folder: the name keeps the case
    assert set(one.images) == {n for n in prep.images if n.startswith(flairs[0].parent.name)}


def test_brats_cli_writes_pngs_and_intensity(shared_data, tmp_path):
    out = tmp_path / "flair"
    proc = run_cli("data", "prepare", "slices", shared_data / "brats2018-sample", "--modality", "flair",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    vols = sorted((shared_data / "brats2018-sample").rglob("*_flair.nii.gz"))
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == sum(_brain_slices(p) for p in vols) > 0
    assert np.asarray(Image.open(pngs[0])).shape == (240, 240)
    doc = json.loads((out / "intensity.json").read_text())
    assert doc["counts"]["slices"] == len(pngs) and len(doc["volumes"]) == len(vols)
    assert all(m["kind"] == "percentile" for m in doc["volumes"].values())


def _acdc_patient(root, name="patient001", with_info=True):
    """A tiny ACDC-shaped case: a 4D cine (X=16, Y=12, Z=3, T=5) whose frame t has a bright block
    at column 2 t, plus the ED frame file and its ground truth, as ACDC ships them."""
    case = root / name
    case.mkdir(parents=True)
    cine = np.full((16, 12, 3, 5), 100.0, dtype=np.float32)
    cine += np.random.default_rng(0).uniform(0, 10, cine.shape).astype(np.float32)
    for t in range(5):
        cine[2 * t: 2 * t + 2, :, :, t] = 1000.0  # block along voxel x -> image columns after rot90
    nib.save(nib.Nifti1Image(cine, np.diag([1.5, 1.5, 10.0, 1.0])), str(case / f"{name}_4d.nii.gz"))
    nib.save(nib.Nifti1Image(cine[..., 0], np.eye(4)), str(case / f"{name}_frame01.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((16, 12, 3), np.uint8), np.eye(4)), str(case / f"{name}_frame01_gt.nii.gz"))
    if with_info:
        (case / "Info.cfg").write_text("ED: 1\nES: 4\nGroup: NOR\nHeight: 180.0\nNbFrame: 5\nWeight: 80.0\n")
    return case


def test_acdc_cine_gives_the_ed_and_es_slices(tmp_path):
    _acdc_patient(tmp_path / "acdc")
    out = tmp_path / "out"
    proc = run_cli("data", "prepare", "slices", tmp_path / "acdc", "--modality", "4d", "--out", out)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"patient001_4d_{tag}_z{k:03d}.png" for tag in ("ed", "es") for k in range(3)]
    for tag, frame in (("ed", 0), ("es", 3)):  # Info.cfg is 1-based: ED 1 -> t=0, ES 4 -> t=3
        img = np.asarray(Image.open(out / f"patient001_4d_{tag}_z001.png"))
        assert img.shape == (12, 16)
        bright = np.flatnonzero(img.mean(axis=0) > 200)
        assert bright.tolist() == [2 * frame, 2 * frame + 1]
    doc = json.loads((out / "intensity.json").read_text())
    assert sorted(doc["volumes"]) == ["patient001/patient001_4d.nii.gz#t=1", "patient001/patient001_4d.nii.gz#t=4"]


def test_acdc_frames_all_and_missing_info(tmp_path):
    _acdc_patient(tmp_path / "a")
    assert len(slices.prepare(tmp_path / "a", modality="4d", frames="all").images) == 15
    assert len(slices.prepare(tmp_path / "a", modality="4d", frames="2").images) == 3
    _acdc_patient(tmp_path / "b", with_info=False)
    with pytest.raises(InputError, match="Info.cfg"):
        slices.prepare(tmp_path / "b", modality="4d")
    with pytest.raises(InputError, match="outside"):
        slices.prepare(tmp_path / "a", modality="4d", frames="9")


def test_without_modality_labels_are_skipped(tmp_path):
    case = _acdc_patient(tmp_path / "c")
    chosen = [p.name for p in slices.find_volumes(tmp_path / "c")]
    assert chosen == ["patient001_4d.nii.gz", "patient001_frame01.nii.gz"]  # not *_gt
    assert slices.is_label(case / "GT_W.nii.gz") and slices.is_label(case / "x_seg.nii.gz")
    assert not slices.is_label(case / "FLAIR.nii.gz")
    with pytest.raises(InputError, match="t2"):
        slices.find_volumes(tmp_path / "c", "t2")
    proc = run_cli("data", "prepare", "slices", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "nowhere" in proc.stderr
