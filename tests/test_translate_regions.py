"""`medsyn translate --where REGION --mask-out MASK`: the change stays inside a region (outside it the output is
the input, value for value), and the mask of what changed is written beside the output, so synthetic tumor
slices come with masks a segmentation model can train on."""

from __future__ import annotations

import json
import os
import shutil
import textwrap

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from medsyn_cli.metrics.translation import CHANGE_LEVEL
from medsyn_cli.model import supports_region
from medsyn_cli.translation_regions import changed_mask, effective_region
from test_translate import ONE_THREAD, _one_line_error, export_run, force_attention, head_volume, tiny_model, \
    write_nifti

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest


@pytest.fixture(scope="module")
def sag_run(tmp_path_factory):
    """A tiny sag-gan whose attention is 1 everywhere: inside a region every pixel is the generator's."""
    model = tiny_model("sag-gan", res=32)
    force_attention(model, 1.0)
    return export_run(model, tmp_path_factory.mktemp("sag") / "run")


@pytest.fixture(scope="module")
def cyc_run(tmp_path_factory):
    return export_run(tiny_model("cyclegan", res=32), tmp_path_factory.mktemp("cyc") / "run", name="cyclegan")


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An 8-bit grey image with structure and no black (so every pixel is 'head')."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 3, h), np.linspace(0, 3, w), indexing="ij")
    return np.clip(120 + 60 * np.sin(2 * x) * np.cos(3 * y) + rng.normal(0, 8, (h, w)), 30, 230).astype(np.uint8)


def box(shape, rows, cols) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def save_png(path, array):
    Image.fromarray(array).save(path)
    return path


