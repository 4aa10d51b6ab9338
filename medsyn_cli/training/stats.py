"""``stats.jsonl`` (one JSON object per log step) and ``log.txt`` (what was said on stderr, timestamped)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from medsyn_cli.errors import TrainingError
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


#: Steps of losses held as separate small vectors before they are stacked into one matrix per key set.
FOLD_EVERY = 64


class LossMeter:
    """Running sums of each loss since the last log line, the first step whose losses were not all
    finite, and the time spent in the steps (and waiting for their batches).

    ``add`` takes a step's losses as ``train_step`` returned them (0-d tensors or floats) and reads
    nothing on the host: the losses stay where they are (the GPU on a GPU run), stacked every
    ``FOLD_EVERY`` steps into (steps, names) matrices. ``check`` reads every matrix since the last check
    in one host transfer, then sums and looks for non-finite values on the host; the trainer calls it at
    its check points (log steps, before side work, at a stop, at the end), so what is held between two
    reads is a few numbers per step."""

    def __init__(self) -> None:
        self.device: torch.device | None = None  # where the losses live: the first tensor loss's device
        self.dtype = torch.float64
        self._bad: tuple[int, str, float] | None = None  # the first non-finite loss since the meter was made
        self.reset()

    def reset(self) -> None:
        self.names: dict[str, None] = {}  # names seen since the reset, in order of appearance
        self._pending: list[tuple[int, tuple[str, ...], torch.Tensor]] = []  # (step, names, values)
        self._blocks: list[tuple[list[int], tuple[str, ...], torch.Tensor]] = []  # stacked, not yet read
        self._sums: dict[str, float] = {}  # what ``check`` has read since the reset
        self.count = 0
        self.images = 0
        self.seconds = 0.0
        self.wait = 0.0

    # -- per step: no host read ----------------------------------------------------------------
    def add(self, losses: dict[str, Any], step: int) -> None:
        """Record step ``step``'s (0-based) losses; tensors are detached and copied, never read."""
        keys = tuple(losses)
        for k in keys:
            self.names.setdefault(k, None)
        self.count += 1
        if keys:
            self._pending.append((step, keys, self._vector(losses)))
        if len(self._pending) >= FOLD_EVERY:
            self._fold()

    def time(self, images: int, seconds: float, wait: float) -> None:
        """``seconds``: the step's own time (batch + train_step + any host read at a check point), so
        checkpoints and grids don't count; ``wait``: the part of it spent getting the batch."""
        self.images += images
        self.seconds += seconds
        self.wait += wait

    def _vector(self, losses: dict[str, Any]) -> torch.Tensor:
        tensors = [v for v in losses.values() if torch.is_tensor(v)]
        if self.device is None:
            self.device = tensors[0].device if tensors else torch.device("cpu")
            self.dtype = torch.float32 if self.device.type == "mps" else torch.float64
        if not tensors:  # the older contract: plain floats (already on the host)
            return torch.tensor([float(v) for v in losses.values()], dtype=self.dtype)
        device = tensors[0].device
        parts = []
        for k, v in losses.items():
            if torch.is_tensor(v):
                if v.numel() != 1:
                    raise TrainingError(f"train_step returned loss {k!r} of shape {tuple(v.shape)}, not a scalar")
                v = v.detach()
                parts.append(v if v.dim() == 0 and v.device == device else v.reshape(()).to(device))
            else:  # a fill on the device, not a host-to-device copy (which would wait for the device)
                parts.append(torch.full((), float(v), device=device))
        return torch.stack(parts)  # a copy: a loss tensor the model later changes in place is not followed

    def _fold(self) -> None:
        """Stack runs of pending steps with the same names into one matrix each (on the device)."""
        pending, self._pending = self._pending, []
        i = 0
        while i < len(pending):
            j = i
            while j < len(pending) and pending[j][1] == pending[i][1]:
                j += 1
            rows = torch.stack([v.to(self.device, self.dtype) for _, _, v in pending[i:j]])
            self._blocks.append(([step for step, _, _ in pending[i:j]], pending[i][1], rows))
            i = j

    # -- at check points: one host read ----------------------------------------------------------
    def check(self) -> tuple[int, str, float] | None:
        """Read the losses since the last check in one transfer and add them to the sums; the first
        non-finite loss since the meter was made as (0-based step, name, value), or None."""
        self._fold()
        blocks, self._blocks = self._blocks, []
        if blocks:
            values = torch.cat([rows.flatten() for _, _, rows in blocks]).tolist()
            at = 0
            for steps, names, _ in blocks:
                for step in steps:
                    for name in names:  # row-major: the first step, then the model's order
                        v = values[at]
                        at += 1
                        self._sums[name] = self._sums.get(name, 0.0) + v
                        if self._bad is None and not math.isfinite(v):
                            self._bad = (step, name, v)
        return self._bad

    def means(self) -> dict[str, float]:
        """Each loss's mean over the steps since the reset (reads the device if not read since)."""
        if self._pending or self._blocks:
            self.check()
        return {k: self._sums.get(k, 0.0) / max(self.count, 1) for k in self.names}

    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def wait_fraction(self) -> float:
        return self.wait / self.seconds if self.seconds > 0 else 0.0


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in losses.items())
