"""The metric contract and the registry that ``register_metrics`` fills.

Every metric, built-in or third-party, is a :class:`Metric` a plugin registers; ``medsyn eval``
gets one command per metric and :func:`medsyn_cli.metrics.evaluate.evaluate` is a loop over the
selected ones. A metric says what it needs (``features``: the Inception pool3 features of both
sides; ``images``: the decoded images; ``both``), which options it takes (each becomes a flag of
the ``medsyn eval`` metric commands) and returns a JSON-ready result from ``compute``. A metric that
is not "REAL against FAKE" (the classification test takes labelled data) names a Typer command of
its own instead of ``compute``.

The older form ``register(name, fn)``, with ``fn(real_features, fake_features) -> dict[str, float]``,
is still accepted: its figures are reported as ``NAME.KEY``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from medsyn_cli.metrics.inputs import ImageInput

NEEDS = ("features", "images", "both")


@dataclass(frozen=True)
class MetricOption:
    """One setting of a metric: ``options[name]`` in ``compute``, ``flag`` on the command line."""

    name: str
    default: Any
    help: str = ""
    flag: str | None = None  # None: a setting for ``evaluate()`` callers only, no flag
    type: type | None = None  # default: the type of ``default``
    min: float | None = None
    #: Set away from its default, this option requires its metric to be selected (``--baseline``).
    requires_metric: bool = False


@dataclass
class MetricInputs:
    """What ``compute`` receives. ``real_side``/``fake_side`` (features, ``mu``, ``sigma``) are set
    when the metric needs features; ``real``/``fake`` are the sides' images, read on demand."""

    real: ImageInput
    fake: ImageInput
    real_side: Any = None
    fake_side: Any = None

    @property
    def real_features(self) -> np.ndarray | None:
        return None if self.real_side is None else self.real_side.features

    @property
    def fake_features(self) -> np.ndarray | None:
        return None if self.fake_side is None else self.fake_side.features

    def images(self, side: str) -> Iterator[np.ndarray]:
        """The images of ``"real"`` or ``"fake"`` in order, each uint8 (H, W, C), C = 1 or 3."""
        from medsyn_cli.metrics.inputs import iter_images, load_item

        for _, item in iter_images(self.real if side == "real" else self.fake):
            yield load_item(item)


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``compute(inputs, options) -> dict`` returns ``{"metrics": {key: number}}`` and optionally
    ``"settings"`` (merged into the result's settings), ``"seconds"`` (merged into its timings) and
    ``"result"`` (top-level keys of the JSON result). ``rows(result)`` gives the lines of the text
    table (label, value); by default each figure whose key is NAME or starts with ``NAME.``.
    """

    name: str
    summary: str
    compute: Callable[[MetricInputs, dict], dict] | None = None
    needs: str = "features"
    options: tuple[MetricOption, ...] = ()
    examples: tuple[str, ...] = ()
    #: ``"module:attribute"`` of a Typer command of its own, for a metric not of the REAL FAKE form.
    command: str | None = None
    rows: Callable[[dict], list[tuple[str, str]]] | None = None
    plugin: str = ""

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r}: needs must be one of {NEEDS}, not {self.needs!r}")
        if (self.compute is None) == (self.command is None):
            raise ValueError(f"metric {self.name!r}: give exactly one of compute and command")

    def default_options(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def command_function(self) -> Callable:
        module, _, attr = self.command.partition(":")
        return getattr(importlib.import_module(module), attr)

    def table_rows(self, result: dict) -> list[tuple[str, str]]:
        if self.rows is not None:
            return self.rows(result)
        return [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in result["metrics"].items()
                if k == self.name or k.startswith(self.name + ".")]


def from_function(name: str, fn: Callable[[np.ndarray, np.ndarray], dict]) -> Metric:
    """The older ``register(name, fn)`` form: a features metric whose figures become ``NAME.KEY``."""

    def compute(inputs: MetricInputs, options: dict) -> dict:
        values = fn(inputs.real_features, inputs.fake_features)
        if not isinstance(values, dict):
            raise TypeError(f"metric {name!r} returned {type(values).__name__}, expected a dict")
        return {"metrics": {f"{name}.{k}": float(v) for k, v in values.items()}}

    return Metric(name=name, summary=f"{name} (a plugin metric on Inception features)", compute=compute)


def _accept(metric_or_name, fn: Callable | None = None) -> Metric:
    if isinstance(metric_or_name, Metric):
        if fn is not None:
            raise TypeError("register(metric) takes one argument")
        metric = metric_or_name
    elif isinstance(metric_or_name, str) and callable(fn):
        metric = from_function(metric_or_name, fn)
    else:
        raise TypeError("register_metrics: call register(Metric(...)) or register(name, fn)")
    return replace(metric, name=metric.name.strip().lower())


def all_metrics() -> dict[str, Metric]:
    """Every registered metric by lower-case name, in registration order (the built-ins first)."""
    from medsyn_cli.plugins import collect_named

    return collect_named("register_metrics", _accept, "metric")
