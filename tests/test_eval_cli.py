"""`medsyn eval fid|kid|pr|embed` end to end: inputs, JSON, caching, warnings, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

N = 10


def smooth_images(seed: int, n: int, size: int = 48) -> np.ndarray:
    """Grey uint8 images of blurred noise blobs: cheap, varied, deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2)
        out.append(np.clip(255 * (0.7 * blob + 0.3 * rng.random((size, size))), 0, 255).astype(np.uint8))
    return np.stack(out)


def write_folder(folder: Path, images: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture
def sides(tmp_path) -> tuple[Path, Path, np.ndarray]:
    fake_pixels = smooth_images(1, N)
    return write_folder(tmp_path / "real", smooth_images(0, N)), write_folder(tmp_path / "fake", fake_pixels), fake_pixels


def test_fid_kid_pr_json_with_every_setting_then_real_comes_from_the_cache(sides, fid_weights):
    real, fake, _ = sides
    r = run_cli("eval", "fid", real, fake, "--metrics", "fid,kid,pr", "--json", "--weights", fid_weights,
                "--kid-subsets", "10")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    m = out["metrics"]
    assert m["fid"] > 0 and np.isfinite(m["fid"])
    assert set(m) == {"fid", "kid_mean", "kid_std", "precision", "recall"}
    assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert out["fid_biased_small_n"] is True and "biased" in r.stderr
    s = out["settings"]
    assert s["weights"]["sha256"].startswith("a238e9d9") and s["weights"]["path"] == str(fid_weights.resolve())
    assert "bilinear" in s["resize"] and "299" in s["resize"] and "Inception" in s["feature_extractor"]
    assert s["kid"]["subsets"] == 10 and s["kid"]["subset_size"] == N and s["pr"]["k"] == 3
    assert out["real"]["count"] == out["fake"]["count"] == N
    assert out["real"]["cached"] is False
    # Second evaluation against the same REAL: statistics from the cache, same features, same KID.
    r2 = run_cli("eval", "kid", real, fake, "--json", "--weights", fid_weights, "--kid-subsets", "10")
    assert r2.returncode == 0, r2.stderr
    out2 = json.loads(r2.stdout)
    assert out2["real"]["cached"] is True and out2["real"]["cache_key"] == out["real"]["cache_key"]
    assert out2["metrics"]["kid_mean"] == m["kid_mean"]
    assert "fid_biased_small_n" not in out2 and "biased" not in r2.stderr


def test_npy_stack_and_stdin_give_the_same_features_as_the_png_folder(sides, fid_weights, tmp_path):
    real, fake, fake_pixels = sides
    base = run_cli("eval", "pr", real, fake, "--json", "--weights", fid_weights, "--metrics", "kid,pr",
                   "--kid-subsets", "3")
    assert base.returncode == 0, base.stderr
    expected = json.loads(base.stdout)["metrics"]
    stack = (fake_pixels.astype(np.float32) / 127.5 - 1.0)[:, None]  # (N, 1, H, W) in [-1, 1]
    np.save(tmp_path / "fake.npy", stack)
    via_npy = run_cli("eval", "pr", real, tmp_path / "fake.npy", "--json", "--weights", fid_weights,
                      "--metrics", "kid,pr", "--kid-subsets", "3")
    assert json.loads(via_npy.stdout)["metrics"] == expected
    paths = "\n".join(str(p) for p in sorted(fake.iterdir())) + "\n"
    via_stdin = run_cli("eval", "pr", real, "-", "--weights", fid_weights, "--metrics", "kid,pr",
                        "--kid-subsets", "3", input=paths)
    assert via_stdin.returncode == 0, via_stdin.stderr
    table = dict(line.split(None, 1) for line in via_stdin.stdout.strip().splitlines())
    assert table["precision"].startswith(f"{expected['precision']:.4f}")
    assert table["KID"].startswith(f"{expected['kid_mean']:.6f}")
    assert table["FAKE"].startswith(f"{N} images")


def test_nifti_volume_side_is_sliced(tmp_path, fid_weights):
    nib = pytest.importorskip("nibabel")
    vol = np.zeros((40, 40, 8), dtype=np.float32)
    yy, xx = np.mgrid[0:40, 0:40]
    dist = np.sqrt((yy - 20.0) ** 2 + (xx - 20.0) ** 2)
    for z in range(2, 7):  # five slices with a bright-centred disc; slices 0, 1 and 7 are empty and dropped
        vol[..., z] = (dist < 12) * (300.0 - 10 * dist)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "vol.nii.gz")
    write_folder(tmp_path / "fake", smooth_images(2, 6, size=40))
    r = run_cli("eval", "kid", tmp_path / "vol.nii.gz", tmp_path / "fake", "--json", "--weights", fid_weights,
                "--kid-subsets", "2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["real"]["count"] == 5 and out["real"]["kinds"] == ["volume"]


@pytest.mark.parametrize("case", ["empty", "unreadable", "channels", "weights", "both-stdin"])
def test_bad_inputs_are_one_line_errors_with_exit_2(case, sides, fid_weights, tmp_path):
    real, fake, _ = sides
    weights = fid_weights
    stdin = None
    if case == "empty":
        fake = tmp_path / "empty"
        fake.mkdir()
    elif case == "unreadable":
        (fake / "zzz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    elif case == "channels":
        colour = np.random.default_rng(0).integers(0, 256, (N, 48, 48, 3), dtype=np.uint8)
        fake = tmp_path / "colour"
        fake.mkdir()
        for i, img in enumerate(colour):
            Image.fromarray(img).save(fake / f"{i}.png")
    elif case == "weights":
        import torch

        weights = tmp_path / "not_fid.pth"
        torch.save({"conv.weight": torch.zeros(3, 3)}, weights)
    elif case == "both-stdin":
        real = fake = "-"
        stdin = ""
    r = run_cli("eval", "kid", real, fake, "--weights", weights, "--kid-subsets", "2", input=stdin)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsyn: error:"), r.stderr
    expected = {"empty": "empty", "unreadable": "zzz_broken.png", "channels": "channel counts",
                "weights": "not the FID Inception network", "both-stdin": "stdin"}[case]
    assert expected in lines[0]


def test_unknown_metric_is_a_usage_error(sides, fid_weights):
    real, fake, _ = sides
    r = run_cli("eval", "fid", real, fake, "--metrics", "fid,is", "--weights", fid_weights)
    assert r.returncode == 2 and "unknown metric" in r.stderr


def test_embed_writes_four_pngs_and_refuses_to_overwrite(sides, fid_weights, tmp_path):
    real, fake, _ = sides
    out = tmp_path / "plots"
    r = run_cli("eval", "embed", real, fake, "--out", out, "--weights", fid_weights)
    assert r.returncode == 0, r.stderr
    printed = [Path(p) for p in r.stdout.split()]
    assert [p.name for p in printed] == ["pca_2d.png", "pca_3d.png", "kde_1d.png", "kde_2d.png"]
    for p in printed:
        with Image.open(p) as img:
            assert img.format == "PNG" and img.width > 200
    again = run_cli("eval", "embed", real, fake, "--out", out, "--weights", fid_weights)
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.mark.slow
def test_baseline_adds_a_real_vs_real_split_half_fid(sides, fid_weights):
    real, fake, _ = sides
    r = run_cli("eval", "fid", real, fake, "--baseline", "--json", "--weights", fid_weights)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["metrics"]["fid_baseline_real_split_half"] > 0
    assert out["settings"]["baseline"]["sizes"] == [N // 2, N - N // 2]
    table = run_cli("eval", "fid", real, fake, "--baseline", "--weights", fid_weights)
    assert "FID real-vs-real" in table.stdout


def test_eval_help_lists_every_command():
    r = run_cli("eval", "--help")
    assert r.returncode == 0
    for cmd in ("fid", "kid", "pr", "classify", "embed", "edges"):
        assert cmd in r.stdout
