"""BraTS preparation written to disk: masks equal seg > 0, the loader reads masks/ back, thresholds hold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medsyn_cli.data import brats, load_dataset, readers, slice_volume


@pytest.fixture(scope="module")
def prepared():
    from conftest import SHARED_DATA

    root = SHARED_DATA / "brats2018-sample"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    return root, brats.prepare(root, "t1ce", mask_fraction=0.5, seed=3)


def test_split_respects_the_documented_thresholds(prepared):
    _, prep = prepared
    assert len(prep.normal) > 0 and len(prep.tumor) > 0
    assert all(s.brain_area >= brats.MIN_BRAIN_AREA for s in prep.normal + prep.tumor)
    assert all(s.tumor_area == 0 for s in prep.normal)
    assert all(s.tumor_area >= brats.MIN_TUMOR_AREA and s.mask.sum() == s.tumor_area for s in prep.tumor)
    assert len(prep.mappings) == 2 and all(m["lo_value"] > 0 for m in prep.mappings.values())
    stricter = brats.prepare(prepared[0], "t1ce", min_tumor_area=1000, min_brain_area=20000)
    assert len(stricter.tumor) < len(prep.tumor) and len(stricter.normal) < len(prep.normal)


def test_written_masks_equal_seg_and_the_loader_reads_them(prepared, tmp_path):
    root, prep = prepared
    out = tmp_path / "prep"
    out.mkdir()
    counts = brats.write(prep, out)
    assert counts["masks"] == sum(prep.has_mask) == round(0.5 * len(prep.tumor))
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert masks == sorted(s.name for s, kept in zip(prep.tumor, prep.has_mask) if kept)
    # a written mask is exactly seg > 0 of its slice, at native size
    name = masks[len(masks) // 2]
    case, z = name[: -len("_z000.png")], int(name[-7:-4])
    seg, img = readers.read_volume(root / case / f"{case}_seg.nii.gz")
    expected = dict(slice_volume(seg, "axial", img.affine))[z] > 0
    np.testing.assert_array_equal(np.asarray(Image.open(out / "masks" / name)) == 255, expected)
    doc = json.loads((out / "intensity.json").read_text())
    assert doc["volumes"] == prep.mappings
    data = load_dataset(out, res=32, task="translation")
    labelled = [s for s, h in zip(data.tumor.sources, data.tumor.has_mask.tolist()) if h]
    assert labelled == masks and len(data.normal) == len(prep.normal)
    assert data.tumor.intensity["volumes"] == prep.mappings


def test_mask_selection_is_seeded():
    a = brats.mask_selection(80, 0.125, 1)
    assert sum(a) == 10 and a == brats.mask_selection(80, 0.125, 1) and a != brats.mask_selection(80, 0.125, 2)
    assert sum(brats.mask_selection(7, 0.0, 0)) == 0 and all(brats.mask_selection(7, 1.0, 0))
