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


# ------------------------------------------------------------------------------------- more formats and modes


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK"])
def test_read_image_any_8bit_mode_keeps_the_ramp(tmp_path, mode):
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    Image.fromarray(grey, "L").convert(mode).save(path)
    arr, mapping = readers.read_image(path)
    assert arr.shape == (1, 16, 32) and mapping == {"kind": "uint8"}
    assert arr[0, 0, -1] > arr[0, 0, 0]  # dark left, bright right in every mode


def test_read_image_16bit_uses_percentiles_and_inverts(tmp_path):
    from medsyn_cli.data.intensity import invert_mapping

    raw = (np.arange(64 * 64).reshape(64, 64) * 10).astype(np.uint16)
    Image.fromarray(raw).save(tmp_path / "deep.png")
    arr, mapping = readers.read_image(tmp_path / "deep.png")
    assert mapping["kind"] == "percentile" and 0 < mapping["lo_value"] < mapping["hi_value"] <= raw.max()
    inside = (raw >= mapping["lo_value"]) & (raw <= mapping["hi_value"])
    np.testing.assert_allclose(invert_mapping(arr, mapping)[0][inside], raw[inside], rtol=1e-4, atol=1e-2)


def test_corrupt_png_is_an_input_error_naming_it(tmp_path):
    from medsyn_cli.errors import InputError

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(good)
    (tmp_path / "bad.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError) as exc:
        readers.read_image(tmp_path / "bad.png")
    assert "bad.png" in exc.value.one_line() and "corrupt" in exc.value.one_line()


def test_list_images_sorted_recursive_and_filtered(tmp_path):
    for name in ("b.png", "a.JPG", "c.bmp", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.tif").write_bytes(b"x")
    assert [p.name for p in readers.list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp", "d.tif"]
    assert readers.file_kind(tmp_path / "x.nii.gz") == "nifti" and readers.file_kind(tmp_path / "notes.txt") is None


def _nifti(path, data):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4)), str(path))
    return path


def test_read_volume_4d_2d_truncated_and_trailing_axis(tmp_path):
    from medsyn_cli.errors import InputError

    four_d = _nifti(tmp_path / "four.nii.gz", np.arange(8 * 8 * 8 * 3).reshape(8, 8, 8, 3))
    with pytest.raises(InputError, match="4D volume"):
        readers.read_volume(four_d)
    vol, _ = readers.read_volume(four_d, volume_index=2)
    np.testing.assert_array_equal(vol, np.arange(8 * 8 * 8 * 3).reshape(8, 8, 8, 3)[..., 2])
    with pytest.raises(InputError, match="out of range"):
        readers.read_volume(four_d, volume_index=3)
    with pytest.raises(InputError, match="2D NIfTI"):
        readers.read_volume(_nifti(tmp_path / "flat.nii", np.zeros((8, 8))))
    full = _nifti(tmp_path / "full.nii.gz", np.random.default_rng(0).normal(size=(32, 32, 32)))
    (tmp_path / "trunc.nii.gz").write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    with pytest.raises(InputError, match="truncated") as exc:
        readers.read_volume(tmp_path / "trunc.nii.gz")
    assert "trunc.nii.gz" in exc.value.one_line()
    assert readers.read_volume(_nifti(tmp_path / "t.nii", np.ones((4, 5, 6, 1))))[0].shape == (4, 5, 6)


def test_brats_lps_volume_is_shown_anterior_up(shared_data):
    case = shared_data / "brats2018-sample" / "Brats18_2013_2_1"
    vol, img = readers.read_volume(case / "Brats18_2013_2_1_t1ce.nii.gz")
    slices = slice_volume(vol, "axial", img.affine)
    # stored LPS: the RAS view flips both in-plane axes; the display rotation puts anterior at the top
    np.testing.assert_array_equal(np.rot90(slices[77][1], -1)[::-1, ::-1], vol[:, :, 77])


def test_ch2_every_axis_round_trips(shared_data):
    vol, img = readers.read_volume(shared_data / "mri-slices" / "ch2.nii.gz")
    for axis, n in (("axial", 181), ("coronal", 217), ("sagittal", 181)):
        slices = slice_volume(vol, axis, img.affine)
        assert len(slices) == n
        np.testing.assert_array_equal(assemble_volume([s for _, s in slices], axis, img.affine), vol)


