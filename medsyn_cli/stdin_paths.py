"""Paths read from stdin (``-``): plain paths, one per line, or the JSON lines medsyn's own ``--json``
streams print, so ``medsyn sample RUN --json | medsyn eval fid REAL -`` works as well as without --json.

A line that starts with ``{`` is a JSON object; its path is the value of ``path`` (``sample``), else
``output`` (``translate``, ``edges``). Blank lines are skipped.
"""

from __future__ import annotations

import json
from typing import Iterable

from medsyn_cli.errors import InputError

PATH_KEYS = ("path", "output")


def paths_from_lines(lines: Iterable[str]) -> list[str]:
    """The path each non-blank line names (see the module docstring)."""
    out: list[str] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"stdin line {number}: not valid JSON ({exc.msg})") from None
            found = next((obj[k] for k in PATH_KEYS if isinstance(obj.get(k), str)), None)
            if found is None:
                raise InputError(f"stdin line {number}: a JSON object without a \"path\" or \"output\" field")
            line = found
        out.append(line)
    return out
