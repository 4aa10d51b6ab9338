"""Every relative link and image in the docs resolves: a moved page (docs/results.md into docs/lab/) or a renamed
heading cannot leave a reader in front of a 404 or a dead anchor."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from conftest import ROOT

#: The pages a reader follows links from (README and CHANGELOG at the top, every page under docs/, the benches').
DOC_PAGES = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *(ROOT / "docs").rglob("*.md")]
)

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # [text](target), ![alt](target)
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")  # [label]: target
_HTML_TARGET = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_EXPLICIT_ANCHOR = re.compile(r"""<a\s+(?:name|id)\s*=\s*["']([^"']+)["']""")
#: What GitHub's slugger drops: punctuation (but '-' and '_'), symbols, other numbers (², ½), controls and spaces
#: other than ' '; letters, marks and decimal digits stay.
_DROPPED_CATEGORIES = ("P", "S", "No", "C", "Z")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: inline markup reduced to its text, lower case, punctuation and symbols
    removed, each space a hyphen (no collapsing: "a - b" is "a---b")."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    kept = []
    for ch in text.lower():
        if ch in "-_ ":
            kept.append(ch)
        elif not unicodedata.category(ch).startswith(_DROPPED_CATEGORIES) or unicodedata.category(ch) == "Pc":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def _prose_lines(text: str, blank_code: bool = True):
    """(line number, line) outside fenced code blocks, with inline code spans blanked unless told not to."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, _CODE_SPAN.sub("", line) if blank_code else line


def anchors(page: Path) -> set[str]:
    """The anchors a page offers: its headings' slugs (a repeated slug gets -1, -2, ... as on GitHub) and any
    explicit <a name/id>."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _prose_lines(page.read_text(encoding="utf-8"), blank_code=False):
        found.update(_EXPLICIT_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        if slug in seen:
            seen[slug] += 1
            found.add(f"{slug}-{seen[slug]}")
        else:
            seen[slug] = 0
            found.add(slug)
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image on a page, in prose (not in code)."""
    out = []
    for number, line in _prose_lines(page.read_text(encoding="utf-8")):
        for pattern in (_INLINE_TARGET, _REFERENCE_DEF, _HTML_TARGET):
            out.extend((number, target) for target in pattern.findall(line))
    return out


def _is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I)) or target.startswith("//")


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What does not resolve on a page, one line each: 'page:line: target (why)'."""
    problems = []
    for number, target in links(page):
        if _is_external(target):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = path_part.split("?")[0]
        where = f"{page.relative_to(root)}:{number}: {target}"
        dest = (page.parent / path_part).resolve() if path_part else page
        if path_part.startswith("/"):
            dest = (root / path_part.lstrip("/")).resolve()
        if not dest.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where} (no heading with that anchor in {dest.relative_to(root)})")
    return problems


def test_the_slug_rules_are_githubs():
    """The anchors GitHub gives real headings of these docs (backticks, dots, ×, ², arrows and parentheses
    dropped; spaces to hyphens without collapsing)."""
    assert github_slug("hagan `--recipe fast`: batch 32 against batch 16, 20 minutes, two seeds") == (
        "hagan---recipe-fast-batch-32-against-batch-16-20-minutes-two-seeds"
    )
    assert github_slug("the 110.8 goal met (two seeds)") == "the-1108-goal-met-two-seeds"
    assert github_slug("COVID-CT non-COVID, 64×64 (HAGAN's Table II)") == "covid-ct-non-covid-6464-hagans-table-ii"
    assert github_slug("BraTS 2018 FLAIR, normal → tumor, 64²") == "brats-2018-flair-normal--tumor-64"
    assert github_slug("Adam β1 = 0, [card](x.md)") == "adam-β1--0-card"
    assert github_slug("snake_case_name") == "snake_case_name"


def test_the_checker_finds_a_dead_link_and_a_dead_anchor(tmp_path):
    """A page with a missing file, a missing anchor and a missing image fails; a heading's code counts in its anchor
    (a repeated heading's gets -1), links in code do not count."""
    (tmp_path / "other.md").write_text("# Other page\n\n## A `--code` section, here\n\n## A `--code` section, here\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#a---code-section-here-1) [ok too](#title) ![img](missing.png)\n"
        "# Title\n[gone](gone.md) [bad anchor](other.md#nowhere)\n"
        "`[in code](nope.md)`\n```\n[in a block](nope.md)\n```\n"
        '<img src="missing-too.png">\n'
    )
    found = broken_links(page, root=tmp_path)
    assert [p.split(": ", 1)[1] for p in found] == [
        "missing.png (no such file)",
        "gone.md (no such file)",
        "other.md#nowhere (no heading with that anchor in other.md)",
        "missing-too.png (no such file)",
    ]


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page):
    assert broken_links(page) == []
