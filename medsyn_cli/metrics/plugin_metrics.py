"""Metrics contributed by plugins through the ``register_metrics`` hook.

A plugin calls ``register(name, fn)``; ``fn(real_features, fake_features) -> dict[str, float]`` gets
the Inception pool3 features (float64 arrays, one row per image) of both sides. ``medsyn eval
--metrics fid,NAME`` then reports each returned figure as ``NAME.KEY``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from medsyn_cli.plugins import collect

MetricFn = Callable[[np.ndarray, np.ndarray], dict]


def plugin_metrics() -> dict[str, MetricFn]:
    """Every metric registered by a plugin, by lower-case name; a failing plugin is reported."""
    return dict(entry for _, entry in collect("register_metrics", lambda name, fn: (name.strip().lower(), fn)))


def compute(name: str, fn: MetricFn, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Run one plugin metric; its figures are prefixed with the metric's name."""
    values = fn(real, fake)
    if not isinstance(values, dict):
        raise TypeError(f"metric {name!r} returned {type(values).__name__}, expected a dict")
    return {f"{name}.{k}": float(v) for k, v in values.items()}
