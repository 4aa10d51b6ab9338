"""Which model a run directory, checkpoint or exported weights file holds, read without building it."""

from __future__ import annotations

import json
from pathlib import Path

from medsyn_cli.errors import InputError


def recorded_model(target: Path) -> str:
    """The model name recorded in ``target``: a run's ``config.json``, a ``.safetensors`` export's
    metadata or a ``.pt`` checkpoint's ``model`` entry. InputError naming ``target`` otherwise."""
    if target.is_dir() and (target / "config.json").is_file():
        try:
            cfg = json.loads((target / "config.json").read_text())
        except (OSError, ValueError):
            raise InputError("unreadable run config", path=target / "config.json") from None
        name = cfg.get("model") if isinstance(cfg, dict) else None
    elif target.is_dir():
        for inner in (target / "weights.safetensors", target / "checkpoints" / "latest.pt"):
            if inner.is_file():
                return recorded_model(inner)
        raise InputError("not a medsyn run directory (no config.json, weights.safetensors or "
                         "checkpoints/latest.pt)", path=target)
    elif target.name.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(str(target), framework="pt") as fh:
                name = (fh.metadata() or {}).get("model")
        except Exception as exc:  # safetensors raises its own error types for a bad header
            raise InputError(f"not a readable safetensors file ({exc})", path=target) from None
    else:
        from medsyn_cli.training.checkpoint import load_checkpoint

        name = load_checkpoint(target).get("model")
    if not name:
        raise InputError("records no model name", path=target)
    return str(name)
