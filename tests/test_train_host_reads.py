"""Losses are read on the host only at check points (log steps, side work, a stop, the end), the NaN
guard still names the first bad step, and stats.jsonl says how long steps waited for their batches."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch

from medsyn_cli.errors import TrainingError
from medsyn_cli.training import stats
from medsyn_cli.training.batches import Batches
from medsyn_cli.training.checkpoint import load_checkpoint
from medsyn_cli.training.stats import LossMeter
from test_train_tiny import TinyGAN, random_images, tiny_models, train  # noqa: F401


class Watched(torch.Tensor):
    """A loss tensor that counts how often it, or anything computed from it, is read on the host."""

    reads = 0

    def item(self):
        Watched.reads += 1
        return super().item()

    def tolist(self):
        Watched.reads += 1
        return super().tolist()

    def __float__(self):
        Watched.reads += 1
        return float(self.as_subclass(torch.Tensor))

    def __bool__(self):
        Watched.reads += 1
        return bool(self.as_subclass(torch.Tensor))


@pytest.fixture
def watched(monkeypatch):
    monkeypatch.setattr(TinyGAN, "wrap", staticmethod(lambda loss: loss.as_subclass(Watched)))
    monkeypatch.setattr(Watched, "reads", 0)
    return Watched


def test_losses_are_read_once_per_check_point_not_per_step(tiny_models, watched, tmp_path):
    out = tmp_path / "run"
    result, _ = train(out, random_images(40), steps=20, batch_size=4, log_every=5, sample_every=100,
                      checkpoint_every=100)
    assert result.exit_code == 0 and result.step == 20
    assert watched.reads == 4  # steps 5, 10, 15, 20: one read each (per step it would be 40 or more)
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert all(math.isfinite(v) and v > 0 for r in records for v in r["losses"].values())


def test_side_work_steps_are_check_points_too(tiny_models, watched, tmp_path):
    train(tmp_path / "run", random_images(40), steps=12, batch_size=4, log_every=6, sample_every=4,
          checkpoint_every=100)
    assert watched.reads == 4  # log steps 6, 12 and grid steps 4, 8


@pytest.mark.parametrize("nan_at, checkpoint_every, saved", [(2, 2, 2), (0, 100, None), (7, 4, 4)])
def test_nan_between_log_steps_names_the_first_bad_step(tiny_models, tmp_path, nan_at, checkpoint_every, saved):
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(out, random_images(40), steps=12, batch_size=4, log_every=6, sample_every=4,
              checkpoint_every=checkpoint_every, sets=[f"nan_at={nan_at}"], lr=0.01)
    message = str(info.value)  # every step after the bad one is NaN too: the first one is named
    assert message.startswith(f"step {nan_at + 1}: loss loss_d is nan; ")
    if saved is None:
        assert "no checkpoint was written yet" in message
        assert not (out / "checkpoints" / "latest.pt").exists()
    else:
        assert f"(step {saved})" in message
        ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
        assert ckpt["step"] == saved
        assert all(torch.isfinite(t).all() for net in ckpt["model_state"]["networks"].values() for t in net.values())
    # Detected at the next check point, before its side work: nothing of a bad step is saved.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == (
        [] if saved is None else ["latest.pt", f"step-{saved:06d}.pt"])
    grids = sorted(p.name for p in (out / "samples").iterdir())
    assert grids == [f"step-{s:06d}.png" for s in range(4, nan_at + 1, 4)]  # only of good steps
    assert not (out / "weights.safetensors").exists()
    assert f"stopped: step {nan_at + 1}: loss loss_d" in (out / "log.txt").read_text()


def test_meter_finds_the_first_non_finite_loss_across_folds_and_key_sets(monkeypatch):
    monkeypatch.setattr(stats, "FOLD_EVERY", 8)
    meter = LossMeter()
    for k in range(30):
        losses = {"a": torch.tensor(1.0), "b": torch.tensor(2.0)}
        if k >= 12:  # a new phase with another figure (as HAGAN's AttnMix phase adds its own)
            losses["c"] = 0.5
        if k == 17:
            losses["c"] = float("inf")  # a float among tensors: the older contract still works
        if k >= 21:
            losses["a"] = torch.tensor(float("nan"))  # later and earlier in the model's order: not first
        meter.add(losses, k)
    assert meter.check() == (17, "c", math.inf)
    clean = LossMeter()
    for k in range(30):
        clean.add({"a": torch.tensor(float(k)), "b": 1.0}, k)
    assert clean.check() is None
    assert clean.means() == {"a": pytest.approx(14.5), "b": pytest.approx(1.0)}


def test_a_loss_that_is_not_a_scalar_is_refused():
    meter = LossMeter()
    with pytest.raises(TrainingError, match="train_step returned loss 'x' of shape \\(2,\\), not a scalar"):
        meter.add({"x": torch.zeros(2)}, 0)


def test_stats_record_the_time_spent_waiting_for_batches(tiny_models, tmp_path, monkeypatch):
    original = Batches.get

    def slow_get(self, k):
        time.sleep(0.05)  # as a slow disk or decoder would
        return original(self, k)

    monkeypatch.setattr(Batches, "get", slow_get)
    out = tmp_path / "run"
    train(out, random_images(20), steps=6, batch_size=4, log_every=3)
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 6]
    for r in records:
        assert 0.15 <= r["data_wait_s"] < 3.0  # three steps of at least 0.05 s each
        assert 0.0 < r["data_wait_fraction"] <= 1.0  # its size depends on the machine's load
        step_seconds = 3 * 4 / r["images_per_s"]  # the interval's step time, from the same clock
        assert r["data_wait_fraction"] == pytest.approx(r["data_wait_s"] / step_seconds, rel=0.02, abs=1e-3)