def load(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def translate(*args):
    return run_cli("translate", *map(str, args), "--device", "cpu", env=ONE_THREAD)


# -- images -------------------------------------------------------------------------------------------
def test_png_outside_the_region_is_the_input_exactly_and_the_mask_is_the_attention_inside_it(sag_run, tmp_path):
    pixels = textured(40, 56)  # not square, not the model's 32: resampled both ways
    roi = box(pixels.shape, (10, 28), (20, 44))
    save_png(tmp_path / "in.png", pixels)
    save_png(tmp_path / "roi.png", roi.astype(np.uint8) * 255)
    proc = translate("--to", "tumor", tmp_path / "in.png", "--model", sag_run, "--where", tmp_path / "roi.png",
                     "-o", tmp_path / "out.png", "--mask-out", tmp_path / "mask.png",
                     "--attention-out", tmp_path / "att.png", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    out, mask, att = load(tmp_path / "out.png"), load(tmp_path / "mask.png"), load(tmp_path / "att.png")
    assert np.array_equal(out[~roi], pixels[~roi])  # outside the region: voxel for voxel
    assert not np.array_equal(out[roi], pixels[roi])  # inside: translated
    assert mask.dtype == np.uint8 and mask.shape == pixels.shape and set(np.unique(mask)) <= {0, 255}
    inside = mask > 0
    assert inside.sum() > 0.8 * roi.sum() and not (inside & ~roi).any()  # attention 1: the region, no more
    assert np.array_equal(inside, att > 127)  # the mask is the attention above 0.5
    assert record["region"] == str(tmp_path / "roi.png") and record["mask"] == str(tmp_path / "mask.png")
    assert record["mask_pixels"] == int(inside.sum())


def test_16_bit_png_keeps_its_values_outside_the_region(tmp_path):
    from medsyn_cli.translation import translate_image

    model = tiny_model("sag-gan", res=32)
    force_attention(model, 1.0)
    pixels = (textured(36, 36, seed=3).astype(np.uint16) * 40 + 500)
    roi = box(pixels.shape, (4, 20), (6, 30))
    save_png(tmp_path / "in16.png", pixels)
    save_png(tmp_path / "roi.png", roi.astype(np.uint8))  # any non-zero value is inside
    outcome = translate_image(model, tmp_path / "in16.png", tmp_path / "out16.png", "tumor",
                              region_path=tmp_path / "roi.png", mask_target=tmp_path / "m.png")
    out = load(outcome.output)
    assert out.dtype == np.uint16 and np.array_equal(out[~roi], pixels[~roi])
    assert outcome.mask_pixels == int((load(outcome.mask) > 0).sum()) > 0


def test_cyclegan_with_a_region_changes_only_the_region_and_its_mask_is_the_region(cyc_run, tmp_path):
    pixels = textured(48, 48, seed=1)
    roi = box(pixels.shape, (8, 30), (12, 40))
    save_png(tmp_path / "in.png", pixels)
    save_png(tmp_path / "roi.png", roi.astype(np.uint8) * 255)
    proc = translate("--to", "tumor", tmp_path / "in.png", "--model", cyc_run, "--where", tmp_path / "roi.png",
                     "--mask-out", tmp_path / "mask.png")
    assert proc.returncode == 0, proc.stderr
    out = load(tmp_path / "in_to-tumor.png")
    assert np.array_equal(out[~roi], pixels[~roi]) and not np.array_equal(out[roi], pixels[roi])
    mask = load(tmp_path / "mask.png") > 0
    assert np.array_equal(mask, effective_region(roi, 32))  # no attention: the region the model could change
    assert mask.sum() > 0.9 * roi.sum()


def test_cyclegan_mask_without_a_region_is_the_changed_pixels(cyc_run, tmp_path):
    pixels = textured(32, 32, seed=2)
    save_png(tmp_path / "in.png", pixels)
    proc = translate("--to", "normal", tmp_path / "in.png", "--model", cyc_run, "--mask-out", tmp_path / "m.png",
                     "--json")
    assert proc.returncode == 0, proc.stderr
    mask = load(tmp_path / "m.png") > 0
    change = np.abs(load(tmp_path / "in_to-normal.png").astype(float) - pixels) / 255  # |y - x| / 2 in [-1, 1]
    assert mask.any() and (~mask).any()
    assert change[mask].min() >= CHANGE_LEVEL - 1 / 255 and change[~mask].max() <= CHANGE_LEVEL + 1 / 255
    record = json.loads(proc.stdout)
    assert record["mask_pixels"] == int(mask.sum()) and record["region"] is None


def test_changed_mask_rules():
    x = np.zeros((1, 4, 4), np.float32)
    y = x.copy()
    y[0, 0, 0] = 0.5  # |y - x| / 2 = 0.25: changed
    y[0, 1, 1] = 0.1  # 0.05: not
    within = np.ones((4, 4), bool)
    within[0, 0] = False
    assert changed_mask(x, y, None).sum() == 1 and changed_mask(x, y, None)[0, 0]
    assert not changed_mask(x, y, None, within).any()
    attention = np.full((1, 4, 4), 0.2, np.float32)
    attention[0, 2:, 2:] = 0.9
    assert np.array_equal(changed_mask(x, y, attention), attention[0] > 0.5)
    assert np.array_equal(changed_mask(x, x, None, within, region=True), within)


# -- volumes ------------------------------------------------------------------------------------------
def sphere(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def test_volume_outside_the_region_is_the_input_exactly_and_the_mask_a_nifti_like_it(sag_run, tmp_path):
    vol = head_volume((40, 48, 6))
    img = write_nifti(tmp_path / "head.nii.gz", vol)
    roi = sphere(vol.shape, (20, 24, 2.5), 9)
    nib.save(nib.Nifti1Image(roi.astype(np.uint8), np.eye(4)), str(tmp_path / "roi.nii.gz"))  # affine not compared
    proc = translate("--to", "tumor", tmp_path / "head.nii.gz", "--model", sag_run, "--where", tmp_path / "roi.nii.gz",
                     "--mask-out", tmp_path / "mask.nii.gz", "--attention-out", tmp_path / "att.nii.gz", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    data = np.asarray(nib.load(record["output"]).dataobj)
    assert data.dtype == np.int16 and np.array_equal(data[~roi], vol[~roi])  # voxel for voxel
    assert not np.array_equal(data[roi], vol[roi])
    assert record["slices_translated"] == 4 and record["slices_skipped"] == 2  # the empty first and last slices

    written = nib.load(str(tmp_path / "mask.nii.gz"))
    mask = np.asarray(written.dataobj)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1} and mask.shape == vol.shape
    assert np.allclose(written.affine, img.affine) and written.header["descrip"] == img.header["descrip"]
    inside = mask.astype(bool)
    assert not (inside & ~(roi & (vol > 0))).any()  # within the region and the brain
    assert inside.sum() > 0.8 * (roi & (vol > 0)).sum()  # attention 1: all of it, less resampling slivers
    assert np.array_equal(inside, np.asarray(nib.load(str(tmp_path / "att.nii.gz")).dataobj) > 0.5)
    assert record["mask_pixels"] == int(inside.sum()) and record["region"] == str(tmp_path / "roi.nii.gz")


def test_a_region_in_few_slices_skips_the_others(cyc_run, tmp_path):
    vol = head_volume((40, 48, 6))
    write_nifti(tmp_path / "head.nii.gz", vol)
    roi = np.zeros(vol.shape, np.float32)
    roi[10:30, 12:36, 3] = 0.7  # one slice; any non-zero value is inside
    write_nifti(tmp_path / "roi.nii.gz", roi)
    proc = translate("--to", "tumor", tmp_path / "head.nii.gz", "--model", cyc_run, "--where", tmp_path / "roi.nii.gz",
                     "--mask-out", tmp_path / "m.nii.gz", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert (record["slices_translated"], record["slices_skipped"]) == (1, 5)
    data = np.asarray(nib.load(record["output"]).dataobj)
    inside = roi > 0
    assert np.array_equal(data[~inside], vol[~inside]) and not np.array_equal(data[inside], vol[inside])
    mask = np.asarray(nib.load(str(tmp_path / "m.nii.gz")).dataobj).astype(bool)
    assert mask[..., 3].sum() > 0.9 * inside.sum() and not (mask & ~inside).any()


def test_sag_gan_mask_without_a_region_is_its_attention_inside_the_brain(tmp_path):
    run = export_run(tiny_model("sag-gan", res=32), tmp_path / "run")  # untrained: attention about 0.5
    vol = head_volume((40, 48, 6))
    write_nifti(tmp_path / "head.nii.gz", vol)
    proc = translate("--to", "tumor", tmp_path / "head.nii.gz", "--model", run, "--mask-out", tmp_path / "m.nii.gz",
                     "--attention-out", tmp_path / "a.nii.gz")
    assert proc.returncode == 0, proc.stderr
    mask = np.asarray(nib.load(str(tmp_path / "m.nii.gz")).dataobj).astype(bool)
    attention = np.asarray(nib.load(str(tmp_path / "a.nii.gz")).dataobj)
    assert np.array_equal(mask, attention > 0.5) and mask.any() and not (mask & (vol == 0)).any()


# -- refusals -----------------------------------------------------------------------------------------
def test_bad_regions_are_refused_before_the_model_in_one_line(sag_run, tmp_path):
    save_png(tmp_path / "in.png", textured(40, 40))
    save_png(tmp_path / "small.png", np.full((30, 40), 255, np.uint8))
    save_png(tmp_path / "empty.png", np.zeros((40, 40), np.uint8))
    vol = head_volume((40, 48, 6))
    write_nifti(tmp_path / "head.nii.gz", vol)
    write_nifti(tmp_path / "wrong.nii.gz", np.ones((40, 48, 5), np.uint8))
    write_nifti(tmp_path / "none.nii.gz", np.zeros(vol.shape, np.uint8))
    cases = [
        ("in.png", "missing.png", "missing.png", "no such region mask"),
        ("in.png", "small.png", "small.png", "40x30"),
        ("in.png", "empty.png", "empty.png", "empty"),
        ("in.png", "none.nii.gz", "none.nii.gz", "PNG/JPEG"),
        ("head.nii.gz", "wrong.nii.gz", "wrong.nii.gz", "(40, 48, 5)"),
        ("head.nii.gz", "none.nii.gz", "none.nii.gz", "empty"),
    ]
    for image, region, named, what in cases:
        proc = translate("--to", "tumor", tmp_path / image, "--model", sag_run, "--where", tmp_path / region,
                         "-o", tmp_path / ("o.png" if image.endswith("png") else "o.nii.gz"))
        _one_line_error(proc, str(tmp_path / named), what)
    assert not list(tmp_path.glob("o.*"))

    folder = tmp_path / "normal"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        save_png(folder / name, textured(40, 40))
    (tmp_path / "rois").mkdir()
    save_png(tmp_path / "rois" / "a.png", np.full((40, 40), 255, np.uint8))
    _one_line_error(translate("--to", "tumor", folder, "--model", sag_run, "--where", tmp_path / "rois",
                              "-o", tmp_path / "out"), str(tmp_path / "rois" / "b.png"), "no region mask for b.png")
    _one_line_error(translate("--to", "tumor", folder, "--model", sag_run, "--where", tmp_path / "rois" / "a.png",
                              "-o", tmp_path / "out"), "a folder holding one mask per input")
    _one_line_error(translate("--to", "tumor", folder, "--model", sag_run, "-o", tmp_path / "out",
                              "--mask-out", tmp_path / "out"), "the mask would overwrite")
    _one_line_error(translate("--to", "tumor", tmp_path / "head.nii.gz", "--model", sag_run,
                              "--mask-out", tmp_path / "m.png"), str(tmp_path / "m.png"), "NIfTI")
    assert not (tmp_path / "out").exists()


OLD_MODEL = """
    from dataclasses import dataclass

    import torch
    from torch import nn

    from medsyn_cli.hookspecs import hookimpl
    from medsyn_cli.model import GANModel
    from medsyn_cli.registry import ModelSpec


    @dataclass
    class OldConfig:
        lr: float = 1e-3


    class OldTranslator(GANModel):
        \"\"\"Written against the older contract: translate(x, to), no region.\"\"\"

        task = "translation"
        inference_networks = ("to_tumor",)

        def __init__(self, config, res, channels):
            super().__init__(config, res, channels)
            self.networks = {"to_tumor": nn.Conv2d(channels, channels, 3, padding=1)}
            self.optimizers = {}

        def translate(self, x, to):
            return torch.tanh(self.networks["to_tumor"](x.to(self.device))), None


    @hookimpl
    def register_models(register):
        register(ModelSpec(name="old-translator", task="translation", config_cls=OldConfig, citation="none",
                           summary="test model", resolutions=(32,), channels=(1,),
                           factory=lambda c, r, ch: OldTranslator(c, r, ch)))
"""


def test_a_model_without_region_support_is_refused_with_where_and_works_without(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "medsyn_oldtr.py").write_text(textwrap.dedent(OLD_MODEL))
    info = site / "medsyn_oldtr-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medsyn-oldtr\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[medsyn]\noldtr = medsyn_oldtr\n")
    monkeypatch.syspath_prepend(str(site))
    from medsyn_oldtr import OldConfig, OldTranslator

    model = OldTranslator(OldConfig(), 32, 1)
    assert not supports_region(model) and supports_region(tiny_model("cyclegan"))
    run = export_run(model, tmp_path / "run", name="old-translator")
    save_png(tmp_path / "in.png", textured(32, 32))
    save_png(tmp_path / "roi.png", np.full((32, 32), 255, np.uint8))
    env = {**ONE_THREAD, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = run_cli("translate", "--to", "tumor", tmp_path / "in.png", "--model", run, "--where", tmp_path / "roi.png",
                   env=env)
    _one_line_error(proc, str(run), "'old-translator'", "no 'region'")
    assert not (tmp_path / "in_to-tumor.png").exists()
    proc = run_cli("translate", "--to", "tumor", tmp_path / "in.png", "--model", run, "--mask-out",
                   tmp_path / "m.png", env=env)  # the change mask needs no region support
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.png").is_file()


# -- a dataset of synthetic tumors with masks -----------------------------------------------------------
def test_a_folder_gives_tumor_images_and_masks_a_translation_dataset_reads(sag_run, tmp_path):
    normal = tmp_path / "normal"
    normal.mkdir()
    rois = tmp_path / "rois"
    rois.mkdir()
    for i in range(3):
        save_png(normal / f"case{i}_z050.png", textured(40, 40, seed=i))
        save_png(rois / f"case{i}_z050.png", box((40, 40), (5 + 3 * i, 25 + 3 * i), (10, 30)).astype(np.uint8) * 255)
    syn = tmp_path / "syn"
    args = ("--to", "tumor", normal, "--model", sag_run, "--where", rois, "-o", syn / "tumor",
            "--mask-out", syn / "masks")
    proc = translate(*args)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (syn / "tumor").iterdir() if not p.name.startswith("."))
    assert names == [f"case{i}_z050_to-tumor.png" for i in range(3)]
    assert sorted(p.name for p in (syn / "masks").iterdir() if not p.name.startswith(".")) == names
    _one_line_error(translate(*args), "output exists")
    assert translate(*args, "--force").returncode == 0  # masks are recorded as medsyn's own outputs

    shutil.copytree(normal, syn / "normal")
    proc = run_cli("data", "info", syn, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["kind"] == "two-domain" and info["tumor"]["images"] == 3 and info["masks"] == 3

    from medsyn_cli.data.datasets import load_dataset

    data = load_dataset(syn, res=32, task="translation")
    assert len(data.tumor.images) == 3 and bool(data.tumor.has_mask.all())
    areas = data.tumor.masks.sum(dim=(1, 2, 3))
    assert bool((areas > 0.2 * 32 * 32).all()) and bool((areas < 0.5 * 32 * 32).all())  # the 20x20 boxes
