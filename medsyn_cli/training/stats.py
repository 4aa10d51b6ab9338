"""``stats.jsonl`` (one JSON object per log step) and ``log.txt`` (what was said on stderr, timestamped)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from medsyn_cli.fileio import atomic_path


class RunLog:
    """Appends to a run directory's ``log.txt`` and ``stats.jsonl``; silent on ranks other than 0."""

    def __init__(self, run_dir: Path, *, enabled: bool = True):
        self.enabled = enabled
        self.log_path = run_dir / "log.txt"
        self.stats_path = run_dir / "stats.jsonl"
        #: Called with each stats record after it is written (the TensorBoard writer listens here).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def line(self, message: str, *, echo: bool = True) -> None:
        """Write ``message`` to log.txt and, when ``echo``, to stderr."""
        if not self.enabled:
            return
        if echo:
            from medsyn_cli.console import log

            log(message)
        with open(self.log_path, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def stats(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.stats_path, "a") as fh:
            fh.write(json.dumps(record, allow_nan=True) + "\n")
        for listener in self.listeners:
            listener(record)


def read_stats(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a ``stats.jsonl`` (a torn last line from a kill is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_stats(path: Path, step: int) -> None:
    """Drop records after ``step``: on resume, steps past the checkpoint are trained again."""
    if not path.exists():
        return
    kept = [r for r in read_stats(path) if r.get("step", 0) <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))


class LossMeter:
    """Sums of each loss over the steps since the last log line, and the time spent in them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.images = 0
        self.seconds = 0.0

    def add(self, losses: dict[str, float], images: int, seconds: float) -> None:
        """``seconds``: the step's own time (batch + train_step), so checkpoints and grids don't count."""
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.count += 1
        self.images += images
        self.seconds += seconds

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}

    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def first_nonfinite(losses: dict[str, float]) -> tuple[str, float] | None:
    for k, v in losses.items():
        if not math.isfinite(float(v)):
            return k, float(v)
    return None


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in losses.items())
