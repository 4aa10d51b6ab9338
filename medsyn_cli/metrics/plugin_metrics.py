"""Metrics on Inception features, run outside ``evaluate()`` (kept for callers of the older API).

Every metric is registered through ``register_metrics`` (see :mod:`medsyn_cli.metrics.registry`);
this module looks them up and runs one on two feature arrays.
"""

from __future__ import annotations

import numpy as np

from medsyn_cli.metrics.registry import Metric, MetricInputs, all_metrics


def plugin_metrics() -> dict[str, Metric]:
    """Every registered metric by lower-case name (built-in and third-party); failures are reported."""
    return all_metrics()


class _Side:
    def __init__(self, features: np.ndarray):
        from medsyn_cli.metrics.fid import statistics

        self.features = np.asarray(features, dtype=np.float64)
        self.mu, self.sigma = statistics(self.features) if len(self.features) > 1 else (None, None)


def compute(name: str, metric: Metric, real: np.ndarray, fake: np.ndarray, options: dict | None = None) -> dict:
    """Run one features metric on the pool3 features of both sides; returns its figures."""
    if metric.needs != "features" or metric.compute is None:
        raise ValueError(f"metric {name!r} needs {metric.needs}, not features alone")
    inputs = MetricInputs(real=None, fake=None, real_side=_Side(real), fake_side=_Side(fake))
    return metric.compute(inputs, {**metric.default_options(), **(options or {})})["metrics"]
