"""Metrics are registered plugins: the built-ins come through ``register_metrics`` and a new metric
gets its own ``medsyn eval NAME`` command, flags and JSON without host code knowing its name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.metrics.registry import Metric, MetricOption, all_metrics
from medsyn_cli.plugins import pm


def _brightness_gap(inputs, options):
    mean = {side: np.mean([img.mean() for img in inputs.images(side)]) for side in ("real", "fake")}
    return {"metrics": {"brightness.gap": float(abs(mean["real"] - mean["fake"]) * options["brightness_scale"])},
            "settings": {"brightness": {"scale": options["brightness_scale"]}}}


class _Brightness:
    @hookimpl
    def register_metrics(self, register):
        register(Metric(name="brightness", summary="Mean brightness gap.", needs="images", compute=_brightness_gap,
                        options=(MetricOption("brightness_scale", 1.0, "Multiply the gap.",
                                              flag="--brightness-scale"),)))


@pytest.fixture
def brightness():
    pm.register(_Brightness(), name="brightness-plugin")
    yield
    pm.unregister(name="brightness-plugin")


def _folder(path, value, n=3, size=16):
    path.mkdir()
    for i in range(n):
        Image.fromarray(np.full((size, size), value, np.uint8)).save(path / f"{i}.png")
    return str(path)


def test_builtin_metrics_come_through_the_hook_like_any_plugin():
    metrics = all_metrics()
    assert list(metrics)[:5] == ["fid", "kid", "pr", "classify", "edges"]
    assert {metrics[n].plugin for n in ("fid", "kid", "pr", "classify", "edges")} == {"medsyn_cli.metrics.builtin"}
    assert metrics["fid"].needs == "features" and metrics["edges"].needs == "images"
    assert [o.flag for o in metrics["kid"].options] == ["--kid-subsets", "--kid-subset-size", "--kid-seed"]


def test_a_registered_metric_gets_its_own_eval_command(brightness, tmp_path):
    from medsyn_cli.cli import build_app

    real, fake = _folder(tmp_path / "real", 100), _folder(tmp_path / "fake", 140)
    r = CliRunner().invoke(build_app(), ["eval", "brightness", real, fake, "--json", "--brightness-scale", "0.5"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["metrics"] == {"brightness.gap": pytest.approx(20.0)}
    assert out["settings"]["brightness"] == {"scale": 0.5}
    assert "real_features" not in out["seconds"]  # no Inception pass for an images metric
    table = CliRunner().invoke(build_app(), ["eval", "brightness", real, fake])
    assert table.exit_code == 0 and "brightness.gap  40" in table.stdout


def test_an_option_that_needs_its_metric_is_refused_without_it(tmp_path):
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.evaluate import EvalOptions, evaluate

    with pytest.raises(InputError, match="--baseline belongs to fid"):
        evaluate(str(tmp_path), str(tmp_path), EvalOptions(metrics=("kid",), metric_options={"baseline": True}))
