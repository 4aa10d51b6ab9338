"""The user's record of trained runs and chosen default weights, in the user data dir.

``runs.jsonl`` gets a line each time a training run finishes (rank 0); ``defaults.json`` maps a
model name to the run or checkpoint chosen with ``medsyn weights default MODEL RUN``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from medsyn_cli import paths
from medsyn_cli.errors import InputError, from_os_error
from medsyn_cli.fileio import atomic_path
from medsyn_cli.notices import warn


def _runs_file() -> Path:
    return paths.data_dir() / "runs.jsonl"


def _defaults_file() -> Path:
    return paths.data_dir() / "defaults.json"


def record_run(model: str, run_dir: str | Path, step: int) -> None:
    """Add a finished run to the index. Bookkeeping only: a run that finished stays a success when
    the index cannot be written (a read-only or missing MEDSYN_HOME), with a warning."""
    entry = {"model": model, "run": str(Path(run_dir).resolve()), "step": step, "time": time.time()}
    try:
        paths.ensure(paths.data_dir())
        with open(_runs_file(), "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OSError as exc:
        warn(f"the run is not in the index of runs ({from_os_error(exc).one_line()}); `medsyn translate` and "
             f"`medsyn weights` will not find it by model name, so pass {run_dir} to them")


def latest_run(model: str) -> Path | None:
    """The most recently finished run of ``model`` that still exists on disk."""
    try:
        lines = _runs_file().read_text().splitlines()
    except OSError:  # no index yet, or one that cannot be read: no run to offer
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("model") == model and Path(str(entry.get("run"))).exists():
            return Path(entry["run"])
    return None


def defaults() -> dict[str, str]:
    f = _defaults_file()
    if not f.exists():
        return {}
    try:
        doc = json.loads(f.read_text())
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise InputError("not medsyn's map of default weights (a JSON object)", path=f,
                         hint="delete it, then choose defaults again with `medsyn weights default MODEL RUN`")
    return doc


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
