"""A command that did its work exits 0: a finished run whatever happens to the optional runs index, and a
command whose reader closed stdout early (`| head -1`) (issue 39, cases 7 and 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_outputs_safety import dcgan_run, write_png  # noqa: F401

TINY = ["--steps", "2", "-b", "4", "--res", "64", "--set", "ngf=8", "--set", "ndf=8", "--set", "latent_dim=16",
        "--device", "cpu"]


def test_a_finished_run_exits_0_when_the_runs_index_cannot_be_written(cli, tmp_path):  # case 7
    home = tmp_path / "home-is-a-file"
    home.write_text("x")
    proc = cli("train", "dcgan", *TINY, "--out", tmp_path / "r", "--json", env={"MEDSYN_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["finished"] and report["exit_code"] == 0 and Path(report["weights"]).is_file()
    assert "the run is not in the index of runs" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unwritable_runs_index_is_a_warning(medsyn_home, capsys, tmp_path):
    from medsyn_cli import runs_index

    (medsyn_home / "data" / "runs.jsonl").mkdir(parents=True)  # not writable as a file, even as root
    runs_index.record_run("dcgan", tmp_path, 2)
    err = capsys.readouterr().err
    assert err.startswith("medsyn: warning: the run is not in the index of runs") and "is a folder" in err
    assert runs_index.latest_run("dcgan") is None


def closed_stdout_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run medsyn with its stdout a pipe whose reader is already gone (as `| head -1` leaves it)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "medsyn_cli", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, env={**os.environ, "MEDSYN_PROGRESS": "0"}, timeout=300)
    finally:
        os.close(write)


def test_a_closed_stdout_is_silent_and_exits_0_once_the_outputs_are_written(dcgan_run, tmp_path):  # case 8
    proc = closed_stdout_run("sample", str(dcgan_run), "--n", "5", "--out", "f", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0 and "error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(list((tmp_path / "f").glob("*.png"))) == 5
    proc = closed_stdout_run("edges", "f", "--out", "e", "--json", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert len(list((tmp_path / "e").glob("*.png"))) == 5


def test_a_closed_stdout_does_not_hide_a_failure(tmp_path):
    proc = closed_stdout_run("edges", "missing.png", "--out", "e", cwd=tmp_path)
    assert proc.returncode == 2 and "missing.png" in proc.stderr


def test_a_damaged_defaults_file_is_one_line(medsyn_home):
    from medsyn_cli import runs_index
    from medsyn_cli.errors import InputError

    (medsyn_home / "data").mkdir()
    (medsyn_home / "data" / "defaults.json").write_text("[1, 2")
    with pytest.raises(InputError, match="defaults.json: not medsyn's map of default weights"):
        runs_index.defaults()
