"""The plugin manager: entry points loaded lazily once, errors isolated per plugin.

``MEDSYN_LOAD_PLUGINS`` restricts loading to a comma-separated list of entry-point names
(an empty string loads none), like ``LLM_LOAD_PLUGINS`` in simonw/llm.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib import metadata
from typing import Any, Callable

import pluggy

from medsyn_cli import hookspecs

ENTRY_POINT_GROUP = "medsyn"

#: Modules of the host registered as plugins before any entry point, whatever MEDSYN_LOAD_PLUGINS
#: says (as simonw/llm's default plugins): the built-in metrics and file formats go through the same hooks as a third party's.
DEFAULT_PLUGINS = ("medsyn_cli.metrics.builtin", "medsyn_cli.data.builtin_formats")

pm = pluggy.PluginManager("medsyn")
pm.add_hookspecs(hookspecs)

_loaded = False
#: name -> reason, for plugins that failed to import (reported once on stderr).
failed: dict[str, str] = {}


def load_plugins() -> pluggy.PluginManager:
    """Import every ``medsyn`` entry point once. A failing plugin is reported, never fatal."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        if not pm.has_plugin(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    allowed = os.environ.get("MEDSYN_LOAD_PLUGINS")
    wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            failed[ep.name] = reason
            print(f"medsyn: plugin {ep.name!r} failed to load: {reason}", file=sys.stderr)
    return pm


def plugin_info() -> list[dict]:
    """What ``medsyn plugins --json`` prints: each loaded plugin, its hooks and its distribution."""
    load_plugins()
    dists = {}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                dists[ep.name] = (dist.metadata["Name"], dist.version)
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: p[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        entry = {"name": name, "hooks": hooks}
        if name in DEFAULT_PLUGINS:
            entry["default"] = True
        if name in dists:
            entry["distribution"], entry["version"] = dists[name]
        if name in failed:  # loaded, but one of its hooks raised
            entry["error"] = failed[name]
        out.append(entry)
    loaded = {p["name"] for p in out}
    for name, reason in sorted(failed.items()):
        if name not in loaded:
            out.append({"name": name, "hooks": [], "error": reason})
    return out


#: (plugin, hook) pairs already reported, so a failure is told once per process, not per lookup.
_reported: set[tuple[str, str]] = set()


def report_failure(plugin_name: str, hook_name: str, exc: BaseException) -> None:
    """One line on stderr naming the plugin and the hook, once; ``medsyn plugins`` shows it too."""
    if (plugin_name, hook_name) in _reported:
        return
    _reported.add((plugin_name, hook_name))
    reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    failed.setdefault(plugin_name, f"{hook_name}: {reason}")
    print(f"medsyn: plugin {plugin_name!r} failed in {hook_name}: {reason}", file=sys.stderr)


def collect(hook_name: str, accept: Callable[..., Any] | None = None, **kwargs) -> list[tuple[str, Any]]:
    """Call ``hook_name`` on every plugin, one at a time; return ``(plugin_name, registration)`` pairs.

    Each ``register(...)`` call a plugin makes is passed to ``accept`` (which checks it and returns
    the registration; default: the single argument), inside the plugin's call, so a bad
    registration counts as that plugin's failure. A plugin whose hook raises is reported once
    (:func:`report_failure`) and everything it registered in that call is dropped. A hook that takes
    something other than ``register`` (``register_commands(app)``) is given ``kwargs`` instead.
    """
    load_plugins()
    accept = accept or (lambda thing: thing)
    caller = getattr(pm.hook, hook_name)
    found: list[tuple[str, Any]] = []
    # pluggy keeps the last-registered first; reversed: default plugins, then entry points in order
    for impl in reversed(caller.get_hookimpls()):
        mine: list[tuple[str, Any]] = []

        def register(*args, _plugin=impl.plugin_name, **kw) -> None:
            mine.append((_plugin, accept(*args, **kw)))

        try:
            impl.function(**(kwargs or {"register": register}))
        except Exception as exc:  # one plugin's failure must not take the others (or the CLI) down
            report_failure(impl.plugin_name, hook_name, exc)
            continue
        found.extend(mine)
    return found


def collect_named(hook_name: str, accept: Callable[..., Any], what: str) -> dict[str, Any]:
    """:func:`collect` for registrations with a ``name`` and a ``plugin`` field (models, metrics, formats):
    by name, in registration order, each stamped with its plugin's name unless it gives one. A second
    registration of a name loses, and its plugin is told why (:func:`report_failure`)."""
    import dataclasses

    found: dict[str, Any] = {}
    for plugin_name, item in collect(hook_name, accept):
        if item.name in found:
            report_failure(plugin_name, hook_name, ValueError(f"{what} {item.name!r} registered twice"))
            continue
        found[item.name] = dataclasses.replace(item, plugin=item.plugin or plugin_name)
    return found
