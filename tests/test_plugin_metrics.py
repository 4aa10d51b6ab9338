"""Metrics registered through the ``register_metrics`` hook are accepted and computed."""

from __future__ import annotations

import numpy as np
import pytest

from medsyn_cli.errors import InputError
from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.metrics import evaluate
from medsyn_cli.metrics.plugin_metrics import compute, plugin_metrics
from medsyn_cli.plugins import pm


class _MeanGap:
    @hookimpl
    def register_metrics(self, register):
        register("meangap", lambda real, fake: {"l2": float(np.linalg.norm(real.mean(0) - fake.mean(0)))})


@pytest.fixture
def meangap():
    pm.register(_MeanGap(), name="meangap-plugin")
    yield
    pm.unregister(name="meangap-plugin")


def test_registered_metric_is_found_and_accepted(meangap):
    assert "meangap" in plugin_metrics()
    assert evaluate.parse_metrics("fid,meangap") == ("fid", "meangap")


def test_unregistered_metric_is_refused():
    with pytest.raises(InputError):
        evaluate.parse_metrics("meangap")


def test_plugin_metric_figures_are_prefixed_and_computed(meangap):
    real = np.zeros((4, 3))
    fake = np.full((4, 3), 2.0)
    assert compute("meangap", plugin_metrics()["meangap"], real, fake) == {"meangap.l2": pytest.approx(np.sqrt(12))}
