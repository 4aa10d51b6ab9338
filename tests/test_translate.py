"""`medsyn translate` and medsyn_cli.translation: naming, resizing, NIfTI round trip, errors."""

import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import run_cli
from medsyn_cli.config import build_config
from medsyn_cli.errors import InputError
from medsyn_cli.registry import get_model
from medsyn_cli.training.export import export_weights
from medsyn_cli.translation import (
    default_output,
    files_in,
    percentiles_of,
    plan_outputs,
    translate_image,
    translate_volume,
)

TINY = {"ngf": "4", "ndf": "4", "attention_ngf": "4", "se_reduction": "4", "n_blocks": "1"}
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny CLI runs on a busy 2-core machine


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest


def tiny_model(name: str = "sag-gan", res: int = 32, channels: int = 1, **overrides):
    spec = get_model(name)
    keys = {f.name for f in dataclasses.fields(spec.config_cls)}
    cfg = build_config(spec.config_cls, {k: v for k, v in {**TINY, **overrides}.items() if k in keys})
    torch.manual_seed(0)
    return spec.factory(cfg, res, channels).eval()


def force_attention(model, value: float) -> None:
    for name in ("attn_normal", "attn_tumor"):
        last = [m for m in model.networks[name].modules() if isinstance(m, nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(1000.0 if value == 1 else -1000.0)


def export_run(model, run_dir, name="sag-gan", task="translation"):
    """A run folder with weights.safetensors, as the trainer leaves it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    states = {k: model.networks[k].state_dict() for k in model.inference_networks}
    intensity = {"normal": {"kind": "percentile", "low": 0.5, "high": 99.5, "lo_value": 0.0, "hi_value": 1.0},
                 "tumor": {"kind": "percentile", "low": 0.5, "high": 99.5, "lo_value": 0.0, "hi_value": 1.0}}
    export_weights(run_dir / "weights.safetensors", states, model=name, task=task, res=model.res,
                   channels=model.channels, step=1, config=dataclasses.asdict(model.config),
                   intensity=intensity if task == "translation" else {"kind": "uint8"}, ema=False)
    return run_dir


def head_volume(shape=(40, 48, 6), dtype=np.int16) -> np.ndarray:
    """An ellipsoid 'head' of varied intensity on a 0 background; the first and last slices empty."""
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    vol = np.zeros(shape, dtype=np.float64)
    for z in range(1, shape[2] - 1):
        inside = (x / 0.8) ** 2 + (y / 0.7) ** 2 < 1
        vol[..., z] = np.where(inside, 300 + 200 * np.sin(5 * x + z) * np.cos(3 * y), 0)
    return vol.astype(dtype)


def write_nifti(path, data, descrip=b"medsyn test"):
    affine = np.array([[-1.2, 0, 0, 10], [0, -1.0, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    img.header["descrip"] = descrip
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return img


# -- naming and output planning --------------------------------------------------------------
def test_default_outputs_sit_beside_the_input_with_the_direction_in_the_name(tmp_path):
    assert default_output(tmp_path / "case_t1ce.nii.gz", "tumor") == tmp_path / "case_t1ce_to-tumor.nii.gz"
    assert default_output(tmp_path / "scan.nii", "normal") == tmp_path / "scan_to-normal.nii"
    assert default_output(tmp_path / "slice.jpg", "tumor") == tmp_path / "slice_to-tumor.png"


def test_plan_outputs_refuses_overwrites_and_uses_folders_for_several_inputs(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.nii.gz"
    for p in (a, b):
        p.write_bytes(b"x")
    out_dir = tmp_path / "out"
    plans = plan_outputs([a, b], "tumor", out_dir, out_dir, force=False)
    assert [p[1] for p in plans] == [out_dir / "a_to-tumor.png", out_dir / "b_to-tumor.nii.gz"]
    assert plans[0][2] == out_dir / "a_to-tumor_attention.png"
    with pytest.raises(InputError, match="overwrite an input"):
        plan_outputs([a], "tumor", a, None, force=True)
    (tmp_path / "a_to-tumor.png").write_bytes(b"x")
    with pytest.raises(InputError, match="output exists"):
        plan_outputs([a], "tumor", None, None, force=False)
    with pytest.raises(InputError, match="not written by medsyn"):  # --force overwrites only medsyn's files
        plan_outputs([a], "tumor", None, None, force=True)
    from medsyn_cli.outputs import record_outputs

    record_outputs([tmp_path / "a_to-tumor.png"], "translate")
    assert plan_outputs([a], "tumor", None, None, force=True)[0][1] == tmp_path / "a_to-tumor.png"
    with pytest.raises(InputError, match="PNG"):
        plan_outputs([a], "tumor", tmp_path / "x.jpg", None, force=False)
    with pytest.raises(InputError, match="NIfTI"):
        plan_outputs([b], "tumor", tmp_path / "x.png", None, force=False)


def test_percentiles_come_from_the_runs_intensity_record():
    rec = {"normal": {"kind": "percentile", "low": 1.0, "high": 99.0},
           "tumor": {"kind": "per_source", "by_source": {"a": {"kind": "percentile", "low": 2.0, "high": 98.0}}}}
    assert percentiles_of(rec, "normal") == (1.0, 99.0)
    assert percentiles_of(rec, "tumor") == (2.0, 98.0)
    assert percentiles_of({"kind": "uint8"}) == (0.5, 99.5)
    assert percentiles_of(None) == (0.5, 99.5)


# -- images ----------------------------------------------------------------------------------
def test_png_at_model_size_round_trips_exactly_under_zero_attention(tmp_path):
    model = tiny_model(res=32)
    force_attention(model, 0.0)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    outcome = translate_image(model, tmp_path / "in.png", tmp_path / "out.png", "tumor", tmp_path / "att.png")
    assert np.array_equal(np.asarray(Image.open(outcome.output)), pixels)
    att = Image.open(outcome.attention)
    assert att.mode == "L" and att.size == (32, 32) and np.asarray(att).max() == 0


def test_jpeg_of_another_size_comes_back_as_png_of_the_input_size(tmp_path):
    model = tiny_model(res=32)
    pixels = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.jpg")
    outcome = translate_image(model, tmp_path / "in.jpg", tmp_path / "out.png", "normal")
    out = Image.open(outcome.output)
    assert out.format == "PNG" and out.mode == "L" and out.size == (70, 50)
    assert outcome.attention is None


def test_16_bit_png_stays_16_bit(tmp_path):
    model = tiny_model(res=32)
    force_attention(model, 0.0)
    pixels = np.random.default_rng(2).integers(1000, 4000, (32, 32)).astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "in16.png")
    outcome = translate_image(model, tmp_path / "in16.png", tmp_path / "out16.png", "tumor")
    out = np.asarray(Image.open(outcome.output))
    assert out.dtype == np.uint16 and out.shape == (32, 32)
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    assert np.abs(out.astype(float) - np.clip(pixels, lo, hi)).max() <= 1.0  # M = 0: back within rounding


# -- volumes ---------------------------------------------------------------------------------
def test_volume_keeps_shape_affine_header_dtype_and_background(tmp_path):
    model = tiny_model(res=32)
    vol = head_volume()
    img = write_nifti(tmp_path / "head.nii.gz", vol)
    out = translate_volume(model, tmp_path / "head.nii.gz", tmp_path / "out.nii.gz", "tumor",
                           tmp_path / "att.nii.gz", batch_size=3)
    res = nib.load(str(out.output))
    data = np.asarray(res.dataobj)
    assert data.shape == vol.shape and data.dtype == np.int16
    assert np.allclose(res.affine, img.affine)
    assert res.header["descrip"] == img.header["descrip"]
    assert res.header.get_xyzt_units() == ("mm", "sec")
    assert np.array_equal(res.header.get_zooms(), img.header.get_zooms())
    background = vol == 0
    assert np.array_equal(data[background], vol[background])  # outside the head: untouched
    assert np.array_equal(data[..., 0], vol[..., 0]) and np.array_equal(data[..., -1], vol[..., -1])
    assert not np.array_equal(data[~background], vol[~background])  # inside: translated
    assert (out.slices_translated, out.slices_skipped) == (4, 2)

    att = nib.load(str(out.attention))
    a = np.asarray(att.dataobj)
    assert a.dtype == np.float32 and a.shape == vol.shape and np.allclose(att.affine, img.affine)
    assert a[background].max() == 0 and 0 < a.max() <= 1


def test_zero_attention_volume_round_trips_within_the_percentile_window(tmp_path):
    model = tiny_model(res=48)
    force_attention(model, 0.0)
    vol = head_volume((48, 48, 4))
    write_nifti(tmp_path / "head.nii", vol)
    out = translate_volume(model, tmp_path / "head.nii", tmp_path / "out.nii", "normal")
    data = np.asarray(nib.load(str(out.output)).dataobj).astype(np.float64)
    inside = vol > 0
    lo, hi = np.percentile(vol[inside], [0.5, 99.5])
    expected = np.clip(vol, lo, hi)  # M = 0: the input comes back, clipped to the mapped range
    assert np.abs(data[inside] - expected[inside]).max() <= 1.0  # integer rounding only


def test_float_inputs_are_written_as_float32(tmp_path):
    model = tiny_model(res=32)
    vol = head_volume(dtype=np.float64) / 7.0
    write_nifti(tmp_path / "f.nii.gz", vol)
    out = translate_volume(model, tmp_path / "f.nii.gz", tmp_path / "o.nii.gz", "tumor")
    data = np.asarray(nib.load(str(out.output)).dataobj)
    assert data.dtype == np.float32
    assert np.array_equal(data[vol == 0], np.zeros(int((vol == 0).sum()), np.float32))


def test_three_channel_model_refuses_a_volume(tmp_path):
    write_nifti(tmp_path / "v.nii.gz", head_volume())
    with pytest.raises(InputError, match="3 channels"):
        translate_volume(tiny_model(channels=3), tmp_path / "v.nii.gz", tmp_path / "o.nii.gz", "tumor")


# -- the command -----------------------------------------------------------------------------
def _one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_translates_with_default_weights_and_reports_errors(tmp_path):
    vol = head_volume()
    write_nifti(tmp_path / "head.nii.gz", vol)

    proc = run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", env=ONE_THREAD)
    _one_line_error(proc, "no translation weights", "medsyn weights default sag-gan")

    run = export_run(tiny_model(res=32), tmp_path / "run")
    from medsyn_cli.runs_index import set_default

    set_default("sag-gan", run)
    proc = run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", "--device", "cpu", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "head_to-tumor.nii.gz"
    assert proc.stdout.split() == [str(out)]
    assert nib.load(str(out)).shape == vol.shape

    proc = run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", env=ONE_THREAD)
    _one_line_error(proc, "output exists", "--force")

    four_d = np.stack([vol, vol], axis=-1)
    write_nifti(tmp_path / "4d.nii.gz", four_d)
    proc = run_cli("translate", "--to", "normal", tmp_path / "4d.nii.gz", env=ONE_THREAD)
    _one_line_error(proc, "4D", "4d.nii.gz")
    proc = run_cli("translate", "--to", "normal", tmp_path / "4d.nii.gz", "--volume-index", "1",
                   "--attention-out", tmp_path / "att.nii.gz", "--json", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["output"].endswith("4d_to-normal.nii.gz") and report["attention"] == str(tmp_path / "att.nii.gz")
    assert report["slices_translated"] == 4 and report["dtype"] == "int16"

    write_nifti(tmp_path / "flat.nii.gz", vol[..., 2])
    _one_line_error(run_cli("translate", "--to", "tumor", tmp_path / "flat.nii.gz", env=ONE_THREAD), "2D")
    _one_line_error(run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", "-o", tmp_path / "r.nii.gz",
                            "--res", "128", env=ONE_THREAD), "resolution 32", "128")
    _one_line_error(run_cli("translate", "--to", "sideways", tmp_path / "head.nii.gz", env=ONE_THREAD), "--to")


def test_cli_refuses_unconditional_models_and_attention_from_cyclegan(tmp_path):
    write_nifti(tmp_path / "head.nii.gz", head_volume())
    dcgan = get_model("dcgan")
    torch.manual_seed(0)
    gan = dcgan.factory(build_config(dcgan.config_cls, {"ngf": "4", "ndf": "4"}), 64, 1)
    run = export_run(gan, tmp_path / "dcgan-run", name="dcgan", task="unconditional")
    _one_line_error(run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", "--model", run, env=ONE_THREAD),
                    "unconditional")
    cyc = export_run(tiny_model("cyclegan", res=32), tmp_path / "cyc-run", name="cyclegan")
    _one_line_error(run_cli("translate", "--to", "tumor", tmp_path / "head.nii.gz", "--model", cyc,
                            "--attention-out", tmp_path / "a.nii.gz", env=ONE_THREAD), "no attention maps")


def test_loader_refuses_another_resolution_or_channel_count(tmp_path):
    from medsyn_cli.cli.translate import load_translator

    run = export_run(tiny_model(res=32), tmp_path / "run")
    model, meta = load_translator(run, "cpu", 32, 1)
    assert model.res == 32 and meta["model"] == "sag-gan" and model.task == "translation"
    with pytest.raises(InputError, match="resolution 32, not the requested 64"):
        load_translator(run, "cpu", 64, None)
    with pytest.raises(InputError, match="1 channel"):
        load_translator(run, "cpu", None, 3)


def test_cyclegan_translates_a_volume_without_attention(tmp_path):
    write_nifti(tmp_path / "head.nii.gz", head_volume())
    out = translate_volume(tiny_model("cyclegan"), tmp_path / "head.nii.gz", tmp_path / "o.nii.gz", "tumor",
                           tmp_path / "att.nii.gz")
    assert out.attention is None and not (tmp_path / "att.nii.gz").exists()
    assert nib.load(str(out.output)).shape == head_volume().shape


def test_a_folder_is_its_images_and_volumes_in_name_order(tmp_path):
    slices = tmp_path / "normal"
    (slices / "sub").mkdir(parents=True)
    for name in ("case_z002.png", "case_z001.png"):
        Image.fromarray(np.full((32, 32), 90, np.uint8)).save(slices / name)
    (slices / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(slices / ".case_z000.png")  # hidden: skipped
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(slices / "sub" / "deeper.png")  # not read: outputs would collide
    assert files_in([slices]) == [slices / "case_z001.png", slices / "case_z002.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder holds no image or NIfTI volume"):
        files_in([tmp_path / "empty"])

    run = export_run(tiny_model(res=32), tmp_path / "run")
    proc = run_cli("translate", "--to", "tumor", slices, "--model", run, "-o", tmp_path / "out", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "out" / f"case_z00{i}_to-tumor.png") for i in (1, 2)]
    _one_line_error(run_cli("translate", "--to", "tumor", tmp_path / "empty", "--model", run, env=ONE_THREAD),
                    "folder holds no image", "empty")
