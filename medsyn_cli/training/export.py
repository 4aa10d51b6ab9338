"""``weights.safetensors``: a run's inference networks for sharing, with string metadata.

Tensor keys are ``"<network>.<state-dict key>"`` (e.g. ``generator.main.0.weight``); the metadata
holds ``format``, ``model``, ``task``, ``version`` (medsyn's), ``res``, ``channels``, ``step``,
``ema`` and, as JSON strings, ``config`` and ``intensity``. No pickled code: safetensors cannot hold any.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from medsyn_cli import __version__
from medsyn_cli.errors import InputError
from medsyn_cli.fileio import atomic_path

WEIGHTS_FORMAT = "medsyn-weights-1"


def export_weights(path: str | Path, states: dict[str, dict[str, torch.Tensor]], *, model: str, task: str,
                   res: int, channels: int, step: int, config: dict[str, Any], intensity: dict[str, Any],
                   ema: bool) -> Path:
    """Write ``states`` (network name -> state dict) atomically as one safetensors file."""
    from safetensors.torch import save_file

    tensors = {f"{net}.{k}": v.detach().to("cpu").clone().contiguous()
               for net, state in states.items() for k, v in state.items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "model": model,
        "task": task,
        "version": __version__,
        "res": str(res),
        "channels": str(channels),
        "step": str(step),
        "ema": "true" if ema else "false",
        "networks": ",".join(states),
        "config": json.dumps(config, sort_keys=True),
        "intensity": json.dumps(intensity, sort_keys=True),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_weights(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """(network name -> state dict, parsed metadata) of an exported file; InputError if it is not one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a readable safetensors file ({exc})", path=path) from None
    if raw.get("format") != WEIGHTS_FORMAT:
        raise InputError(f"not a medsyn weights file (metadata format is not {WEIGHTS_FORMAT!r})", path=path)
    try:
        meta = {
            "model": raw["model"],
            "task": raw.get("task", "unconditional"),
            "version": raw.get("version"),
            "res": int(raw["res"]),
            "channels": int(raw["channels"]),
            "step": int(raw.get("step", 0)),
            "ema": raw.get("ema") == "true",
            "config": json.loads(raw["config"]),
            "intensity": json.loads(raw.get("intensity", "{}")),
        }
    except (KeyError, ValueError) as exc:
        raise InputError(f"medsyn weights file with broken metadata ({exc})", path=path) from None
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        net, _, name = key.partition(".")
        states.setdefault(net, {})[name] = tensor
    return states, meta
