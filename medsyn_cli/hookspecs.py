"""The plugin contract. Every hook is called with a ``register`` callback and returns nothing.

A plugin module implements any of these with ``@medsyn_cli.hookimpl`` and is listed under the
``medsyn`` entry-point group. ``tests/test_docs.py`` checks that docs/plugins.md documents each hook.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("medsyn")
hookimpl = pluggy.HookimplMarker("medsyn")


@hookspec
def register_models(register: Callable) -> None:
    """Call ``register(spec)`` once per :class:`medsyn_cli.registry.ModelSpec` the plugin provides."""


@hookspec
def register_commands(app) -> None:
    """Add sub-commands to the root Typer ``app`` (``app.command()(fn)`` or ``app.add_typer``)."""


@hookspec
def register_datasets(register: Callable) -> None:
    """Call ``register(name, loader)``; ``loader(path, res, channels) -> ImageSet | TwoDomainSet``."""


@hookspec
def register_metrics(register: Callable) -> None:
    """Call ``register(metric)`` with a :class:`medsyn_cli.metrics.registry.Metric` (what it needs, its
    options, ``compute`` returning a JSON result, or a command of its own); ``medsyn eval NAME`` follows.
    The older ``register(name, fn)``, ``fn(real_features, fake_features) -> dict[str, float]``, still works."""


@hookspec
def register_formats(register: Callable) -> None:
    """Call ``register(fmt)`` with a :class:`medsyn_cli.formats.FileFormat` (suffixes or a sniffer -> a
    reader, and a writer where it applies); every command then reads that format."""


@hookspec
def register_report_sections(register: Callable) -> None:
    """Call ``register(title, render)``; ``render(run) -> str | None`` gives an HTML fragment for
    ``medsyn report`` (``run`` is a :class:`medsyn_cli.report.run.RunView`; None leaves it out)."""
