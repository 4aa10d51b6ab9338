"""``medsyn train --max-minutes``: a training-time budget that ends a run as finished (checkpoint, weights,
exit 0, recorded in config.json), for every registered model; ``--resume`` with a larger budget goes on."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from e2e_common import ok

#: every registered model of both tasks, at its smallest resolution
def _all_models() -> list[tuple[str, int]]:
    from medsyn_cli.registry import all_models

    return [(name, 64 if 64 in spec.resolutions else min(spec.resolutions)) for name, spec in all_models().items()]


MODELS = _all_models()
TINY = 1e-6  # minutes: spent by the first step of any model


def finished(run) -> dict:
    return json.loads((run / "config.json").read_text())["finished"]


def checkpoint(run) -> dict:
    from medsyn_cli.training.checkpoint import load_checkpoint

    return load_checkpoint(run / "checkpoints" / "latest.pt")


def checkpoint_step(run) -> int:
    return int(checkpoint(run)["step"])


@pytest.mark.parametrize("name,res", MODELS, ids=[m[0] for m in MODELS])
def test_every_model_stops_at_the_budget_as_a_finished_run_and_resumes_with_a_larger_one(name, res, tmp_path):
    run = tmp_path / "run"
    common = ("--res", res, "-b", 2, "--device", "cpu", "--no-amp")
    report = json.loads(ok(run_cli("train", name, *common, "--steps", 1000, "--max-minutes", TINY,
                                   "--out", run, "--json")))
    assert report["finished"] and report["ended_by"] == "max_minutes" and report["steps"] == 1
    assert (run / "weights.safetensors").is_file() and checkpoint_step(run) == 1
    record = finished(run)
    assert record["reason"] == "max_minutes" and record["step"] == 1 and record["planned_steps"] == 1000

    # A larger budget goes on from the checkpoint (at least one more step, then spent again).
    spent = checkpoint(run)["elapsed"] / 60
    report = json.loads(ok(run_cli("train", name, "--out", run, "--resume", "--max-minutes", spent + TINY,
                                   "--json")))
    assert report["ended_by"] == "max_minutes" and report["steps"] >= 2
    assert checkpoint_step(run) == report["steps"] == finished(run)["step"]


def test_a_spent_budget_trains_nothing_until_it_is_raised_or_lifted(tmp_path):
    run = tmp_path / "run"
    ok(run_cli("train", "dcgan", "--res", 64, "-b", 2, "--steps", 3, "--max-minutes", TINY, "--out", run))
    proc = run_cli("train", "dcgan", "--out", run, "--resume")  # the recorded budget applies again
    assert proc.returncode == 0 and "already at the --max-minutes budget" in proc.stderr
    assert checkpoint_step(run) == 1
    # 0 lifts the budget: the run trains to its planned steps and ends by them.
    ok(run_cli("train", "dcgan", "--out", run, "--resume", "--max-minutes", 0))
    assert checkpoint_step(run) == 3 and finished(run)["reason"] == "steps"
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["max_minutes"] is None


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_bad_budget_is_refused_before_anything_is_written(value, tmp_path):
    run = tmp_path / "run"
    proc = run_cli("train", "dcgan", "--max-minutes", value, "--out", run)
    assert proc.returncode == 2 and "max-minutes" in proc.stderr
    assert not run.exists()


def test_the_budget_comes_from_the_environment_and_is_recorded(tmp_path):
    proc = run_cli("train", "dcgan", "--dry-run", "--out", tmp_path / "r", env={"MEDSYN_MAX_MINUTES": "20"})
    assert json.loads(ok(proc))["training"]["max_minutes"] == 20.0
