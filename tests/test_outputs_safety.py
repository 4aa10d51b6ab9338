"""Never lose a user's files: `--force` replaces only what medsyn wrote, never the current folder;
outputs follow the umask; a failed or signalled command leaves no partial output, temporary or empty
folder; temporaries of a killed process are removed by the next run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_train_tiny import random_images, tiny_models, train  # noqa: F401

SMALL = ["ngf=8", "ndf=8", "latent_dim=16"]


def one_line_error(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsyn: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "run"
    train(out, random_images(8, res=64), model="dcgan", steps=1, batch_size=4, sets=SMALL)
    return out


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_png(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((16, 16), value, np.uint8)
    arr[4:12, 4:12] = 255 - value
    Image.fromarray(arr).save(path)
    return path


# -- --force ------------------------------------------------------------------------------------------
def test_sample_force_keeps_a_users_folder_and_a_run(cli, dcgan_run, tmp_path):
    mine = tmp_path / "x"
    mine.mkdir()
    (mine / "t.txt").write_text("thesis")
    proc = cli("sample", dcgan_run, "-n", "2", "--out", mine, "--force", "--device", "cpu")
    one_line_error(proc, 2, str(mine), "medsyn did not write")
    assert (mine / "t.txt").read_text() == "thesis"
    before = listing(dcgan_run)
    proc = cli("sample", dcgan_run, "-n", "2", "--out", dcgan_run, "--force", "--device", "cpu")
    one_line_error(proc, 2, "is a training run")
    assert listing(dcgan_run) == before


def test_sample_force_refuses_a_user_file_added_to_its_output_and_the_current_folder(cli, dcgan_run, tmp_path):
    out = tmp_path / "fake"
    assert cli("sample", dcgan_run, "-n", "2", "--out", out, "--device", "cpu").returncode == 0
    assert cli("sample", dcgan_run, "-n", "3", "--out", out, "--force", "--device", "cpu").returncode == 0
    assert len(list(out.glob("*.png"))) == 3  # an earlier sample output is replaced whole
    proc = cli("sample", dcgan_run, "-n", "2", "--out", "..", "--force", "--device", "cpu", cwd=out / "..")
    one_line_error(proc, 2, "current folder")  # nor the folder the user stands in, nor one above it
    (out / "notes.txt").write_text("mine")
    proc = cli("sample", dcgan_run, "-n", "2", "--out", out, "--force", "--device", "cpu")
    one_line_error(proc, 2, "notes.txt was not written by medsyn")
    assert (out / "notes.txt").exists() and len(list(out.glob("*.png"))) == 3


def test_data_commands_force_only_their_own_outputs(cli, tmp_path):
    mine = tmp_path / "x"
    mine.mkdir()
    (mine / "t.txt").write_text("t")
    cases = tmp_path / "cases"
    cases.mkdir()
    one_line_error(cli("data", "prepare", "brats", cases, "--out", mine, "--force"), 2, "medsyn did not write")
    one_line_error(cli("data", "phantom", "--kind", "ct", "--n", "2", "--res", "16", "--out", mine, "--force"),
                   2, "medsyn did not write")
    assert listing(mine) == ["t.txt"]
    ph = tmp_path / "ph"
    assert cli("data", "phantom", "--kind", "ct", "--n", "2", "--res", "16", "--out", ph).returncode == 0
    # another command's output is not this command's to replace
    one_line_error(cli("data", "prepare", "brats", cases, "--out", ph, "--force"), 2, "`medsyn data phantom`")


def test_train_force_deletes_only_a_run_holding_nothing_else(tiny_models, tmp_path, monkeypatch):
    from medsyn_cli.errors import InputError

    out = tmp_path / "run"
    train(out, random_images(8), steps=1, batch_size=4)
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(InputError, match="notes.txt is not part of a medsyn run"):
        train(out, random_images(8), steps=1, batch_size=4, force=True)
    assert (out / "notes.txt").exists() and (out / "checkpoints" / "latest.pt").exists()
    (out / "notes.txt").unlink()
    (out / "samples" / "figure.pdf").write_text("mine")
    with pytest.raises(InputError, match="samples/figure.pdf"):
        train(out, random_images(8), steps=1, batch_size=4, force=True)
    (out / "samples" / "figure.pdf").unlink()
    monkeypatch.chdir(out)
    with pytest.raises(InputError, match="current folder"):
        train(out, random_images(8), steps=1, batch_size=4, force=True)
    monkeypatch.chdir(tmp_path)
    # What medsyn itself adds to a run (`medsyn report`, `--tensorboard`) is part of it: `make demo` twice works.
    (out / "report.html").write_text("<html></html>")
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "events.out.tfevents.1.host").write_bytes(b"")
    result, _ = train(out, random_images(8), steps=1, batch_size=4, force=True)
    assert result.step == 1
    assert not (out / "report.html").exists() and not (out / "tensorboard").exists()


def test_edges_and_translate_force_overwrite_only_recorded_outputs(cli, tmp_path):
    img = write_png(tmp_path / "a.png")
    (tmp_path / "a_sobel.png").write_bytes(b"someone else's file")
    one_line_error(cli("edges", img, "--out", tmp_path, "--force"), 2, "a_sobel.png", "not written by medsyn")
    assert (tmp_path / "a_sobel.png").read_bytes() == b"someone else's file"
    (tmp_path / "a_sobel.png").unlink()
    assert cli("edges", img, "--out", tmp_path).returncode == 0
    assert cli("edges", img, "--out", tmp_path, "--force").returncode == 0  # its own output: replaced


# -- umask --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_outputs_follow_the_umask(tiny_models, dcgan_run, tmp_path, capsys, mask, file_mode, dir_mode):
    from medsyn_cli.cli.sample import sample

    old = os.umask(mask)
    try:
        run = tmp_path / "run"
        train(run, random_images(8), steps=2, batch_size=4, checkpoint_every=1)
        sample(source=str(dcgan_run), out=str(tmp_path / "fake"), n=2, fmt="png", seed=0, batch_size=2,
               device="cpu", as_json=False, force=False, weights="last", amp=None)
    finally:
        os.umask(old)
    for root in (run, tmp_path / "fake"):
        for p in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (dir_mode if p.is_dir() else file_mode), (p, oct(mode))


# -- nothing half-written -------------------------------------------------------------------------------
def test_edges_writes_all_outputs_or_none(cli, tmp_path):
    src = tmp_path / "in"
    for i in range(3):
        write_png(src / f"ok{i}.png", 50 + i)
    (src / "z_truncated.png").write_bytes((src / "ok0.png").read_bytes()[:40])
    out = tmp_path / "deep" / "edges"
    one_line_error(cli("edges", src, "--out", out), 2, "z_truncated.png")
    assert not (tmp_path / "deep").exists()  # no partial outputs, no temporaries, no empty folders
    existing = tmp_path / "e"
    existing.mkdir()
    one_line_error(cli("edges", src, "--out", existing), 2, "z_truncated.png")
    assert listing(existing) == []


def test_outputs_are_checked_before_the_work(cli, tmp_path, dcgan_run):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    img = write_png(tmp_path / "a.png")
    # eval embed refuses a file --out before features are computed (no weights are even needed)
    one_line_error(cli("eval", "embed", tmp_path, tmp_path, "--out", a_file), 2, str(a_file), "not a folder")
    one_line_error(cli("edges", img, "--out", a_file), 2, str(a_file))
    one_line_error(cli("edges", img, "--out", dcgan_run), 2, "training run")
    one_line_error(cli("sample", dcgan_run, "-n", "1", "--out", a_file / "x"), 2, "is a file")
    assert a_file.read_text() == "x"


def test_translate_output_plans_refuse_a_file_folder_or_run_before_the_model(tmp_path, dcgan_run):
    from medsyn_cli.errors import InputError
    from medsyn_cli.translation import plan_outputs

    a, b = write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        plan_outputs([a], "tumor", tmp_path / "f" / "y.png", None, force=False)
    (tmp_path / "x.png").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        plan_outputs([a], "tumor", tmp_path / "x.png", None, force=True)
    with pytest.raises(InputError, match="training run"):
        plan_outputs([a, b], "tumor", dcgan_run, None, force=False)


def test_sigterm_during_sample_leaves_nothing(dcgan_run, tmp_path):
    out = tmp_path / "big"
    env = {**os.environ, "MEDSYN_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "medsyn_cli", "sample", str(dcgan_run), "-n", "5000", "-b", "1",
                             "--out", str(out), "--device", "cpu"], stderr=subprocess.PIPE, text=True, env=env)
    tmp = tmp_path / f".big.tmp-{proc.pid}"
    deadline = time.time() + 60
    while not (tmp.is_dir() and any(tmp.iterdir())) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert tmp.is_dir(), "sample never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated" in err
    assert listing(tmp_path) == []  # no temporary folder, no lock, no output


def test_stale_temporaries_of_a_killed_process_are_removed_by_the_next_run(cli, dcgan_run, tmp_path):
    pid = dead_pid()
    stale_dir = tmp_path / f".fake.tmp-{pid}"
    stale_dir.mkdir()
    (stale_dir / "sample_00000.png").write_bytes(b"half")
    live = tmp_path / f".fake.tmp-{os.getppid()}"  # a live process's temporary is left alone
    live.mkdir()
    assert cli("sample", dcgan_run, "-n", "1", "--out", tmp_path / "fake", "--device", "cpu").returncode == 0
    assert not stale_dir.exists() and live.exists()
    edges = tmp_path / "edges"
    edges.mkdir()
    stale_file = edges / f".a_sobel.png.tmp-{pid}"
    stale_file.write_bytes(b"half")
    assert cli("edges", write_png(tmp_path / "a.png"), "--out", edges).returncode == 0
    assert not stale_file.exists() and (edges / "a_sobel.png").exists()


def test_a_failed_fresh_run_leaves_no_run_folder(cli, tmp_path):
    proc = cli("train", "dcgan", "--data", "phantom:ct?n=4", "--res", "64", "--steps", "1", "-b", "8",
               "--device", "cpu", "--out", tmp_path / "runs" / "r")
    one_line_error(proc, 2, "batch size")
    assert listing(tmp_path) == []


def test_a_folder_output_never_replaces_the_current_folder_even_when_empty(tmp_path, monkeypatch):
    from medsyn_cli.errors import InputError
    from medsyn_cli.outputs import check_owned_folder

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for out in (".", "..", str(here)):
        with pytest.raises(InputError, match="current folder"):
            check_owned_folder(Path(out), force=False, command="sample")
    check_owned_folder(Path("new"), force=False, command="sample")  # a new folder below it is fine


def test_force_counts_a_users_folder_or_link_inside_an_output_as_foreign(tmp_path):
    from medsyn_cli.errors import InputError
    from medsyn_cli.outputs import check_owned_folder, owned_folder

    out = tmp_path / "ph"
    with owned_folder(out, force=False, command="data phantom") as tmp:
        (tmp / "normal").mkdir()
        write_png(tmp / "normal" / "a.png")
    check_owned_folder(out, force=True, command="data phantom")  # all its own: replaceable
    (out / "mine").mkdir()
    with pytest.raises(InputError, match="mine/ was not written by medsyn"):
        check_owned_folder(out, force=True, command="data phantom")
    (out / "mine").rmdir()
    (out / "normal" / "link").symlink_to(tmp_path)
    with pytest.raises(InputError, match="normal/link was not written by medsyn"):
        check_owned_folder(out, force=True, command="data phantom")


def test_staged_outputs_rename_all_at_the_end_or_remove_all(tmp_path):
    """What translate, edges and eval embed rely on: no output appears before the last is written."""
    from medsyn_cli.fileio import atomic_path, staged_outputs

    out = tmp_path / "new" / "out"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C, or SIGTERM turned into an exception
        with staged_outputs():
            for name in ("a.png", "b.png", "c.png"):
                with atomic_path(out / name) as tmp:
                    tmp.write_bytes(b"x")
                assert not (out / name).exists()  # held back
            raise KeyboardInterrupt
    assert listing(tmp_path) == []  # temporaries and the folders made for them are gone
    with staged_outputs():
        for name in ("a.png", "b.png"):
            with atomic_path(out / name) as tmp:
                tmp.write_bytes(name.encode())
    assert listing(out) == ["a.png", "b.png"] and (out / "b.png").read_bytes() == b"b.png"
