"""Bad data is refused, not silently changed: inf, all-NaN or >1 % NaN -> exit 2 naming the file;
a few NaN -> the background value, with a warning naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.data.finite import NAN_LIMIT, check_finite
from medsyn_cli.errors import InputError
from tiny_translator import head, save_nifti, tiny_run

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _with_nan(vol: np.ndarray, share: float) -> np.ndarray:
    out = vol.copy().ravel()
    out[np.random.default_rng(0).choice(out.size, max(1, int(share * out.size)), replace=False)] = np.nan
    return out.reshape(vol.shape)


def _one_line(proc, *needles) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


# -- the rule, once for all readers -------------------------------------------------------------
def test_finite_and_integer_data_is_untouched():
    ints = np.array([[1, 2], [3, 4]], np.int16)
    assert check_finite(ints, "x") is ints
    floats = np.ones((3, 3), np.float32)
    assert check_finite(floats, "x") is floats


def test_a_few_nan_become_the_background_with_a_warning(capsys):
    vol = head()
    bad = _with_nan(vol, NAN_LIMIT / 2)
    fixed = check_finite(bad, "scan.nii.gz")
    assert np.isfinite(fixed).all()
    assert np.all(fixed[np.isnan(bad)] == vol.min())  # the background, not 0 by accident
    assert np.array_equal(fixed[~np.isnan(bad)], bad[~np.isnan(bad)])
    err = capsys.readouterr().err
    assert "scan.nii.gz" in err and "NaN" in err and "warning" in err


@pytest.mark.parametrize("make,needle", [
    (lambda v: np.full_like(v, np.nan), "every value is NaN"),
    (lambda v: _with_nan(v, 2 * NAN_LIMIT), "NaN, more than the 1%"),
    (lambda v: np.where(v > 400, np.inf, v).astype(np.float32), "infinite"),
    (lambda v: np.where(v > 400, -np.inf, v).astype(np.float32), "infinite"),
])
def test_inf_all_nan_and_many_nan_are_refused(make, needle):
    with pytest.raises(InputError) as info:
        check_finite(make(head()), "scan.nii.gz")
    assert info.value.path == "scan.nii.gz" and needle in info.value.one_line()


# -- every command that reads data ------------------------------------------------------------
@pytest.fixture
def bad_files(tmp_path):
    """One bad file of each readable float format."""
    vol = head()
    files = {"nan_nifti": save_nifti(tmp_path / "allnan.nii.gz", np.full_like(vol, np.nan)),
             "inf_nifti": save_nifti(tmp_path / "inf.nii.gz", np.where(vol > 400, np.inf, vol).astype(np.float32)),
             "part_nan_nifti": save_nifti(tmp_path / "partnan.nii.gz", _with_nan(vol, 0.05))}
    np.save(tmp_path / "nan.npy", np.full((4, 16, 16), np.nan, np.float32))
    files["nan_npy"] = tmp_path / "nan.npy"
    np.savez(tmp_path / "inf.npz", images=np.where(vol[..., :4].T > 400, np.inf, 0.5).astype(np.float32))
    files["inf_npz"] = tmp_path / "inf.npz"
    tif = np.ones((16, 16), np.float32)
    tif[:4] = np.nan  # 25 % NaN
    Image.fromarray(tif, mode="F").save(tmp_path / "nan.tif")
    files["nan_tiff"] = tmp_path / "nan.tif"
    files["nan_dicom"] = _float_dicom(tmp_path / "nan.dcm", tif)
    return files


def _float_dicom(path, pixels: np.ndarray):
    """An MR DICOM with float32 pixel data (FloatPixelData), the one DICOM form that can hold NaN."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = "MR", generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated = 1, "MONOCHROME1", 32
    ds.FloatPixelData = pixels.astype(np.float32).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("kind", ["nan_nifti", "inf_nifti", "part_nan_nifti", "nan_npy", "inf_npz", "nan_tiff",
                                  "nan_dicom"])
def test_data_info_refuses_naming_the_file(bad_files, kind):
    _one_line(run_cli("data", "info", bad_files[kind]), bad_files[kind])


@pytest.mark.parametrize("kind", ["nan_nifti", "inf_nifti", "nan_tiff"])
def test_edges_refuses_naming_the_file(bad_files, tmp_path, kind):
    out = tmp_path / "edges"
    _one_line(run_cli("edges", bad_files[kind], "--out", out), bad_files[kind])
    assert not list(out.rglob("*.nii.gz")) and not list(out.rglob("*.png"))


def test_translate_refuses_naming_the_file(bad_files, tmp_path, kind="nan_nifti"):
    run = tiny_run(tmp_path / "run")
    target = tmp_path / "out.nii.gz"
    _one_line(run_cli("translate", "--to", "tumor", bad_files[kind], "--model", run, "-o", target,
                      "--device", "cpu", env=ONE_THREAD), bad_files[kind])
    assert not target.exists()


def test_train_names_the_bad_file_not_its_folder(tmp_path):
    data = tmp_path / "scans"
    data.mkdir()
    save_nifti(data / "good.nii.gz", head())
    save_nifti(data / "broken.nii.gz", np.full_like(head(), np.nan))
    out = tmp_path / "run"
    _one_line(run_cli("train", "dcgan", "--data", data, "--steps", "1", "-b", "4", "--device", "cpu",
                      "--out", out, env=ONE_THREAD), data / "broken.nii.gz", "NaN")
    assert not out.exists()


def test_a_few_nan_are_repaired_with_a_warning_in_info_and_train(tmp_path):
    data = tmp_path / "scans"
    data.mkdir()
    scan = save_nifti(data / "scan.nii.gz", _with_nan(head(), NAN_LIMIT / 4))
    info = run_cli("data", "info", scan, "--json")
    assert info.returncode == 0, info.stderr
    assert "warning" in info.stderr and str(scan) in info.stderr and "NaN" in info.stderr
    assert '"min": 0.0' in info.stdout.replace(" ", "").replace('"min":0.0', '"min": 0.0')
    r = run_cli("train", "dcgan", "--data", data, "--steps", "2", "-b", "4", "--device", "cpu",
                "--set", "ngf=8", "--set", "ndf=8", "--out", tmp_path / "run", env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    assert "NaN value(s)" in r.stderr


def test_a_few_nan_in_a_monochrome1_dicom_are_repaired_not_spread(tmp_path, capsys):
    from medsyn_cli.data.readers import read_dicom

    pixels = np.arange(256, dtype=np.float32).reshape(16, 16)
    pixels[0, 0] = np.nan  # 1 of 256 values: 0.4 %
    frames, _ = read_dicom(_float_dicom(tmp_path / "few.dcm", pixels))
    assert np.isfinite(frames).all() and frames.shape == (1, 16, 16)
    assert "few.dcm" in capsys.readouterr().err


def test_a_volume_with_no_usable_slice_is_named_itself(tmp_path):
    scan = save_nifti(tmp_path / "blank.nii.gz", np.zeros((16, 16, 4), np.float32))
    _one_line(run_cli("train", "dcgan", "--data", scan, "--steps", "1", "-b", "4", "--device", "cpu",
                      "--out", tmp_path / "run", env=ONE_THREAD), scan)
