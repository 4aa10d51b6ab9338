"""The run directory's ``config.json`` as the trainer writes it: the resolved plan with what training
found out (steps, precision, device, data), the resumes, and how the run finished."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from medsyn_cli.fileio import atomic_path


def _write(path: Path, cfg: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(cfg, indent=2, default=str) + "\n")


def write_run_config(path: Path, cfg: dict[str, Any], *, resume: bool, step: int,
                     config_changes: dict[str, Any]) -> None:
    """Write ``cfg`` (the plan's ``as_dict()`` with the trainer's additions); on ``resume`` keep the
    creation time and append this resume to ``resumes``."""
    if resume and path.exists():
        old = json.loads(path.read_text())
        cfg["created"] = old.get("created")
        cfg["resumes"] = old.get("resumes", []) + [
            {"step": step, "time": time.time(), "model_config_changes": config_changes}]
    else:
        cfg["created"] = time.time()
        cfg["resumes"] = []
    cfg.pop("resume", None)
    _write(path, cfg)


def record_finish(path: Path, *, step: int, planned: int, seconds: float, budget_spent: bool) -> None:
    """``finished`` in config.json: the step and training minutes the run ended at, and why."""
    cfg = json.loads(path.read_text())
    cfg["finished"] = {"step": step, "planned_steps": planned, "training_minutes": round(seconds / 60, 6),
                       "reason": "max_minutes" if budget_spent else "steps", "time": time.time()}
    _write(path, cfg)
