"""The plugin manager: entry points loaded lazily once, errors isolated per plugin.

``MEDSYN_LOAD_PLUGINS`` restricts loading to a comma-separated list of entry-point names
(an empty string loads none), like ``LLM_LOAD_PLUGINS`` in simonw/llm.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

import pluggy

from medsyn_cli import hookspecs

ENTRY_POINT_GROUP = "medsyn"

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


def call_isolated(hook_name: str, what: str, **kwargs) -> None:
    """Call hook ``hook_name`` on each plugin on its own: one that raises is reported in one line
    naming it (and listed by ``medsyn plugins``), and the others still run."""
    for name, plugin in load_plugins().list_name_plugin():
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue
        try:
            impl(**kwargs)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            failed.setdefault(name, reason)
            print(f"medsyn: plugin {name!r} failed to register its {what}: {reason}", file=sys.stderr)


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
