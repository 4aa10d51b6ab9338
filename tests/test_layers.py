"""The layers of docs/architecture.md: lower floors never import the CLI; the console imports nothing of medsyn."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

LOWER_FLOORS = ["training", "metrics", "data", "report", "gan", "nn"]


def imported_modules(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved, lazy ones included)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            names.append(base)
            names += [f"{base}.{a.name}" for a in node.names]  # ``from medsyn_cli import cli``
    return names


def test_imported_modules_sees_every_spelling(tmp_path, monkeypatch):
    pkg = ROOT / "medsyn_cli" / "training" / "x.py"
    monkeypatch.setattr(Path, "read_text", lambda self: (
        "import medsyn_cli.cli.common\nfrom medsyn_cli import cli\nfrom ..cli import common\n"
        "def f():\n    from medsyn_cli.cli.common import log\n"))
    names = imported_modules(pkg)
    assert sum(n == "medsyn_cli.cli" or n.startswith("medsyn_cli.cli.") for n in names) >= 4


@pytest.mark.parametrize("floor", LOWER_FLOORS)
def test_lower_floor_never_imports_the_cli(floor):
    paths = sorted((ROOT / "medsyn_cli" / floor).rglob("*.py"))
    assert paths
    for path in paths:
        for name in imported_modules(path):
            assert not (name == "medsyn_cli.cli" or name.startswith("medsyn_cli.cli.")), \
                f"{path.relative_to(ROOT)} imports {name}"


def test_console_is_the_bottom_floor():
    for name in imported_modules(ROOT / "medsyn_cli" / "console.py"):
        assert not name.startswith("medsyn_cli"), name


def test_cli_common_re_exports_the_console():
    from medsyn_cli import console
    from medsyn_cli.cli import common

    for name in ("log", "progress", "show_progress", "echo_json", "err_console"):
        assert getattr(common, name) is getattr(console, name)
