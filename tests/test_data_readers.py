"""Readers, slicing and squaring on the real files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medsyn_cli.data import readers
from medsyn_cli.data.geometry import from_square, to_square
from medsyn_cli.data.volumes import assemble_volume, keep_slice, slice_volume, volume_mapping, volume_slices


def _first(folder, ext: str, mode: str):
    for f in sorted(folder.iterdir()):
        if f.suffix == ext:
            with Image.open(f) as im:
                if im.mode == mode:
                    return f
    pytest.fail(f"no {mode} {ext} file in {folder}")


@pytest.mark.parametrize("ext,mode", [(".png", "RGB"), (".jpg", "RGB"), (".jpg", "L")])
def test_read_image_real_covid_ct_is_grey_in_unit_range(shared_data, ext, mode):
    path = _first(shared_data / "covid-ct-noncovid", ext, mode)
    img, mapping = readers.read_image(path)
    with Image.open(path) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float32)
    assert img.shape == (1, *grey.shape) and img.dtype == np.float32
    assert mapping == {"kind": "uint8"}
    np.testing.assert_allclose(img[0], grey / 127.5 - 1.0, atol=1e-6)  # colour -> luma, then [-1, 1]


def test_read_volume_brats_and_exact_slice_roundtrip(shared_data):
    case = shared_data / "brats2018-sample" / "Brats18_2013_2_1"
    vol, img = readers.read_volume(case / "Brats18_2013_2_1_t1ce.nii.gz")
    assert vol.shape == (240, 240, 155) and vol.dtype == np.float32 and vol.max() > 100
    slices = slice_volume(vol, "axial", img.affine)
    assert len(slices) == 155 and slices[0][1].shape == (240, 240)
    back = assemble_volume([s for _, s in slices], "axial", img.affine)
    np.testing.assert_array_equal(back, vol)


def test_empty_slice_rule_on_ch2(shared_data):
    vol, img = readers.read_volume(shared_data / "mri-slices" / "ch2.nii.gz")
    assert vol.shape == (181, 217, 181)
    mapping = volume_mapping(vol)
    assert mapping["kind"] == "percentile" and mapping["hi_value"] > mapping["lo_value"]
    kept = volume_slices(vol, img.affine, "axial", mapping)
    every = volume_slices(vol, img.affine, "axial", mapping, drop_empty=False)
    assert 0 < len(kept) < len(every) == 181
    kept_idx = {k for k, _ in kept}
    assert all(keep_slice(s) == (k in kept_idx) for k, s in every)
    assert all(float(np.mean(s > -0.9)) >= 0.02 for _, s in kept)


def test_read_dicom_ct_in_hounsfield_and_multiframe_mr(shared_data):
    ct, info = readers.read_dicom(shared_data / "dicom" / "CT_small.dcm")
    assert info["modality"] == "CT" and ct.shape == (1, 128, 128)
    assert ct.min() < -500 and info["rescale"][1] != 0  # intercept applied: air/fat is negative HU
    mr, info = readers.read_dicom(shared_data / "dicom" / "emri_small.dcm")
    assert info["modality"] == "MR" and mr.shape == (10, 64, 64)
    assert readers.file_kind(shared_data / "dicom" / "MR_small.dcm") == "dicom"


def test_to_square_keeps_aspect_pads_black_and_inverts():
    img = np.ones((1, 40, 20), np.float32)  # tall white image
    square, geo = to_square(img, 16)
    assert square.shape == (1, 16, 16)
    assert (geo["new_h"], geo["new_w"]) == (16, 8)
    np.testing.assert_array_equal(square[0, :, :4], -1.0)
    np.testing.assert_array_equal(square[0, :, 12:], -1.0)
    np.testing.assert_allclose(square[0, :, 4:12], 1.0)
    assert from_square(square, geo).shape == (1, 40, 20)
