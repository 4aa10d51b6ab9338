"""Shared CLI plumbing: the console (re-exported from :mod:`medsyn_cli.console`), stdin paths."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable

from medsyn_cli.console import _NullProgress, echo_json, err_console, log, progress, show_progress  # noqa: F401
from medsyn_cli.errors import InputError


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Replace ``-`` with the paths read from stdin: one per line, or medsyn's JSON lines
    (:mod:`medsyn_cli.stdin_paths`)."""
    from medsyn_cli.stdin_paths import paths_from_lines

    out: list[str] = []
    for item in inputs:
        if item == "-":
            out.extend(paths_from_lines(sys.stdin.read().splitlines()))
        else:
            out.append(item)
    return out


def existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or directory", path=p)
    return p
