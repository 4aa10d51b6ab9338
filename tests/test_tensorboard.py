"""``medsyn train --tensorboard``: event files with the losses, FID and sample grids when the
``tensorboard`` package is there, a one-line exit-2 error with the pip command when it is not, and
no change to the training itself."""

from __future__ import annotations

import sys

import pytest
import torch

from medsyn_cli.errors import InputError
from medsyn_cli.training.plan import TrainFlags, resolve_plan
from test_train_tiny import random_images, tiny_models, train  # noqa: F401


def hide_tensorboard(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "tensorboard" else real(name, *a, **k))


def test_missing_package_is_refused_before_training_with_the_pip_command(tiny_models, tmp_path, monkeypatch, capsys):
    from medsyn_cli.cli import main

    hide_tensorboard(monkeypatch)
    with pytest.raises(InputError) as err:
        resolve_plan(TrainFlags(model="tiny-gan", res=16, out=str(tmp_path / "r"), tensorboard=True))
    assert err.value.exit_code == 2 and "pip install 'medsyn[tensorboard]'" in str(err.value)

    monkeypatch.setattr(sys, "argv", ["medsyn", "train", "tiny-gan", "--res", "16", "--out", str(tmp_path / "r"),
                                      "--tensorboard"])
    with pytest.raises(SystemExit) as exc:
        main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1
    assert lines[0].startswith("medsyn: error: --tensorboard needs the tensorboard package")
    assert not (tmp_path / "r").exists()
    # Without the flag nothing asks for the package.
    assert resolve_plan(TrainFlags(model="tiny-gan", res=16, out=str(tmp_path / "r"))).settings.tensorboard is False


def test_setting_comes_from_the_environment_too(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYN_TENSORBOARD", "off")
    assert resolve_plan(TrainFlags(model="tiny-gan", res=16, out=str(tmp_path / "r"))).settings.tensorboard is False
    monkeypatch.setenv("MEDSYN_TENSORBOARD", "1")
    hide_tensorboard(monkeypatch)
    with pytest.raises(InputError):
        resolve_plan(TrainFlags(model="tiny-gan", res=16, out=str(tmp_path / "r")))


def events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_event_files_hold_losses_grids_and_fid(tiny_models, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from medsyn_cli.training.tensorboard import TensorBoardWriter

    out = tmp_path / "run"
    result, _ = train(out, random_images(12), steps=4, batch_size=4, log_every=1, sample_every=2, tensorboard=True)
    assert result.exit_code == 0
    acc = events(out / "tensorboard")
    assert {"loss/loss_d", "loss/loss_g", "lr/generator", "train/images_per_s"} <= set(acc.Tags()["scalars"])
    stats = [r for r in __import__("medsyn_cli.training.stats", fromlist=["x"]).read_stats(out / "stats.jsonl")]
    assert [(e.step, pytest.approx(e.value)) for e in acc.Scalars("loss/loss_d")] == \
        [(r["step"], pytest.approx(r["losses"]["loss_d"])) for r in stats]
    assert [(e.step, e.width) for e in acc.Images("samples")] == [(2, 8 * 16 + 18), (4, 8 * 16 + 18)]

    # A record with an FID score (what --eval-every writes) becomes the "fid" scalar.
    writer = TensorBoardWriter(tmp_path / "tb")
    writer.on_stats({"step": 500, "fid": 42.5})
    writer.close()
    assert [(e.step, e.value) for e in events(tmp_path / "tb").Scalars("fid")] == [(500, 42.5)]


def test_tensorboard_does_not_change_the_training(tiny_models, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    _, plain = train(tmp_path / "a", random_images(12), steps=4, batch_size=4, log_every=1, sample_every=2)
    _, watched = train(tmp_path / "b", random_images(12), steps=4, batch_size=4, log_every=1, sample_every=2,
                       tensorboard=True)
    for name, net in plain.networks.items():
        for (k, a), b in zip(net.state_dict().items(), watched.networks[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{k}"


def test_resume_drops_the_events_written_past_the_checkpoint(tiny_models, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    import shutil

    out = tmp_path / "run"
    first, _ = train(out, random_images(12), steps=4, batch_size=4, log_every=1, checkpoint_every=2,
                     tensorboard=True)
    # As if the run had been killed after step 4 with its last checkpoint at step 2.
    shutil.copy(out / "checkpoints" / "step-000002.pt", out / "checkpoints" / "latest.pt")
    train(out, random_images(12), steps=4, batch_size=4, resume=True)
    losses = [(e.step, e.value) for e in events(out / "tensorboard").Scalars("loss/loss_d")]
    assert [s for s, _ in losses] == [1, 2, 3, 4]  # steps 3 and 4 once, from the resumed run
