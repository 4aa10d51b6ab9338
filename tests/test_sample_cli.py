"""`medsyn sample`: formats, one path (or JSON object) per line, determinism by seed, all-or-nothing
output, and refusing translation models and bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from test_train_tiny import random_images, tiny_models, train  # noqa: F401

SMALL = ["ngf=8", "ndf=8", "latent_dim=16"]


def sample_here(capsys, source, out, **kw) -> list[str]:
    """Run the command's function in this process (a subprocess costs seconds on a busy machine)."""
    from medsyn_cli.cli.sample import sample

    args = dict(n=2, fmt="png", seed=0, batch_size=64, device="cpu", as_json=False, force=False, weights="last",
                amp=None)
    args.update(kw)
    capsys.readouterr()
    sample(source=str(source), out=str(out), **args)
    return capsys.readouterr().out.splitlines()


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    """A real (narrow) dcgan trained for two steps; shared by the tests of this module."""
    out = tmp_path_factory.mktemp("sample") / "run"
    train(out, random_images(8, res=64), model="dcgan", steps=2, batch_size=4, sets=SMALL)
    return out


def test_png_one_grey_image_per_line(dcgan_run, tmp_path):
    out = tmp_path / "fake"
    r = run_cli("sample", dcgan_run, "--n", "5", "--out", out, "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    paths = r.stdout.splitlines()
    assert paths == [str(out / f"sample_{i:05d}.png") for i in range(5)]
    with Image.open(paths[0]) as im:
        assert im.mode == "L" and im.size == (64, 64)
    assert sorted(p.name for p in out.iterdir()) == [".medsyn-output.json"] + [f"sample_{i:05d}.png" for i in range(5)]


def test_sampling_builds_no_optimizer_and_never_imports_the_compiler(dcgan_run, tmp_path):
    # Building a torch optimizer, or importing torchvision, imports torch._dynamo: ~4 s of CPU per
    # `medsyn sample` that sampling does not need. The model is built without optimizers.
    code = ("import sys; from medsyn_cli.cli.sample import sample; "
            f"sample(source={str(dcgan_run)!r}, out={str(tmp_path / 'fake')!r}, n=2, fmt='png', seed=0, "
            "batch_size=64, device='cpu', as_json=False, force=False, weights='last', amp=None); "
            "from medsyn_cli.training.checkpoint import load_for_inference; "
            f"model, _ = load_for_inference({str(dcgan_run)!r}); "
            "print(sorted(model.optimizers), sorted(m for m in ('torch._dynamo', 'torchvision') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[] []"
    assert len(list((tmp_path / "fake").glob("*.png"))) == 2


def test_npy_and_nii_hold_the_same_float_images(dcgan_run, tmp_path, capsys):
    npy = sample_here(capsys, dcgan_run, tmp_path / "a", n=3, fmt="npy", seed=4)
    nii = sample_here(capsys, dcgan_run / "checkpoints" / "latest.pt", tmp_path / "b", n=3, fmt="nii", seed=4)
    arr = np.load(npy[0])
    assert arr.shape == (1, 64, 64) and arr.dtype == np.float32 and arr.min() >= -1 and arr.max() <= 1
    img = nib.load(nii[0])
    assert img.shape == (64, 64, 1) and img.get_data_dtype() == np.float32
    assert np.allclose(img.affine, np.eye(4))
    # Read back the way medsyn slices volumes, the NIfTI is the same image as the .npy (exported
    # weights.safetensors and the checkpoint give the same generator).
    from medsyn_cli.data.volumes import slice_volume

    (_, plane), = slice_volume(np.asarray(img.dataobj), "axial", img.affine)
    assert np.array_equal(plane, arr[0])


def test_same_seed_same_images_other_seed_other_images(dcgan_run, tmp_path, capsys):
    outs = {name: [np.load(p) for p in sample_here(capsys, dcgan_run, tmp_path / name, fmt="npy", seed=seed)]
            for name, seed in (("a", 1), ("b", 1), ("c", 2))}
    assert all(np.array_equal(x, y) for x, y in zip(outs["a"], outs["b"]))
    assert not np.array_equal(outs["a"][0], outs["c"][0])


def test_json_lines(dcgan_run, tmp_path, capsys):
    rows = [json.loads(line) for line in sample_here(capsys, dcgan_run, tmp_path / "j", as_json=True)]
    assert [row["index"] for row in rows] == [0, 1]
    assert rows[0]["model"] == "dcgan" and rows[0]["step"] == 2 and rows[0]["format"] == "png"
    assert rows[1]["path"].endswith("sample_00001.png")


def test_existing_output_needs_force_and_is_replaced_whole(dcgan_run, tmp_path, capsys):
    from medsyn_cli.errors import InputError

    out = tmp_path / "fake"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="output exists"):
        sample_here(capsys, dcgan_run, out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    with pytest.raises(InputError, match="medsyn did not write"):
        sample_here(capsys, dcgan_run, out, force=True)  # --force never deletes a user's file
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()
    sample_here(capsys, dcgan_run, out)  # an empty folder is fine
    sample_here(capsys, dcgan_run, out, force=True)  # an earlier sample output is replaced whole
    assert sorted(p.name for p in out.iterdir()) == [".medsyn-output.json", "sample_00000.png", "sample_00001.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder or lock left


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"garbage")
    r = run_cli("sample", bad, "--n", "2", "--out", tmp_path / "o")
    assert r.returncode == 2 and str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_translation_models_are_sent_to_translate(tiny_models, tmp_path):
    from medsyn_cli.errors import InputError
    from medsyn_cli.training.checkpoint import load_for_inference
    from test_train_tiny import two_domains

    run = tmp_path / "tr"
    train(run, two_domains(4, 4), model="tiny-translator", steps=1, batch_size=2)
    # In-process (the throwaway model is registered only here): the command's own check.
    from medsyn_cli.cli.sample import sample

    with pytest.raises(InputError, match="medsyn translate"):
        sample(source=str(run), n=2, out=str(tmp_path / "o"), fmt="png", seed=0, batch_size=2, device="cpu",
               as_json=False, force=False, weights="last", amp=None)
    assert load_for_inference(run)[1]["task"] == "translation" and not (tmp_path / "o").exists()
