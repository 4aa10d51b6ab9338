"""One process per output: a second `train`, `train --resume`/`--force`, or `sample` on a held output
exits 2 naming the holder's PID and host; the OS drops the lock when the holder dies; a cache entry
being written by another process is skipped, not written twice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from test_outputs_safety import one_line_error
from test_train_tiny import random_images, tiny_models, train  # noqa: F401


def test_a_held_run_directory_refuses_train_resume_and_force(cli, tiny_models, tmp_path):
    from medsyn_cli.locks import locked

    out = tmp_path / "run"
    train(out, random_images(8), steps=1, batch_size=4)
    before = sorted(p.name for p in out.rglob("*"))
    with locked(out, "train"):
        for extra in ([], ["--resume"], ["--force"]):
            proc = cli("train", "dcgan", "--data", "phantom:ct?n=8", "--steps", "2", "-b", "4", "--device", "cpu",
                       "--out", out, *extra)
            one_line_error(proc, 2, str(out), f"process {os.getpid()} on {socket.gethostname()}")
    assert sorted(p.name for p in out.rglob("*")) == before  # the live run was not touched
    assert not (tmp_path / ".run.lock").exists()  # released: the lock file goes with it


def test_the_run_directory_is_locked_while_it_trains(tiny_models, tmp_path, monkeypatch):
    from medsyn_cli.errors import InputError
    from medsyn_cli.locks import locked
    from medsyn_cli.training import trainer as trainer_mod
    from medsyn_cli.training.plan import TrainFlags, resolve_plan
    from medsyn_cli.training.run_guard import guarded_run

    out = tmp_path / "run"
    real, seen = trainer_mod.run_training, []

    def while_training(plan, data=None):
        with pytest.raises(InputError, match=f"in use by process {os.getpid()}"):
            with locked(out, "train"):
                pass
        seen.append(True)
        return real(plan, data)

    monkeypatch.setattr(trainer_mod, "run_training", while_training)
    plan = resolve_plan(TrainFlags(model="tiny-gan", out=str(out), res=16, steps=1, batch_size=4, device="cpu"))
    assert guarded_run(plan, random_images(8)).step == 1 and seen == [True]
    with locked(out, "train"):  # released afterwards
        pass


def test_the_os_releases_the_lock_of_a_killed_process(tmp_path):
    from medsyn_cli.locks import locked

    out = tmp_path / "fake"
    script = textwrap.dedent(f"""
        import os, sys
        from medsyn_cli.locks import locked
        with locked({str(out)!r}, "sample"):
            print("held", flush=True)
            sys.stdin.readline()
            os._exit(9)  # dies holding the lock, as kill -9 would leave it
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    from medsyn_cli.errors import InputError

    with pytest.raises(InputError, match=f"in use by process {holder.pid} on {socket.gethostname()}"):
        with locked(out, "sample"):
            pass
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=30)
    assert (tmp_path / ".fake.lock").exists()  # the dead holder's file is still there ...
    with locked(out, "sample"):  # ... but not locked: it is taken over
        pass
    assert not (tmp_path / ".fake.lock").exists()


def test_sample_on_a_held_output_exits_2_naming_the_holder(cli, tmp_path):
    from medsyn_cli.locks import locked

    out = tmp_path / "fake"
    with locked(out, "sample"):
        proc = cli("sample", tmp_path / "missing-run", "-n", "1", "--out", out)
    one_line_error(proc, 2, f"process {os.getpid()}")
    assert not out.exists()


def test_a_cache_entry_being_written_elsewhere_is_skipped(tmp_path):
    from medsyn_cli.locks import locked
    from medsyn_cli.outputs import write_cache_entry

    target = tmp_path / "cache" / "key.npz"
    calls = []
    with locked(target, "cache"):
        assert write_cache_entry(target, lambda: calls.append(1), "the dataset") is False
    assert calls == []
    assert write_cache_entry(target, lambda: calls.append(1), "the dataset") is True and calls == [1]


def test_an_unwritable_cache_warns_and_goes_on(tmp_path, capsys):
    import errno

    from medsyn_cli.outputs import write_cache_entry

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.npz"))

    assert write_cache_entry(tmp_path / "x.npz", full, "the dataset") is False
    err = capsys.readouterr().err
    assert "warning: the dataset not cached" in err and "no space left on device" in err
