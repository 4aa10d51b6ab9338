"""`medsyn edges` and `medsyn eval edges`: library-equal edge maps, NIfTI geometry, statistics
that see noise and broken lines, and the error contract."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from conftest import run_cli
from PIL import Image
from scipy import ndimage
from skimage import feature, filters

from medsyn_cli import edges as E
from medsyn_cli.cli import eval_edges


@pytest.fixture
def ct_slice(shared_data) -> Path:
    return shared_data / "covid-ct-noncovid" / "102.png"


def _ct_files(shared_data, n: int) -> list[Path]:
    return sorted((shared_data / "covid-ct-noncovid").glob("*.png"))[:n]


# -- edge maps equal the libraries' own results -------------------------------------------------
@pytest.mark.realdata
def test_edge_map_equals_the_library_result_for_each_method(ct_slice):
    img = E.read_grey(ct_slice)
    assert img.ndim == 2 and 0.0 <= img.min() and img.max() <= 1.0
    np.testing.assert_allclose(E.edge_map(img, "sobel"), filters.sobel(img), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(E.edge_map(img, "sobel", 1.5), filters.sobel(ndimage.gaussian_filter(img, 1.5)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(E.edge_map(img, "canny").astype(bool), feature.canny(img, sigma=1.0))
    np.testing.assert_array_equal(E.edge_map(img, "canny", 2.0).astype(bool), feature.canny(img, sigma=2.0))
    np.testing.assert_allclose(E.edge_map(img, "laplacian"), np.abs(ndimage.gaussian_laplace(img, 1.0)),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(E.edge_map(img, "laplacian", 0), np.abs(ndimage.laplace(img)), rtol=1e-6, atol=1e-7)


@pytest.mark.realdata
@pytest.mark.parametrize("method", E.METHODS)
def test_cli_png_is_the_library_edge_map(ct_slice, tmp_path, method):
    r = run_cli("edges", ct_slice, "--method", method, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    out = Path(r.stdout.strip())
    assert out == tmp_path / f"102_{method}.png"
    written = np.asarray(Image.open(out))
    img = E.read_grey(ct_slice)
    reference = {
        "sobel": filters.sobel(img),
        "canny": feature.canny(img, sigma=1.0).astype(float),
        "laplacian": np.abs(ndimage.gaussian_laplace(img, 1.0)),
    }[method]
    expected = np.round(reference / reference.max() * 255)
    assert written.shape == img.shape
    assert np.abs(written.astype(float) - expected).max() <= 1  # 8-bit rounding only


@pytest.mark.realdata
def test_overlay_colours_the_edges_over_the_grey_image(ct_slice, tmp_path):
    r = run_cli("edges", ct_slice, "--method", "canny", "--overlay", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    rgb = np.asarray(Image.open(r.stdout.strip()))
    img = E.read_grey(ct_slice)
    edges = feature.canny(img, sigma=1.0)
    assert rgb.shape == img.shape + (3,)
    assert (rgb[edges] == np.round(E.OVERLAY_COLOUR * 255)).all()  # edges in colour
    off = ~edges
    assert (rgb[off][:, 0] == rgb[off][:, 1]).all()  # grey elsewhere
    assert np.abs(rgb[off][:, 0] - np.round(img[off] * 255)).max() <= 1


# -- NIfTI ------------------------------------------------------------------------------------
def _small_volume(shared_data, tmp_path) -> Path:
    """A crop of the real T1 volume with a non-trivial affine, written to tmp."""
    src = nib.load(shared_data / "mri-slices" / "ch2.nii.gz")
    data = np.asarray(src.dataobj)[60:100, 80:128, 80:92]
    affine = src.affine.copy()
    affine[:3, 3] += [3.0, -2.0, 7.5]
    path = tmp_path / "crop.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.int16), affine), path)
    return path


@pytest.mark.realdata
def test_nifti_edges_keep_affine_shape_and_equal_the_library_per_slice(shared_data, tmp_path):
    src_path = _small_volume(shared_data, tmp_path)
    r = run_cli("edges", src_path, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    out_path = Path(r.stdout.strip())
    assert out_path == tmp_path / "out" / "crop_sobel.nii.gz"
    src, out = nib.load(src_path), nib.load(out_path)
    assert out.shape == src.shape
    np.testing.assert_array_equal(out.affine, src.affine)
    assert out.get_data_dtype() == np.float32
    np.testing.assert_array_equal(out.header.get_zooms(), src.header.get_zooms())
    volume = np.asarray(src.dataobj).astype(np.float64)
    lo, hi = np.percentile(volume, [0.5, 99.5])
    unit = np.clip((volume - lo) / (hi - lo), 0, 1)
    edges = np.asarray(out.dataobj)
    for z in (0, 5, 11):  # RAS volume: axial slices run along the third axis
        np.testing.assert_allclose(edges[:, :, z], filters.sobel(unit[:, :, z]), atol=1e-5)


def test_axial_axis_follows_the_affine():
    assert E.axial_axis(np.eye(4)) == 2
    swapped = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    assert E.axial_axis(swapped) == 0  # voxel axis 0 runs along S


# -- inputs -------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_folder_and_stdin_inputs(shared_data, tmp_path):
    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    files = _ct_files(shared_data, 2)
    for f in files:
        Image.open(f).convert("L").resize((48, 40)).save(src / f.name)
    r = run_cli("edges", tmp_path / "in", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    expected = [tmp_path / "out" / "sub" / f"{f.stem}_sobel.png" for f in files]
    assert [Path(p) for p in r.stdout.split()] == expected and all(p.exists() for p in expected)
    r = run_cli("edges", "-", "--method", "laplacian", "--out", tmp_path / "out2",
                input="\n".join(str(src / f.name) for f in files) + "\n")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 2


# -- errors exit 2 ------------------------------------------------------------------------------
def test_unreadable_image_is_an_input_error(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    r = run_cli("edges", bad, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert "broken.png" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "broken_sobel.png").exists()


def test_existing_output_needs_force(tmp_path):
    img = tmp_path / "a.png"
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) % 255).astype(np.uint8)).save(img)
    assert run_cli("edges", img, "--out", tmp_path).returncode == 0
    r = run_cli("edges", img, "--out", tmp_path)
    assert r.returncode == 2 and "a_sobel.png" in r.stderr and "--force" in r.stderr
    assert run_cli("edges", img, "--out", tmp_path, "--force").returncode == 0


@pytest.mark.parametrize("args,needle", [
    (["--method", "prewitt"], "unknown edge method"),
    (["--sigma", "-1"], "--sigma"),
])
def test_bad_options_exit_2(tmp_path, args, needle):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    r = run_cli("edges", img, "--out", tmp_path / "o", *args)
    assert r.returncode == 2 and needle in r.stderr


def test_missing_input_and_unsupported_type_exit_2(tmp_path):
    r = run_cli("edges", tmp_path / "nope.png", "--out", tmp_path / "o")
    assert r.returncode == 2 and "nope.png" in r.stderr
    (tmp_path / "notes.txt").write_text("hi")
    r = run_cli("edges", tmp_path / "notes.txt", "--out", tmp_path / "o")
    assert r.returncode == 2 and "notes.txt" in r.stderr


# -- statistics ---------------------------------------------------------------------------------
def test_identical_sets_have_zero_distance():
    rng = np.random.default_rng(0)
    images = ndimage.gaussian_filter(rng.random((4, 32, 32)), (0, 2, 2))
    stats = E.edge_statistics(images, images.copy())
    assert stats["distance"]["wasserstein"] == 0.0
    assert stats["distance"]["js_divergence"] == pytest.approx(0.0, abs=1e-12)
    assert stats["real"]["edge_density"] == stats["fake"]["edge_density"]


def test_broken_lines_give_more_small_components():
    solid = np.zeros((3, 64, 64))
    solid[:, 12:52, 32] = 1.0  # a vertical bright line
    broken = np.zeros_like(solid)
    for start in range(12, 52, 8):  # the same line broken into 2-pixel dashes with 6-pixel gaps
        broken[:, start:start + 2, 32] = 1.0
    stats = E.edge_statistics(solid, broken, method="canny", sigma=0.5, min_size=8)
    assert stats["fake"]["small_components_per_image"] > stats["real"]["small_components_per_image"]
    assert stats["fake"]["small_component_fraction"] > stats["real"]["small_component_fraction"]


@pytest.mark.realdata
@pytest.mark.parametrize("method", E.METHODS)
def test_noisy_images_show_a_noisier_background(shared_data, method):
    real = E.load_grey_set(_ct_files(shared_data, 10), 64)
    rng = np.random.default_rng(0)
    noisy = np.clip(real + rng.normal(0, 0.08, real.shape), 0, 1)
    stats = E.edge_statistics(real, noisy, method=method)
    # The threshold-free measure sees the noise whatever the method; the thresholded density sees it
    # for canny and laplacian (sobel's Otsu edge threshold, about 0.19, is above noise of 0.08).
    assert stats["fake"]["background_gradient_mean"] > 1.3 * stats["real"]["background_gradient_mean"]
    if method != "sobel":
        assert stats["fake"]["background_edge_density"] > stats["real"]["background_edge_density"] + 0.005
    assert stats["distance"]["wasserstein"] > 0


@pytest.mark.realdata
def test_eval_edges_json_on_real_vs_noisy_folders(shared_data, tmp_path):
    real_dir, noisy_dir = tmp_path / "real", tmp_path / "noisy"
    real_dir.mkdir()
    noisy_dir.mkdir()
    rng = np.random.default_rng(1)
    for f in _ct_files(shared_data, 8):
        grey = np.asarray(Image.open(f).convert("L").resize((64, 64)), dtype=np.float64)
        Image.fromarray(grey.astype(np.uint8)).save(real_dir / f.name)
        noisy = np.clip(grey + rng.normal(0, 20, grey.shape), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(noisy_dir / f.name)
    app = typer.Typer()

    @app.callback()
    def _eval() -> None:
        """A stand-in for the `medsyn eval` group."""

    eval_edges.register(app)
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["edges", str(real_dir), str(noisy_dir), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert stats["res"] == [64, 64] and stats["real"]["n_images"] == stats["fake"]["n_images"] == 8
    assert stats["fake"]["background_gradient_mean"] > 1.3 * stats["real"]["background_gradient_mean"]
    assert stats["fake"]["edge_density"] > stats["real"]["edge_density"]
    assert stats["fake"]["small_components_per_image"] > stats["real"]["small_components_per_image"]
    assert len(stats["real"]["gradient"]["histogram"]) == len(stats["histogram_bin_edges"]) - 1
    assert set(stats["distance"]) == {"wasserstein", "js_divergence", "kl_divergence"}
    table = CliRunner().invoke(app, ["edges", str(real_dir), str(noisy_dir)])
    assert table.exit_code == 0 and "background gradient mean" in table.stdout
