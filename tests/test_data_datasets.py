"""load_dataset beyond the basics: cache invalidation, DICOM/NumPy/volume layouts, BraTS on the fly,
three channels on two domains, and bad inputs raised in-process."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn_cli.data import cache, load_dataset, phantoms, readers
from medsyn_cli.data.intensity import mapping_for
from medsyn_cli.errors import InputError


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


def _folder(tmp_path, n=4, shape=(20, 40)):
    rng = np.random.default_rng(1)
    for i in range(n):
        _png(tmp_path / "imgs" / f"{i}.png", rng.integers(0, 255, shape))
    return tmp_path / "imgs"


def test_cache_key_follows_settings_and_content(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    calls = []
    real = readers.read_image_raw
    monkeypatch.setattr(readers, "read_image_raw", lambda p: calls.append(p) or real(p))
    first = load_dataset(folder, res=16)
    assert len(calls) == 4
    assert torch.equal(load_dataset(folder, res=16).images, first.images) and len(calls) == 4  # hit
    load_dataset(folder, res=16, use_cache=False)
    assert len(calls) == 8  # bypassed
    load_dataset(folder, res=32)
    assert len(calls) == 12  # another setting, another entry
    _png(folder / "1.png", np.zeros((20, 40)))
    changed = load_dataset(folder, res=16)
    assert len(calls) == 16 and not torch.equal(changed.images, first.images)  # edited file, new entry
    (folder / "3.png").rename(folder / "9.png")
    renamed = load_dataset(folder, res=16)
    assert len(calls) == 20 and renamed.sources[-1] == "9.png"
    assert len(cache.entries()) == 4


def test_nifti_file_drops_empty_slices_in_order(tmp_path):
    import nibabel as nib

    vol = np.zeros((16, 16, 10), np.float32)
    vol[2:14, 2:14, 3:7] = np.random.default_rng(0).uniform(50, 100, (12, 12, 4))
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "v.nii.gz"))
    data = load_dataset(tmp_path / "v.nii.gz", res=16)
    assert [s.rsplit("#", 1)[1] for s in data.sources] == ["z=3", "z=4", "z=5", "z=6"]
    assert data.intensity["kind"] == "percentile"


def test_real_dicom_folder_frames_and_mappings(shared_data):
    data = load_dataset(shared_data / "dicom", res=32)
    files = {s.split("#", 1)[0] for s in data.sources}
    assert len(files) == 7  # every file gives at least one image
    assert sum(s.startswith("emri_small.dcm#frame=") for s in data.sources) > 1  # multi-frame -> slices
    assert mapping_for(data.intensity, "CT_small.dcm")["kind"] == "ct_window"
    assert mapping_for(data.intensity, "eCT_Supplemental.dcm#frame=0")["kind"] == "ct_window"
    assert mapping_for(data.intensity, "MR_small.dcm")["kind"] == "percentile"
    assert data.images.min() >= -1 and data.images.max() <= 1


def test_npy_in_unit_range_passes_unchanged(tmp_path):
    stack = np.linspace(-1, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    np.save(tmp_path / "stack.npy", stack)
    data = load_dataset(tmp_path / "stack.npy", res=8)
    np.testing.assert_allclose(data.images[:, 0].numpy(), stack, atol=1e-6)
    assert data.intensity["kind"] == "range"


def test_brats_cases_on_the_fly_with_another_modality(shared_data):
    data = load_dataset(shared_data / "brats2018-sample", res=32, task="translation", modality="flair")
    assert len(data.normal) > 10 and len(data.tumor) > 10
    assert bool(data.tumor.has_mask.all()) and float(data.tumor.masks.sum()) > 0
    assert all("_flair.nii.gz#z=" in s for s in data.normal.sources + data.tumor.sources)
    assert data.normal.intensity["kind"] == "per_source"  # one percentile mapping per volume


def test_two_domain_three_channels_keep_masks(tmp_path):
    for i in range(2):
        _png(tmp_path / "normal" / f"n{i}.png", np.full((16, 16), 90))
        _png(tmp_path / "tumor" / f"t{i}.png", np.full((16, 16), 200))
    _png(tmp_path / "masks" / "t0.png", np.pad(np.full((4, 4), 255), 6))
    data = load_dataset(tmp_path, res=16, channels=3, task="translation")
    assert data.normal.images.shape == (2, 3, 16, 16) and data.tumor.masks.shape == (2, 1, 16, 16)
    assert data.tumor.has_mask.tolist() == [True, False] and float(data.tumor.masks[0].sum()) == 16


def test_phantom_specs_match_the_generator():
    ct = load_dataset("phantom:ct?n=6&seed=2", res=32)
    np.testing.assert_array_equal(ct.images.numpy(), phantoms.ct(6, 32, 2))
    with pytest.raises(InputError, match="unknown phantom"):
        load_dataset("phantom:lung", res=32)
    with pytest.raises(InputError, match="tumor domain"):
        load_dataset("phantom:ct", res=32, task="translation")


def test_bad_inputs_raise_before_anything_is_cached(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty folder"):
        load_dataset(tmp_path / "empty", res=16)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="no readable image"):
        load_dataset(tmp_path / "text", res=16)
    with pytest.raises(InputError, match="unsupported format"):
        load_dataset(tmp_path / "text" / "readme.txt", res=16)
    with pytest.raises(InputError, match="no such file"):
        load_dataset(tmp_path / "missing", res=16)
    with pytest.raises(InputError, match="translation dataset needs"):
        load_dataset(tmp_path / "text", res=16, task="translation")
    with pytest.raises(InputError, match="channels"):
        load_dataset("phantom:ct", res=16, channels=2)
    assert cache.entries() == []
