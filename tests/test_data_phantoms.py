"""The phantom generators themselves: deterministic, varied, anatomically plausible, consistent masks, fast."""

from __future__ import annotations

import time

import numpy as np

from medsyn_cli.data import phantoms


def test_brain_deterministic_seeded_and_varied():
    a = phantoms.brain(6, 64, seed=3)
    b = phantoms.brain(6, 64, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], phantoms.brain(6, 64, seed=4)[0])
    assert np.abs(a[0][0] - a[0][1]).mean() > 0.05  # samples within a batch differ


def test_brain_masks_are_binary_sized_and_match_the_lesion():
    normal, tumor, masks = phantoms.brain(16, 64, seed=0)
    assert normal.shape == tumor.shape == masks.shape == (16, 1, 64, 64)
    assert normal.dtype == np.float32 and normal.min() >= -1 and normal.max() <= 1
    assert set(np.unique(masks)) <= {0.0, 1.0}
    area = masks.sum(axis=(1, 2, 3))
    assert np.all(area > 10) and np.all(area < 0.25 * 64 * 64)
    np.testing.assert_array_equal(tumor * (1 - masks), normal * (1 - masks))
    changed = (np.abs(tumor - normal) > 0.05).sum(axis=(1, 2, 3))
    assert np.all(changed > 0.3 * area)  # the lesion is visible over much of its mask


def test_brain_is_left_right_asymmetric_with_dark_skull_ring():
    normal, _, _ = phantoms.brain(8, 64, seed=1)
    assert np.all(np.abs(normal - normal[..., ::-1]).mean(axis=(1, 2, 3)) > 0.02)
    centre_row = normal[:, 0, 32]
    assert np.all(centre_row[:, 0] == -1.0)  # background at the edge
    assert np.all(centre_row[:, 28:36].mean(axis=1) > -0.5)  # tissue in the middle


def test_ct_deterministic_with_air_and_bone():
    a = phantoms.ct(8, 64, seed=0)
    np.testing.assert_array_equal(a, phantoms.ct(8, 64, seed=0))
    assert a.shape == (8, 1, 64, 64) and a.min() >= -1 and a.max() <= 1
    assert np.all(a[:, 0, 0, 0] < -0.95)  # air in the corner
    assert np.all((a > 0.95).sum(axis=(1, 2, 3)) > 5)  # bone saturates the window
    assert not np.array_equal(a, phantoms.ct(8, 64, seed=1))


def test_512_phantoms_at_64_are_fast():
    start = time.perf_counter()
    phantoms.brain(512, 64, seed=0)
    brain_s = time.perf_counter() - start
    phantoms.ct(512, 64, seed=0)
    # ~0.7 s and ~0.9 s on one idle core here; the bound leaves room for a loaded CI machine
    assert brain_s < 6.0 and time.perf_counter() - start < 12.0
