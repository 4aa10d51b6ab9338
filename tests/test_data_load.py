"""load_dataset: shapes, range, padding, channels, the cache, two domains, phantoms, BraTS, plugins."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from medsyn_cli.data import brats, cache, load_dataset, readers
from medsyn_cli.data.types import ImageSet, TwoDomainSet
from medsyn_cli.data.volumes import slice_volume
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.plugins import pm

torch.set_num_threads(1)


def _png(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    _png(root / "tall.png", np.full((40, 20), 255, np.uint8))  # white, 2:1 portrait
    rgb = np.zeros((30, 30, 3), np.uint8)
    rgb[..., 0] = 200
    _png(root / "sub" / "colour.png", rgb, "RGB")
    Image.fromarray(np.full((24, 24), 1000, np.uint16)).save(root / "deep.tif")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_any_mode_resized_padded_and_channels(folder):
    data = load_dataset(folder, res=16, use_cache=False)
    assert isinstance(data, ImageSet) and data.images.shape == (3, 1, 16, 16)
    assert data.images.dtype == torch.float32 and data.images.min() >= -1 and data.images.max() <= 1
    assert data.sources == ["deep.tif", "sub/colour.png", "tall.png"]
    tall = data.images[2, 0]
    assert torch.all(tall[:, :4] == -1) and torch.all(tall[:, 12:] == -1)  # aspect kept: side padding
    assert torch.allclose(tall[:, 4:12], torch.tensor(1.0))
    # RGB (200, 0, 0) -> luma 0.299 * 200
    assert data.images[1, 0, 8, 8].item() == pytest.approx(round(0.299 * 200) / 127.5 - 1, abs=1e-4)
    assert data.intensity["kind"] == "per_source"  # the 16-bit TIFF gets percentiles, the PNGs uint8
    three = load_dataset(folder, res=16, channels=3, use_cache=False)
    assert three.images.shape == (3, 3, 16, 16) and torch.equal(three.images[:, 0], three.images[:, 2])


def test_second_call_hits_the_cache_without_decoding(folder, monkeypatch):
    calls = []
    real = readers.read_image_raw

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(readers, "read_image_raw", counting)
    first = load_dataset(folder, res=16)
    assert len(calls) == 3
    second = load_dataset(folder, res=16)
    assert len(calls) == 3, "the second call decoded images"
    assert torch.equal(first.images, second.images) and first.sources == second.sources
    assert first.intensity == second.intensity
    entries = cache.entries()
    assert len(entries) == 1 and entries[0]["count"] == 3 and entries[0]["what"]["res"] == 16
    load_dataset(folder, res=32)  # another setting -> another key
    assert len(calls) == 6
    _png(folder / "tall.png", np.full((40, 20), 254, np.uint8))  # same size, new content -> miss
    load_dataset(folder, res=16)
    assert len(calls) == 9 and len(cache.entries()) == 3
    assert cache.clear()[0] == 3 and cache.entries() == []


def test_nifti_volume_is_sliced_with_sources(shared_data):
    path = shared_data / "mri-slices" / "ch2.nii.gz"
    data = load_dataset(path, res=32, use_cache=False)
    vol, img = readers.read_volume(path)
    assert 0 < len(data) < 181 and data.images.shape[1:] == (1, 32, 32)
    assert data.sources[0].startswith("ch2.nii.gz#z=") and data.intensity["kind"] == "percentile"
    assert all(torch.any(im > -0.9) for im in data.images)  # no empty slice kept


def test_two_domain_folder_with_partial_masks(tmp_path):
    root = tmp_path / "two"
    _png(root / "normal" / "n0.png", np.full((20, 20), 100, np.uint8))
    _png(root / "normal" / "n1.png", np.full((20, 20), 120, np.uint8))
    _png(root / "tumor" / "t0.png", np.full((20, 20), 140, np.uint8))
    _png(root / "tumor" / "t1.png", np.full((20, 20), 160, np.uint8))
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    _png(root / "masks" / "t1.png", mask)
    data = load_dataset(root, res=20, task="translation", use_cache=False)
    assert isinstance(data, TwoDomainSet) and len(data.normal) == 2 and len(data.tumor) == 2
    assert data.tumor.has_mask.tolist() == [False, True]
    assert data.tumor.masks.shape == (2, 1, 20, 20) and data.tumor.masks[0].sum() == 0
    assert data.tumor.masks[1].sum() == 25 and set(data.tumor.masks.unique().tolist()) == {0.0, 1.0}


def test_phantoms_are_deterministic_and_tumors_lie_in_the_brain():
    a = load_dataset("phantom:brain?n=4&seed=3", res=32, task="translation", use_cache=False)
    b = load_dataset("phantom:brain?n=4&seed=3", res=32, task="translation", use_cache=False)
    c = load_dataset("phantom:brain?n=4&seed=4", res=32, task="translation", use_cache=False)
    assert torch.equal(a.tumor.images, b.tumor.images) and not torch.equal(a.tumor.images, c.tumor.images)
    masks = a.tumor.masks.bool()
    assert masks.sum() > 0 and bool(a.tumor.has_mask.all())
    outside = ~masks.expand_as(a.tumor.images)
    assert torch.equal(a.tumor.images[outside], a.normal.images[outside])  # the tumor changes only the mask
    assert bool((a.normal.images[masks] > -0.9).all())  # every mask pixel lies on tissue, not background
    ct = load_dataset("phantom:ct?n=3&seed=1", res=32, use_cache=False)
    assert ct.images.shape == (3, 1, 32, 32) and ct.intensity["kind"] == "ct_window"
    assert len(load_dataset("phantom:ct", res=16, use_cache=False)) == 512


def test_brats_prepare_masks_match_seg_and_mask_fraction(shared_data):
    root = shared_data / "brats2018-sample"
    prep = brats.prepare(root, "t1ce", mask_fraction=0.25, seed=0)
    assert len(prep.normal) > 0 and len(prep.tumor) > 0
    assert sum(prep.has_mask) == round(0.25 * len(prep.tumor))
    assert all(s.tumor_area >= brats.MIN_TUMOR_AREA and s.brain_area >= brats.MIN_BRAIN_AREA for s in prep.tumor)
    assert all(s.tumor_area == 0 for s in prep.normal)
    checked = prep.tumor[len(prep.tumor) // 2]
    rel, z = checked.source.split("#z=")
    case_dir = root / rel.split("/")[0]
    seg, img = readers.read_volume(next(case_dir.glob("*_seg.nii.gz")))
    labels = dict(slice_volume(seg, "axial", img.affine))[int(z)]
    np.testing.assert_array_equal(checked.mask, (labels > 0).astype(np.float32))
    again = brats.prepare(root, "t1ce", mask_fraction=0.25, seed=0)
    assert again.has_mask == prep.has_mask


def test_plugin_registered_dataset_is_loaded_by_name():
    seen = []

    class _Toy:
        @hookimpl
        def register_datasets(self, register):
            def loader(path, res, channels):
                seen.append((path, res, channels))
                return ImageSet(torch.zeros(2, channels, res, res), ["a", "b"], {"kind": "uint8"})

            register("toyset", loader)

    pm.register(_Toy(), name="toy-datasets")
    try:
        data = load_dataset("toyset:anything", res=8, channels=3)
    finally:
        pm.unregister(name="toy-datasets")
    assert seen == [("toyset:anything", 8, 3)] and data.images.shape == (2, 3, 8, 8)


def test_real_covid_subset_loads_rgb_and_grey(shared_data, tmp_path):
    src = shared_data / "covid-ct-noncovid"
    picks = [f for f in sorted(src.iterdir())][:6]
    for f in picks:
        shutil.copy(f, tmp_path / f.name)
    data = load_dataset(tmp_path, res=32)
    assert data.images.shape == (6, 1, 32, 32) and data.intensity == {"kind": "uint8"}
    assert data.images.min() == -1 and data.images.max() > 0.5


def test_unconditional_load_of_a_two_domain_folder_skips_masks(tmp_path):
    for sub in ("normal", "tumor", "masks"):
        _png(tmp_path / sub / "a.png", np.full((8, 8), 255 if sub == "masks" else 60, np.uint8))
    data = load_dataset(tmp_path, res=8, use_cache=False)
    assert data.sources == ["normal/a.png", "tumor/a.png"]


def test_plugin_whose_dataset_registration_raises_is_isolated(tmp_path, capsys):
    class _Broken:
        @hookimpl
        def register_datasets(self, register):
            raise RuntimeError("no PACS connection")

    for i in range(2):
        _png(tmp_path / f"{i}.png", np.full((8, 8), 90, np.uint8))
    pm.register(_Broken(), name="broken-datasets")
    try:
        data = load_dataset(str(tmp_path), res=8, use_cache=False)
        with pytest.raises(Exception):
            load_dataset("pacs:study", res=8)
    finally:
        pm.unregister(name="broken-datasets")
    assert len(data) == 2
    assert "broken-datasets" in capsys.readouterr().err
