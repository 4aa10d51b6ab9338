"""The layers of docs/architecture.md: every import goes to the importer's floor or one below, the
modules import each other without circles, a floor's packages import each other one way only, lower
floors never import the CLI, and the console imports nothing of medsyn.

Every import counts: module-level, lazy (inside a function) and ``TYPE_CHECKING`` ones alike. The one
edge left out is the implicit one from a module to its own parent package's ``__init__``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

LOWER_FLOORS = ["training", "metrics", "data", "report", "gan", "nn"]

#: docs/architecture.md's floors: each top-level module or package of medsyn_cli -> its floor. A new
#: module must be placed here (and in the architecture page's table) before the suite passes.
FLOORS = {
    # 1: the bottom, no medsyn module above it
    "medsyn_cli": 1, "console": 1, "errors": 1, "fileio": 1, "paths": 1, "plugins": 1, "hookspecs": 1,
    "notices": 1, "stdin_paths": 1, "machine": 1,
    # 2: data, the model contract and its building blocks, settings, the output layer
    "data": 2, "gan": 2, "model": 2, "nn": 2, "registry": 2, "config": 2, "config_rules": 2, "formats": 2,
    "runs_index": 2, "run_config": 2, "outputs": 2, "manifest": 2, "locks": 2,
    # 3: what a command does
    "training": 3, "metrics": 3, "report": 3, "translation": 3, "translation_regions": 3, "edges": 3,
    "domain_check": 3, "run_identity": 3,
    # 4: the command line
    "cli": 4, "__main__": 4,
}


def _imports(path: Path):
    """``(base, names)`` per import statement of ``path``: the absolute module imported from (relative
    imports resolved) and the names taken from it (empty for ``import x``); lazy ones included."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            yield base, [a.name for a in node.names]


def imported_modules(path: Path) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved, lazy ones included)."""
    names: list[str] = []
    for base, taken in _imports(path):
        names.append(base)
        names += [f"{base}.{name}" for name in taken]  # ``from medsyn_cli import cli``
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """medsyn_cli module -> the medsyn_cli modules it imports. ``from pkg import name`` is an edge to
    ``pkg.name`` when that is a module, else to ``pkg`` (whose ``__init__`` defines ``name``)."""
    paths = {module_name(p): p for p in sorted((ROOT / "medsyn_cli").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for base, taken in _imports(path):
            for target in [f"{base}.{t}" if f"{base}.{t}" in paths else base for t in taken] or [base]:
                if target in paths and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def unit(module: str) -> str:
    """The entry of :data:`FLOORS` a module belongs to (``medsyn_cli.training.plan`` -> ``training``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (floor {FLOORS[unit(a)]}) imports {b} (floor {FLOORS[unit(b)]})"
            for a, targets in sorted(graph.items()) for b in sorted(targets) if FLOORS[unit(b)] > FLOORS[unit(a)]]


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between the entries of :data:`FLOORS` (packages and top-level modules)."""
    units: dict[str, set[str]] = {}
    for a, targets in graph.items():
        units.setdefault(unit(a), set()).update(unit(b) for b in targets if unit(b) != unit(a))
    return units


def test_every_module_has_a_floor():
    missing = sorted({unit(m) for m in import_graph()} - set(FLOORS))
    assert not missing, f"place {missing} on a floor in FLOORS and in docs/architecture.md"


def test_no_module_imports_from_a_higher_floor():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_packages_and_modules_of_a_floor_import_each_other_one_way():
    cycle = find_cycle(unit_graph(import_graph()))
    assert cycle is None, "two-way imports between parts of medsyn_cli: " + " -> ".join(cycle)


def test_the_checks_catch_a_cycle_and_an_upward_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    graph = {"medsyn_cli.outputs": {"medsyn_cli.training.plan", "medsyn_cli.fileio"}}
    assert upward_imports(graph) == ["medsyn_cli.outputs (floor 2) imports medsyn_cli.training.plan (floor 3)"]
    assert find_cycle(unit_graph({"medsyn_cli.metrics.prepare": {"medsyn_cli.training.grids"},
                                  "medsyn_cli.training.scoring": {"medsyn_cli.metrics.fid"}})) is not None


def test_the_graph_resolves_submodules_packages_and_relative_imports():
    graph = import_graph()
    assert "medsyn_cli.data.pixels" in graph["medsyn_cli.training.grids"]  # from pkg.mod import name
    assert "medsyn_cli.metrics.fid" in graph["medsyn_cli.training.scoring"]  # from pkg import mod
    assert "medsyn_cli" in graph["medsyn_cli.training.plan"]  # from medsyn_cli import __version__
    assert "medsyn_cli.data.datasets" in graph["medsyn_cli.data"]  # an __init__ re-exporting


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


def test_the_floor_table_of_docs_architecture_is_floors():
    """Each row of the page's floor table names (in backticks, as ``x/`` or ``x.py``) exactly its floor's entries."""
    documented: dict[str, int] = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        row = re.match(r"\| (\d) \| ([^|]*) \|", line)
        if row:
            for name in re.findall(r"`([a-z_]+)(?:/|\.py)`", row.group(2)):
                documented["medsyn_cli" if name == "__init__" else name] = int(row.group(1))
    assert documented == FLOORS


#: The longest a module of the host or a built-in plugin may grow (DESIGN: small modules, a model file you
#: can read in one sitting); split along a seam before it passes this.
MAX_MODULE_LINES = 400


def test_every_module_is_small_enough_to_read_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in sorted([*(ROOT / "medsyn_cli").rglob("*.py"),
                                                       *(ROOT / "plugins").rglob("*.py")])
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"over {MAX_MODULE_LINES} lines: {long}"
