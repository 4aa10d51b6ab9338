"""Where ``--amp auto`` keeps its bf16-against-fp32 measurement on the CPU (no torch import: ``medsyn cache``
lists and clears it)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from medsyn_cli.fileio import write_text_atomic

PROBE_FILE = "amp-probe.json"  # in the user cache dir: one measurement per CPU model and torch version


def probe_path() -> Path:
    """The file of measurements, by CPU key."""
    from medsyn_cli.paths import cache_dir

    return cache_dir() / PROBE_FILE


def probe_records() -> dict:
    """The kept measurements, by CPU key; {} if there are none or the file is unreadable."""
    try:
        known = json.loads(probe_path().read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def write_probe(path: Path, data: dict) -> None:
    """Best effort, atomic: a read-only or full cache dir only means measuring again next time."""
    with contextlib.suppress(OSError):
        write_text_atomic(path, json.dumps(data, indent=1))
