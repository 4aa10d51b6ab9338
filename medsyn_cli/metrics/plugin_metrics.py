"""Metrics contributed by plugins through the ``register_metrics`` hook.

A plugin calls ``register(name, fn)``; ``fn(real_features, fake_features) -> dict[str, float]`` gets
the Inception pool3 features (float64 arrays, one row per image) of both sides. ``medsyn eval
--metrics fid,NAME`` then reports each returned figure as ``NAME.KEY``.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from medsyn_cli.plugins import load_plugins, pm

MetricFn = Callable[[np.ndarray, np.ndarray], dict]


def plugin_metrics() -> dict[str, MetricFn]:
    """Every metric registered by a plugin, by lower-case name; a failing plugin is reported."""
    load_plugins()
    found: dict[str, MetricFn] = {}
    for plugin_name, plugin in pm.list_name_plugin():
        impl = getattr(plugin, "register_metrics", None)
        if impl is None:
            continue

        def register(name: str, fn: MetricFn) -> None:
            found[name.strip().lower()] = fn

        try:
            impl(register=register)
        except Exception as exc:  # one plugin's failure must not stop the evaluation
            print(f"medsyn: plugin {plugin_name!r} failed to register metrics: {exc}", file=sys.stderr)
    return found


def compute(name: str, fn: MetricFn, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Run one plugin metric; its figures are prefixed with the metric's name."""
    values = fn(real, fake)
    if not isinstance(values, dict):
        raise TypeError(f"metric {name!r} returned {type(values).__name__}, expected a dict")
    return {f"{name}.{k}": float(v) for k, v in values.items()}
