"""FID, KID and precision/recall arithmetic against closed forms and naive loops (no network)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from medsyn_cli.errors import MedsynError
from medsyn_cli.metrics.fid import fid_from_features, frechet_distance, split_half_indices, statistics
from medsyn_cli.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from medsyn_cli.metrics.precision_recall import knn_radii, precision_recall


# -- FID ----------------------------------------------------------------------------------------

def test_fid_of_one_dimensional_gaussians_is_the_closed_form():
    # For 1-D Gaussians: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (m1 - m2)^2 + (sd1 - sd2)^2.
    value = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]]))
    assert value == pytest.approx((1 - 3) ** 2 + (2 - 3) ** 2, abs=1e-12)


def test_fid_of_commuting_covariances_is_the_sum_over_axes():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, abs=1e-12)


def test_fid_matches_the_symmetric_eigen_form_for_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    # Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2), a symmetric PSD matrix: an independent route.
    w, v = np.linalg.eigh(s1)
    r = v @ np.diag(np.sqrt(w)) @ v.T
    tr = np.sum(np.sqrt(np.linalg.eigvalsh(r @ s2 @ r)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_fid_of_a_set_with_itself_is_zero_and_statistics_are_float64():
    feats = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    mu, sigma = statistics(feats)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64), rowvar=False))
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-9)


def test_fid_refuses_a_large_imaginary_square_root():
    # A negative "covariance" has an imaginary square root: pytorch-fid raises, so do we.
    for method in ("eigh", "scipy"):
        with pytest.raises(MedsynError, match="imaginary"):
            frechet_distance(np.zeros(1), np.array([[-1.0]]), np.zeros(1), np.array([[1.0]]), sqrtm=method)


def test_eigh_trace_root_matches_scipy_sqrtm_on_rank_deficient_covariances():
    # 30 samples of 512-d features: singular covariances, as every FID below 2048 images has.
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(size=(30, 512))) * rng.random(512)
    b = np.abs(rng.normal(size=(30, 512))) * rng.random(512) + 0.1
    s = [statistics(x) for x in (a, b)]
    fast = frechet_distance(*s[0], *s[1], sqrtm="eigh")
    reference = frechet_distance(*s[0], *s[1], sqrtm="scipy")
    assert fast == pytest.approx(reference, abs=1e-4)  # sqrtm itself is only this exact on singular products
    assert abs(fast - frechet_distance(*s[0], *s[0], sqrtm="eigh")) > 1.0  # not a constant


def test_trace_root_from_features_equals_the_eigen_route_and_is_taken_below_the_dimension(monkeypatch):
    from medsyn_cli.metrics import fid as fid_mod

    rng = np.random.default_rng(2)
    a = np.abs(rng.normal(size=(30, 256))) * rng.random(256)
    b = np.abs(rng.normal(size=(17, 256))) * rng.random(256) + 0.1  # uneven counts, as a split half
    s1, s2 = statistics(a), statistics(b)
    eigen = frechet_distance(*s1, *s2)  # no features: the two eigendecompositions
    # Equal up to the eigen route's round-off: it adds the roots of the ~1e-16 eigenvalues of the
    # null space (here ~1e-7 relative); the singular values have none.
    assert fid_mod.trace_sqrt_product_features(a, b) == pytest.approx(
        fid_mod.trace_sqrt_product(s1[1], s2[1]), rel=1e-6)

    def refuse(*args):
        raise AssertionError("the d x d eigen route ran although the features were given")

    monkeypatch.setattr(fid_mod, "trace_sqrt_product", refuse)
    assert frechet_distance(*s1, *s2, features=(a, b)) == pytest.approx(eigen, rel=1e-6)
    assert fid_from_features(a, b) == pytest.approx(eigen, rel=1e-6)
    # As many images as dimensions or more: the features route saves nothing, the eigen route runs.
    wide = rng.normal(size=(300, 256))
    assert not fid_mod.low_rank((wide, wide)) and fid_mod.low_rank((wide, a))
    with pytest.raises(AssertionError, match="eigen route"):
        fid_from_features(wide, wide[::-1])


def test_split_half_is_seeded_disjoint_and_complete():
    a, b = split_half_indices(11, seed=0)
    assert len(a) == 5 and len(b) == 6
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(11))
    a2, _ = split_half_indices(11, seed=0)
    a3, _ = split_half_indices(11, seed=1)
    assert np.array_equal(a, a2) and not np.array_equal(a, a3)


# -- KID ----------------------------------------------------------------------------------------

def test_kid_hand_computed_case():
    # d=1 (gamma=1), coef 1, degree 3: k(a, b) = (ab + 1)^3. x = {0, 1}, y = {1, 2}.
    # off-diagonal xx: 2 k(0,1) = 2; yy: 2 k(1,2) = 54; xy: k(0,1)+k(0,2)+k(1,1)+k(1,2) = 1+1+8+27 = 37
    # MMD²_u = (2 + 54) / (2 * 1) - 2 * 37 / 4 = 9.5, and every subset of size 2 is the whole set.
    out = kid(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]), subsets=5, subset_size=2)
    assert out["mean"] == pytest.approx(9.5)
    assert out["std"] == pytest.approx(0.0)
    assert out["subset_size"] == 2


def naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_subsets_match_a_naive_loop_with_torch_fidelity_draw_order():
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(15, 4)), rng.normal(0.5, 1.0, size=(12, 4))
    out = kid(f1, f2, subsets=4, subset_size=6, seed=7)
    draws = np.random.RandomState(7)
    values = []
    for _ in range(4):  # per subset: first side, then second side, as torch-fidelity draws
        x = f1[draws.choice(15, 6, replace=False)]
        y = f2[draws.choice(12, 6, replace=False)]
        values.append(naive_mmd2(x, y))
    assert out["mean"] == pytest.approx(np.mean(values), rel=1e-12)
    assert out["std"] == pytest.approx(np.std(values), rel=1e-9)


def test_kid_subset_size_is_capped_by_the_smaller_side_and_mmd_parts_agree():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    assert kid(x, rng.normal(size=(30, 3)), subsets=2)["subset_size"] == 9
    k = lambda a, b: polynomial_kernel(a, b)  # noqa: E731
    assert mmd2_unbiased(k(x, x), k(x, y), k(y, y)) == pytest.approx(naive_mmd2(x, y), rel=1e-12)


# -- precision / recall -------------------------------------------------------------------------

def test_precision_recall_hand_computed_case():
    # k=1 radii: real {0,1,2,10} -> 1,1,1,8; fake {0.5,2.9,5,20} -> 2.4,2.1,2.1,15.
    # precision: 0.5 (<=1 of 0), 2.9 (0.9 of 2), 5 (5 <= 8 of 10) inside; 20 outside -> 3/4.
    # recall: 0, 1, 2 near 0.5/2.9; 10 is 10 from 20 whose radius is 15 -> 4/4.
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[0.5], [5.0], [20.0], [2.9]])
    np.testing.assert_allclose(knn_radii(real, k=1), [1, 1, 1, 8])
    out = precision_recall(real, fake, k=1)
    assert out["precision"] == pytest.approx(0.75)
    assert out["recall"] == pytest.approx(1.0)


def test_precision_recall_match_a_naive_loop_at_k3():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(25, 6)), rng.normal(0.7, 1.2, size=(20, 6))

    def radii(s):
        return [sorted(np.linalg.norm(s[i] - s[j]) for j in range(len(s)) if j != i)[2] for i in range(len(s))]

    def cover(manifold, r, queries):
        return np.mean([any(np.linalg.norm(q - manifold[i]) <= r[i] for i in range(len(manifold)))
                        for q in queries])

    out = precision_recall(real, fake, k=3)
    assert out["precision"] == pytest.approx(cover(real, radii(real), fake))
    assert out["recall"] == pytest.approx(cover(fake, radii(fake), real))
    assert 0 < out["precision"] < 1 or 0 < out["recall"] < 1  # a case that discriminates


def test_precision_recall_needs_more_than_k_images():
    with pytest.raises(ValueError):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
    assert math.isclose(precision_recall(np.eye(5), np.eye(5), k=3)["precision"], 1.0)
