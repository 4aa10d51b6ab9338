"""Faults give one line, not a traceback: a full disk (a tiny tmpfs), a read-only folder (a tmpfs
remounted read-only), no permission, a busy mount point. Training keeps its last good checkpoint and
says how to resume. Needs root to mount (CI and this machine run as root); skipped otherwise."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_outputs_safety import dcgan_run, listing, one_line_error  # noqa: F401
from test_train_tiny import random_images, tiny_models, train  # noqa: F401


def _mount(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")


@pytest.fixture
def mounts():
    made: list[Path] = []

    def mount(where: Path, size: str, *, read_only: bool = False) -> Path:
        _mount(where, f"size={size},mode=0755")
        made.append(where)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        return where

    yield mount
    for where in reversed(made):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to the last byte, then give back ``leave`` bytes."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def png(path: Path) -> Path:
    Image.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))).save(path)
    return path


def test_training_on_a_full_disk_keeps_the_last_checkpoint_and_says_how_to_resume(tiny_models, mounts, tmp_path):
    from medsyn_cli.errors import MedsynError
    from medsyn_cli.training.checkpoint import load_checkpoint
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.run_guard import guarded_run

    disk = mounts(tmp_path / "disk", "4m")
    out = disk / "run"
    data = random_images(8)

    def run(steps: int, **kw):
        flags = TrainFlags(model="tiny-gan", out=str(out), res=16, steps=steps, batch_size=4, device="cpu",
                           checkpoint_every=1, **kw)
        return guarded_run(resolve_plan(flags), data)

    run(2)
    size = (out / "checkpoints" / "step-000002.pt").stat().st_size
    filler = fill(disk, size // 2)  # room for the log lines, not for the next checkpoint
    with pytest.raises(MedsynError) as info:
        run(6, resume=True)
    err = info.value
    assert err.exit_code == 1
    line = err.one_line()
    assert "no space left on device" in line and "step-000003.pt" in line
    assert f"last good checkpoint is {out / 'checkpoints' / 'latest.pt'} (step 2)" in line
    assert f"medsyn train tiny-gan --out {out} --resume" in line and "\n" not in line
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 2  # survived, loadable
    assert not [p for p in (out / "checkpoints").iterdir() if ".tmp" in p.name]
    filler.unlink()
    assert run(6, resume=True).step == 6  # resumes as the message says


def test_sample_on_a_full_disk_is_one_line_and_leaves_nothing(cli, dcgan_run, mounts, tmp_path):  # noqa: F811
    disk = mounts(tmp_path / "disk", "64k")
    proc = cli("sample", dcgan_run, "-n", "200", "-b", "50", "--out", disk / "a" / "b" / "fake", "--device", "cpu")
    one_line_error(proc, 1, "no space left on device", str(disk))
    assert listing(disk) == []  # no temporary folder, no lock, no empty parent folders


def test_read_only_outputs_are_refused_before_any_work(cli, mounts, tmp_path):
    ro = mounts(tmp_path / "ro", "1m", read_only=True)
    img = png(tmp_path / "a.png")
    cases = [
        ("sample", tmp_path / "no-such-run", "-n", "1", "--out", ro / "fake"),  # refused before the model loads
        ("edges", img, "--out", ro / "edges"),
        ("translate", "--to", "tumor", img, "-o", ro / "x.png"),  # no model needed to be refused
        ("eval", "embed", tmp_path, tmp_path, "--out", ro / "plots"),
        ("data", "phantom", "--kind", "ct", "--n", "2", "--res", "16", "--out", ro / "ph"),
        ("train", "dcgan", "--steps", "1", "--out", ro / "run"),
    ]
    for args in cases:
        one_line_error(cli(*args), 2, "read-only file system", str(ro))


def test_no_permission_is_one_line(tmp_path):
    """Root ignores folder permissions, so as root the command runs without CAP_DAC_OVERRIDE."""
    import shutil
    import sys

    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root ignores folder permissions and setpriv is missing to drop that power")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    locked_dir = tmp_path / "locked"
    locked_dir.mkdir(mode=0o555)
    cmd = [*prefix, sys.executable, "-m", "medsyn_cli", "edges", str(png(tmp_path / "a.png")), "--out",
           str(locked_dir / "e")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MEDSYN_PROGRESS": "0"})
    one_line_error(proc, 2, "permission denied", str(locked_dir))
    assert list(locked_dir.iterdir()) == []


def test_a_busy_mount_point_is_one_line(cli, dcgan_run, mounts, tmp_path):  # noqa: F811
    mp = mounts(tmp_path / "mp", "1m")  # an empty folder that is a mount point cannot be renamed onto
    proc = cli("sample", dcgan_run, "-n", "1", "--out", mp, "--device", "cpu")
    one_line_error(proc, 2, "busy", str(mp))
    assert [p.name for p in tmp_path.iterdir()] == ["mp"]  # the temporary folder is gone


def test_os_errors_map_to_one_line_and_an_exit_code():
    from medsyn_cli.errors import from_os_error

    for code, text, exit_code in ((errno.ENOSPC, "no space left on device", 1),
                                  (errno.EROFS, "read-only file system", 2),
                                  (errno.EACCES, "permission denied", 2),
                                  (errno.EBUSY, "busy", 2)):
        err = from_os_error(OSError(code, os.strerror(code), "/data/out/x.png"))
        assert err.exit_code == exit_code and err.one_line().startswith(f"/data/out/x.png: {text}")


def test_torch_save_on_a_full_disk_reads_as_no_space(monkeypatch, tmp_path):
    import shutil

    from medsyn_cli.training.checkpoint import write_failure

    exc = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1536 vs 1440")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 100, 0))
    err = write_failure(exc, tmp_path / "step-000003.pt")
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC and err.filename.endswith("step-000003.pt")
    other = RuntimeError("CUDA error")
    assert write_failure(other, tmp_path / "x.pt") is other
