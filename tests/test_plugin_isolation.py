"""Model plugins share code only through the host: dcgan, wgan and hagan import no other model plugin."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT


@pytest.mark.parametrize("plugin", ["dcgan", "wgan", "hagan"])
def test_plugin_imports_only_itself_and_the_host(plugin):
    for path in sorted((ROOT / "plugins" / plugin).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("medsyn_plugins"):
                    assert name == f"medsyn_plugins.{plugin}" or name.startswith(f"medsyn_plugins.{plugin}."), \
                        f"{path.relative_to(ROOT)} imports {name}"
