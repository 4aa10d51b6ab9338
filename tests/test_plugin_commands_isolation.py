"""A plugin whose register_commands raises is reported in one line; the CLI and its commands still work."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

from conftest import run_cli

BROKEN = """
    from medsyn_cli.hookspecs import hookimpl

    @hookimpl
    def register_commands(app):
        raise RuntimeError("cannot add my command")
"""


def _site(tmp_path: Path) -> dict:
    """A throwaway distribution 'medsyn-badcmd' with a 'badcmd' entry point, on PYTHONPATH."""
    (tmp_path / "medsyn_badcmd.py").write_text(textwrap.dedent(BROKEN))
    info = tmp_path / "medsyn_badcmd-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medsyn-badcmd\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[medsyn]\nbadcmd = medsyn_badcmd\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_version_works_and_the_plugin_is_named_once(tmp_path):
    r = run_cli("--version", env=_site(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("medsyn ")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "'badcmd'" in lines[0] and "cannot add my command" in lines[0]
    assert "Traceback" not in r.stderr


def test_other_commands_work_and_plugins_lists_the_error(tmp_path):
    env = _site(tmp_path)
    r = run_cli("models", "--json", env=env)
    assert r.returncode == 0 and "dcgan" in {m["name"] for m in json.loads(r.stdout)["models"]}
    plugins = {p["name"]: p for p in json.loads(run_cli("plugins", "--json", env=env).stdout)["plugins"]}
    assert "cannot add my command" in plugins["badcmd"].get("error", "")
    assert run_cli("--help", env=env).returncode == 0
