"""A training run's ``config.json``: its format tag and how it is read back.

Below both the trainer (which writes it) and the output layer (which recognises a run directory by it),
so neither imports the other to know what a run is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medsyn_cli.errors import InputError

RUN_FORMAT = "medsyn-run-1"


def read_run_config(out: Path) -> dict[str, Any]:
    """``config.json`` of an existing run directory (InputError naming it when unreadable)."""
    path = out / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("not a medsyn run directory (no config.json)", path=out) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable run config: {exc}", path=path) from None
    if not isinstance(cfg, dict) or cfg.get("format") != RUN_FORMAT:
        raise InputError(f"not a medsyn run config (format tag {RUN_FORMAT!r} missing)", path=path)
    return cfg