def test_enhanced_multiframe_ct_rescale_from_functional_groups(shared_data):
    import pydicom

    frames, info = readers.read_dicom(shared_data / "dicom" / "eCT_Supplemental.dcm")
    stored = pydicom.dcmread(shared_data / "dicom" / "eCT_Supplemental.dcm").pixel_array
    assert frames.shape == (2, 512, 512) and info["rescale"] == [1.0, -1024.0]
    np.testing.assert_array_equal(frames, stored.astype(np.float32) - 1024.0)


def test_dicom_garbage_is_an_input_error(tmp_path):
    from medsyn_cli.errors import InputError

    (tmp_path / "bad.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    with pytest.raises(InputError, match="bad.dcm"):
        readers.read_dicom(tmp_path / "bad.dcm")


def test_read_array_layouts(tmp_path):
    from medsyn_cli.errors import InputError

    np.save(tmp_path / "nhw.npy", np.zeros((5, 8, 9), np.float32))
    np.save(tmp_path / "nhwc.npy", np.zeros((5, 8, 9, 3), np.uint8))
    np.savez(tmp_path / "stack.npz", other=np.zeros(3), images=np.zeros((2, 1, 8, 8), np.float32))
    assert readers.read_array(tmp_path / "nhw.npy").shape == (5, 1, 8, 9)
    assert readers.read_array(tmp_path / "nhwc.npy").shape == (5, 3, 8, 9)
    assert readers.read_array(tmp_path / "stack.npz").shape == (2, 1, 8, 8)
    np.save(tmp_path / "bad.npy", np.zeros((2, 5, 8, 8)))
    with pytest.raises(InputError, match="unsupported array shape"):
        readers.read_array(tmp_path / "bad.npy")


# ------------------------------------------------------------------------------------- mappings and squaring


def test_mappings_round_trip_clip_and_combine():
    from medsyn_cli.data.intensity import (apply_mapping, combine_mappings, ct_window_mapping, invert_mapping,
                                           mapping_for, percentile_mapping)

    values = np.linspace(-1200, 1500, 1000)
    ct = ct_window_mapping(40, 400)
    mapped = apply_mapping(values, ct)
    assert mapped.min() == -1.0 and mapped.max() == 1.0
    inside = (values >= -160) & (values <= 240)
    np.testing.assert_allclose(invert_mapping(mapped, ct)[inside], values[inside], atol=1e-3)
    pm = percentile_mapping(np.arange(1000.0), 1, 99, mask=np.arange(1000) >= 500)
    assert 500 <= pm["lo_value"] < pm["hi_value"] <= 999
    assert combine_mappings({"a": ct, "b": dict(ct)}) == ct
    mixed = combine_mappings({"a": ct, "b": pm})
    assert mapping_for(mixed, "b#z=3") == pm and mapping_for(ct, "anything") == ct


@pytest.mark.parametrize("h, w", [(30, 60), (60, 30), (47, 47), (113, 250)])
def test_to_square_keeps_aspect_for_any_shape(h, w):
    sq, geo = to_square(np.full((1, h, w), 0.5, np.float32), 32)
    inner = sq[0] > -1.0
    rows, cols = np.where(inner)
    assert (np.ptp(rows) + 1, np.ptp(cols) + 1) == (geo["new_h"], geo["new_w"])
    assert max(geo["new_h"], geo["new_w"]) == 32 and abs(geo["new_h"] / geo["new_w"] - h / w) < 0.1
    assert np.all(sq[0][~inner] == -1.0)


def test_from_square_round_trip_and_antialiasing():
    y, x = np.mgrid[0:90, 0:150] / 30.0
    smooth = (np.sin(x) * np.cos(y) * 0.8)[None].astype(np.float32)
    sq, geo = to_square(smooth, 64)
    back = from_square(sq, geo)
    assert back.shape == smooth.shape and np.abs(back - smooth).mean() < 0.02
    # a pixel checkerboard shrinks to flat grey (antialiased), not to aliased stripes
    checker = (np.indices((128, 128)).sum(0) % 2 * 2.0 - 1.0)[None].astype(np.float32)
    checker += np.random.default_rng(0).normal(0, 1e-3, checker.shape).astype(np.float32)
    assert np.abs(to_square(checker, 32)[0]).max() < 0.1
