"""The user's record of trained runs and chosen default weights, in the user data dir.

``runs.jsonl`` gets a line each time a training run finishes (rank 0); ``defaults.json`` maps a
model name to the run or checkpoint chosen with ``medsyn weights default MODEL RUN``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from medsyn_cli import paths
from medsyn_cli.fileio import atomic_path


def _runs_file() -> Path:
    return paths.data_dir() / "runs.jsonl"


def _defaults_file() -> Path:
    return paths.data_dir() / "defaults.json"


def record_run(model: str, run_dir: str | Path, step: int) -> None:
    paths.ensure(paths.data_dir())
    entry = {"model": model, "run": str(Path(run_dir).resolve()), "step": step, "time": time.time()}
    with open(_runs_file(), "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def latest_run(model: str) -> Path | None:
    """The most recently finished run of ``model`` that still exists on disk."""
    f = _runs_file()
    if not f.exists():
        return None
    for line in reversed(f.read_text().splitlines()):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("model") == model and Path(entry["run"]).exists():
            return Path(entry["run"])
    return None


def defaults() -> dict[str, str]:
    f = _defaults_file()
    return json.loads(f.read_text()) if f.exists() else {}


def set_default(model: str, target: str | Path) -> None:
    d = defaults()
    d[model] = str(Path(target).resolve())
    paths.ensure(paths.data_dir())
    with atomic_path(_defaults_file()) as tmp:
        tmp.write_text(json.dumps(d, indent=2))


def default_for(model: str) -> Path | None:
    """The explicit default for ``model``, else its latest run on this machine, else None."""
    d = defaults().get(model)
    if d and Path(d).exists():
        return Path(d)
    return latest_run(model)
