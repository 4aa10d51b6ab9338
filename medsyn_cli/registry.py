"""Model specs: light, frozen descriptions that the host can list without importing torch."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from medsyn_cli.errors import InputError
from medsyn_cli.plugins import collect_named

TASKS = ("unconditional", "translation")
#: Training settings a recipe may carry besides model settings: its default batch size.
RECIPE_TRAINING_KEYS = ("batch_size",)


class LazyFactory:
    """A model factory named ``"package.module:Class"``: the module is imported when a model is built,
    not when the plugin registers, so an entry-point module stays light (no torch import) and
    ``medsyn --help`` and ``medsyn models`` stay fast. ``Class(config, res, channels)`` builds the model."""

    def __init__(self, target: str):
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"a lazy factory is 'package.module:Class', not {target!r}")
        self.module, self.attr = module, attr

    def __call__(self, config: Any, res: int, channels: int) -> Any:
        return getattr(importlib.import_module(self.module), self.attr)(config, res, channels)

    def __repr__(self) -> str:
        return f"LazyFactory('{self.module}:{self.attr}')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyFactory) and (self.module, self.attr) == (other.module, other.attr)

    def __hash__(self) -> int:
        return hash((self.module, self.attr))


@dataclass(frozen=True)
class ModelSpec:
    """What a plugin registers. ``factory(config, res, channels)`` builds a :class:`GANModel`; it may be
    given as ``"package.module:Class"`` (a :class:`LazyFactory`, imported only when a model is built)."""

    name: str
    task: str
    config_cls: type
    factory: Callable[..., Any]
    summary: str
    citation: str
    resolutions: tuple[int, ...] = (64, 128, 256)
    channels: tuple[int, ...] = (1, 3)
    aliases: tuple[str, ...] = ()
    default_batch_size: int = 32
    #: How the paper brought its images to a square (``--fit``): pad, resize or crop.
    default_fit: str = "pad"
    plugin: str = ""
    extra: dict = field(default_factory=dict)
    #: Named bundles of model settings (``medsyn train --recipe NAME``); the paper recipe is the defaults.
    #: A recipe may also give its default batch size (``"batch_size"``); ``--batch-size`` still wins.
    recipes: dict = field(default_factory=dict)
    #: Train in channels-last memory layout unless ``--no-channels-last``: on for the models whose step
    #: bench/bench_train.py measured faster that way (bench/README.md); layout changes speed, not the maths.
    channels_last: bool = False

    def __post_init__(self):
        if isinstance(self.factory, str):
            object.__setattr__(self, "factory", LazyFactory(self.factory))
        if self.task not in TASKS:
            raise ValueError(f"model {self.name!r}: task must be one of {TASKS}, not {self.task!r}")
        if not dataclasses.is_dataclass(self.config_cls):
            raise TypeError(f"model {self.name!r}: config_cls must be a dataclass")
        fields = {f.name for f in dataclasses.fields(self.config_cls)}
        for recipe, settings in self.recipes.items():
            unknown = sorted(set(settings) - fields - set(RECIPE_TRAINING_KEYS))
            if recipe == "paper" or unknown:
                raise ValueError(f"model {self.name!r}: recipe {recipe!r} " + (
                    "is the defaults and cannot be redefined" if recipe == "paper" else f"sets unknown {unknown}"))
            batch = settings.get("batch_size", 1)
            if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
                raise ValueError(f"model {self.name!r}: recipe {recipe!r} sets batch_size {batch!r}; "
                                 "it must be a positive integer")

    def _recipe(self, name: str) -> dict[str, Any]:
        if name == "paper":
            return {}
        if name not in self.recipes:
            raise InputError(f"model {self.name!r} has no recipe {name!r}",
                             hint=f"known: {', '.join(['paper', *self.recipes])}")
        return self.recipes[name]

    def recipe(self, name: str) -> dict[str, Any]:
        """The model settings of recipe ``name`` ("paper": none, the defaults); InputError if unknown."""
        return {k: v for k, v in self._recipe(name).items() if k not in RECIPE_TRAINING_KEYS}

    def recipe_batch_size(self, name: str) -> int:
        """The default batch size under recipe ``name``: the recipe's own, else the model's."""
        return int(self._recipe(name).get("batch_size", self.default_batch_size))

    def check(self, res: int, channels: int) -> None:
        """Refuse (InputError) a resolution or channel count this model does not support."""
        if res not in self.resolutions:
            raise InputError(f"model {self.name!r} does not support --res {res}",
                             hint=f"supported: {', '.join(map(str, self.resolutions))}")
        if channels not in self.channels:
            raise InputError(f"model {self.name!r} does not support --channels {channels}",
                             hint=f"supported: {', '.join(map(str, self.channels))}")

    def default_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config_cls())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description for ``medsyn models --json``."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "task": self.task,
            "resolutions": list(self.resolutions),
            "channels": list(self.channels),
            "default_batch_size": self.default_batch_size,
            "default_fit": self.default_fit,
            "channels_last": self.channels_last,
            "summary": self.summary,
            "citation": self.citation,
            "plugin": self.plugin,
            "config": self.default_config(),
            "recipes": {"paper": {}, **self.recipes},
        }


def _accept_spec(spec: ModelSpec) -> ModelSpec:
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register_models: expected a ModelSpec, got {type(spec).__name__}")
    return spec


def all_models() -> dict[str, ModelSpec]:
    """Every registered model by name. Registration happens afresh each call, so a plugin
    registered or unregistered at run time (as tests do) is seen at once."""
    return dict(sorted(collect_named("register_models", _accept_spec, "model").items()))


def get_model(name: str) -> ModelSpec:
    """Look a model up by name or alias (case-insensitive, ``_`` and ``-`` equivalent)."""
    key = name.lower().replace("_", "-")
    models = all_models()
    for spec in models.values():
        names = [spec.name, *spec.aliases]
        if key in (n.lower().replace("_", "-") for n in names):
            return spec
    known = ", ".join(models) or "none installed"
    raise InputError(f"unknown model {name!r}", hint=f"known models: {known}; see `medsyn models`")
