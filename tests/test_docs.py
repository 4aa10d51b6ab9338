"""Documentation stays in step with the code (as datasette checks its hooks are documented)."""

from __future__ import annotations

import re

from conftest import ROOT
from medsyn_cli import hookspecs
from medsyn_cli.registry import all_models


def _hook_names() -> list[str]:
    return [n for n in dir(hookspecs) if n.startswith("register_")]


def test_every_hook_is_documented():
    doc = (ROOT / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"^### `(register_\w+)\(", doc, flags=re.M))
    assert documented == set(_hook_names())


def test_every_builtin_model_has_a_model_card():
    for name in all_models():
        card = ROOT / "docs" / "models" / f"{name}.md"
        assert card.is_file(), f"missing model card {card}"
        assert "## " in card.read_text()


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in text and "## [Unreleased]" in text
