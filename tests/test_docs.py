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


def _card_spec(name: str) -> dict[str, str]:
    """The rows of a model card's first two-column table (``| key | value |``), by key."""
    rows = {}
    for line in (ROOT / "docs" / "models" / f"{name}.md").read_text().splitlines():
        m = re.fullmatch(r"\| ([a-z][\w ]*) \| (.+) \|", line.strip())
        if m and m.group(1) not in rows:
            rows[m.group(1)] = m.group(2)
    return rows


def _ints(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\b\d+\b", text)}


def test_every_model_card_states_the_spec_the_model_registers(cli):
    """What a card's table says (task, resolutions, channels, default batch and fit) is what
    `medsyn models --json` reports: a registration line that moved onto another model (as
    ct-kernel-wgan's `default_fit` once did) or a card left behind fails here."""
    import json

    proc = cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)["models"]
    assert {m["name"] for m in models} == set(all_models())
    for m in models:
        card = _card_spec(m["name"])
        where = f"docs/models/{m['name']}.md"
        for key in ("task", "resolutions", "channels", "default batch", "default fit"):
            assert key in card, f"{where}: no '{key}' row in its table"
        assert card["task"].split()[0] == m["task"], where
        # "240 (...), 64, 128, 256 (...)": the listed sides (text after a " - " is commentary)
        assert _ints(card["resolutions"].split(" - ")[0]) == set(m["resolutions"]), where
        assert _ints(card["channels"]) == set(m["channels"]), where
        assert int(re.match(r"\d+", card["default batch"]).group()) == m["default_batch_size"], where
        assert re.match(r"`(\w+)`", card["default fit"]).group(1) == m["default_fit"], where
