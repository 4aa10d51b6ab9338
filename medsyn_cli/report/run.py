"""What the report reads from a run directory, finished or still training.

Nothing here needs the run to be complete: ``stats.jsonl`` may still be growing (a torn last line is
skipped), there may be no ``weights.safetensors`` and no checkpoint yet, and grids appear as the run
goes on. Only ``config.json`` is required: it is what makes a folder a medsyn run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn_cli.run_config import read_run_config
from medsyn_cli.training.stats import read_stats

GRID_NAME = re.compile(r"^step-(\d+)\.png$")
CHECKPOINT_NAME = re.compile(r"^step-(\d+)\.pt$")


@dataclass
class RunView:
    """A run directory as the report sees it; also what a plugin's report section receives."""

    dir: Path
    config: dict[str, Any]
    stats: list[dict[str, Any]]
    grids: list[tuple[int, Path]] = field(default_factory=list)  # (step, path), by step
    log_tail: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run directory's name (also for ``medsyn report .``)."""
        return self.dir.resolve().name

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

    @property
    def task(self) -> str:
        return str(self.config.get("task", "unconditional"))

    @property
    def total_steps(self) -> int | None:
        steps = self.config.get("training", {}).get("steps")
        return int(steps) if isinstance(steps, (int, float)) else None

    @property
    def last_step(self) -> int:
        """The newest step anything was recorded for (a stats record, a grid or a checkpoint file)."""
        steps = [int(r["step"]) for r in self.stats if isinstance(r.get("step"), (int, float))]
        steps += [s for s, _ in self.grids]
        ckpts = self.dir / "checkpoints"
        if ckpts.is_dir():
            steps += [int(m.group(1)) for p in ckpts.iterdir() if (m := CHECKPOINT_NAME.match(p.name))]
        return max(steps, default=0)

    @property
    def weights(self) -> Path | None:
        path = self.dir / "weights.safetensors"
        return path if path.is_file() else None

    @property
    def checkpoint(self) -> Path | None:
        path = self.dir / "checkpoints" / "latest.pt"
        return path if path.is_file() else None

    def _last_event(self) -> str:
        """The trainer's newest start, finish or stop line in log.txt ('' when there is none)."""
        for line in reversed(self.log_tail):
            if any(marker in line for marker in (" training ", " finished at step ", " stopped: ")):
                return line
        return ""

    @property
    def finished(self) -> bool:
        """The trainer logged the end and exported the weights (a resumed, running run is not)."""
        return self.weights is not None and " finished at step " in self._last_event()

    @property
    def stopped_line(self) -> str | None:
        """What the trainer said when it stopped, when stopping is the newest event in the log."""
        event = self._last_event()
        return event.split(" stopped: ", 1)[1] if " stopped: " in event else None

    def loss_records(self) -> list[dict[str, Any]]:
        return [r for r in self.stats if isinstance(r.get("losses"), dict) and r["losses"]]

    def fid_records(self) -> list[tuple[int, float]]:
        """(step, FID) of every record that scored FID (``--eval-every``)."""
        out = []
        for r in self.stats:
            fid, step = r.get("fid"), r.get("step")
            if isinstance(fid, (int, float)) and not isinstance(fid, bool) and isinstance(step, (int, float)):
                out.append((int(step), float(fid)))
        return out


    def critic_records(self) -> list[dict[str, Any]]:
        """The records of ``--holdout``'s critic diagnostics: ``{"step", "train", "holdout", "fake", ...}``."""
        return critic_records(self.stats)


def critic_records(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``{"step": ..., **record["critic"]}`` of every stats record with the critic's scores."""
    out = []
    for r in stats:
        critic, step = r.get("critic"), r.get("step")
        if isinstance(critic, dict) and isinstance(step, (int, float)) and all(
                isinstance(critic.get(k), (int, float)) for k in ("train", "holdout", "fake")):
            out.append({"step": int(step), **critic})
    return out


def list_grids(samples: Path) -> list[tuple[int, Path]]:
    if not samples.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in samples.iterdir() if (m := GRID_NAME.match(p.name))]
    return sorted(found)


def open_run(path: str | Path) -> RunView:
    """The run at ``path``; InputError naming it when it is not a medsyn run directory."""
    run_dir = Path(path)
    config = read_run_config(run_dir)
    log = run_dir / "log.txt"
    tail = log.read_text(errors="replace").splitlines()[-400:] if log.is_file() else []
    return RunView(dir=run_dir, config=config, stats=read_stats(run_dir / "stats.jsonl"),
                   grids=list_grids(run_dir / "samples"), log_tail=tail)


def pick_evenly(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly, the first and the last always kept (0: all)."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    idx = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in idx]
