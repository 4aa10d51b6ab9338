"""The smaller items of issue 39's case 11: each a one-line error that says what is wrong and a hint that
applies, and no raw library warning on stderr."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from test_outputs_safety import SMALL, dcgan_run, one_line_error, write_png  # noqa: F401


def test_a_mismatched_resume_says_what_differs(cli, dcgan_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(dcgan_run, run)
    sets = [a for s in SMALL if not s.startswith("ngf") for a in ("--set", s)]
    proc = cli("train", "dcgan", "--out", run, "--resume", "--steps", "2", "--device", "cpu", *sets, "--set", "ngf=16")
    line = proc.stderr.strip()
    one_line_error(proc, 2, "size mismatch for", "from checkpoint", "settings changed on this resume: ngf")
    assert "torch.Size" not in line


class _Marker:
    def __reduce__(self):
        return (os.system, ("touch marker",))


def test_a_pickle_checkpoint_is_one_line_without_torch_warnings(cli, tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"a": _Marker()}, protocol=4))
    proc = cli("sample", evil, "--n", "1", "--out", tmp_path / "o", "--device", "cpu", cwd=tmp_path)
    one_line_error(proc, 2, "holds Python objects other than tensors", "never runs code")
    assert "weights_only" not in proc.stderr and not (tmp_path / "marker").exists()


def test_a_float64_volume_beyond_float32_is_one_line(cli, tmp_path):
    vol = np.ones((8, 8, 8))
    vol[1, 1, 1] = 1e300
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "v.nii.gz"))
    one_line_error(cli("data", "info", tmp_path / "v.nii.gz"), 2, "too large for 32-bit floats")  # no overflow warning


def test_an_unreadable_input_is_named_with_a_hint_that_applies(tmp_path):
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root reads any file and setpriv is missing to drop that power")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    data = tmp_path / "data"
    write_png(data / "a.png")
    write_png(data / "b.png").chmod(0)
    env = {**os.environ, "MEDSYN_PROGRESS": "0"}
    for args in (["data", "info", str(data / "b.png")],
                 ["train", "dcgan", "--data", str(data), "--steps", "1", "-b", "1", "--device", "cpu", "--out",
                  str(tmp_path / "r")]):
        proc = subprocess.run([*prefix, sys.executable, "-m", "medsyn_cli", *args], capture_output=True, text=True,
                              env=env, timeout=300)
        one_line_error(proc, 2, "b.png: permission denied", "chmod +r")
        assert "free the space" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_weights_import_of_a_folder_says_it_is_a_folder(cli, tmp_path):
    one_line_error(cli("weights", "import", tmp_path), 2, str(tmp_path), "is a folder, not a weights file")


def test_library_warnings_are_one_medsyn_line():
    code = ("import sys, warnings; sys.argv = ['medsyn', 'models', '--json'];"
            "from medsyn_cli.cli import main;"
            "import medsyn_cli.cli as c; orig = c.build_app;"
            "c.build_app = lambda: (warnings.warn('overflow encountered\\nin cast', RuntimeWarning), orig())[1];"
            "main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stderr == "medsyn: warning: RuntimeWarning: overflow encountered in cast\n"
