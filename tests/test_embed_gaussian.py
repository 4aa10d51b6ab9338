"""`medsyn eval embed --gaussian-samples N`: PCA/KDE of samples from the normals fitted to each side's
features, as the CT thesis drew them (section 4.3.1-4.3.2), beside the raw-feature plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.metrics.embed import FILES, GAUSSIAN_FILES, gaussian_samples, plot_gaussian_embeddings


def correlated_features(m: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)) @ rng.standard_normal((d, d)) + rng.uniform(-5, 5, d)


def test_samples_have_the_fitted_mean_and_covariance():
    feats = correlated_features(60, 4)
    draws = gaussian_samples(feats, 200_000, np.random.default_rng(1))
    assert draws.shape == (200_000, 4)
    mu, cov = feats.mean(0), np.cov(feats, rowvar=False)
    scale = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mu) < 0.02 * scale)
    assert np.allclose(np.cov(draws, rowvar=False), cov, atol=0.02 * scale.max() ** 2)
    # Not a resampling of the rows: fresh points from the continuous normal.
    assert not np.isin(draws[:100].round(9), feats.round(9)).any()


def test_samples_stay_in_the_span_of_a_singular_covariance():
    feats = correlated_features(5, 30)  # fewer images than features, as with 2048-d Inception features
    draws = gaussian_samples(feats, 1000, np.random.default_rng(0))
    centred = feats - feats.mean(0)
    basis, _, _ = np.linalg.svd(centred.T, full_matrices=False)  # the span of the centred rows
    residual = (draws - feats.mean(0)) - (draws - feats.mean(0)) @ basis @ basis.T
    assert np.abs(residual).max() < 1e-8
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_samples(feats[:1], 10, np.random.default_rng(0))


def test_gaussian_plots_are_written_beside_and_are_seeded(tmp_path):
    real, fake = correlated_features(20, 16, seed=1), correlated_features(20, 16, seed=2) + 3
    a = plot_gaussian_embeddings(real, fake, tmp_path / "a", 300)
    b = plot_gaussian_embeddings(real, fake, tmp_path / "b", 300)
    assert [Path(p).name for p in a["files"]] == list(GAUSSIAN_FILES)
    assert a["samples"] == 300 and a["seed"] == 0
    assert a["explained_variance_ratio"] == b["explained_variance_ratio"]  # the same draws for a seed
    for p in a["files"]:
        with Image.open(p) as img:
            assert img.format == "PNG" and img.width > 200


def _blobs(folder: Path, seed: int, n: int = 8) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48] / 48
    for i in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8, 3)
        img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (r / 2) ** 2) * 180 + 60 * rng.random((48, 48))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.slow  # Inception on CPU and eight plots: about a minute on the shared 2-core machine
def test_cli_writes_both_sets_of_plots(fid_weights, tmp_path):
    real, fake = _blobs(tmp_path / "real", 0), _blobs(tmp_path / "fake", 1)
    out = tmp_path / "plots"
    r = run_cli("eval", "embed", real, fake, "--out", out, "--weights", fid_weights, "--device", "cpu",
                "--gaussian-samples", "200", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert [Path(p).name for p in result["files"]] == list(FILES)
    assert [Path(p).name for p in result["gaussian"]["files"]] == list(GAUSSIAN_FILES)
    assert result["gaussian"]["samples"] == 200
    assert all((out / name).is_file() for name in FILES + GAUSSIAN_FILES)
    # The gaussian plots are outputs too: no overwrite without --force.
    for name in FILES:
        (out / name).unlink()
    again = run_cli("eval", "embed", real, fake, "--out", out, "--weights", fid_weights, "--device", "cpu",
                    "--gaussian-samples", "200")
    assert again.returncode == 2 and "--force" in again.stderr
