"""``medsyn train --tensorboard``: the run's scalars, FID scores and sample grids as TensorBoard
event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN/tensorboard``).

The writer listens to what the trainer records anyway: each ``stats.jsonl`` record (losses,
images/s, learning rates, and ``fid`` when the run scores FID) and each sample grid PNG. It needs
the optional ``tensorboard`` package (``pip install 'medsyn[tensorboard]'``); ``--tensorboard``
without it is refused before training starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from medsyn_cli.errors import InputError
from medsyn_cli.training.checkpoint import preserve_rng

INSTALL = "pip install 'medsyn[tensorboard]'"
DIRNAME = "tensorboard"


def require_tensorboard() -> None:
    """InputError (exit 2) with the pip command when the ``tensorboard`` package is missing."""
    try:
        found = importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # a broken or shadowed install counts as missing
        found = False
    if not found:
        raise InputError("--tensorboard needs the tensorboard package, which is not installed",
                         hint=f"{INSTALL} (or pip install tensorboard)")


class TensorBoardWriter:
    """Scalars from stats records, images from grid files; flushed after each write so a
    TensorBoard watching the run sees it at once and a killed run loses nothing. Every call runs
    under ``preserve_rng``: importing and writing must not move the training RNGs (exact resume)."""

    def __init__(self, log_dir: Path, *, purge_step: int | None = None):
        with preserve_rng():
            from torch.utils.tensorboard import SummaryWriter

            self.log_dir = Path(log_dir)
            # purge_step: TensorBoard hides older events at or after it (what a stopped run logged past
            # the checkpoint it is resumed from).
            self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)

    def on_stats(self, record: dict[str, Any]) -> None:
        with preserve_rng():
            self._scalars(record)

    def _scalars(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        if not isinstance(step, int):
            return
        for name, value in (record.get("losses") or {}).items():
            self.writer.add_scalar(f"loss/{name}", float(value), step)
        for name, value in (record.get("lr") or {}).items():
            self.writer.add_scalar(f"lr/{name}", float(value), step)
        for key in ("images_per_s", "epoch", "fid"):
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar("fid" if key == "fid" else f"train/{key}", float(value), step)
        self.writer.flush()

    def on_grid(self, step: int, path: Path | None) -> None:
        if path is None or not Path(path).is_file():
            return
        with preserve_rng():
            self._image(step, Path(path))

    def _image(self, step: int, path: Path) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            array = np.asarray(im.convert("L") if im.mode in ("L", "I;16", "I") else im.convert("RGB"))
        self.writer.add_image("samples", array, step, dataformats="HW" if array.ndim == 2 else "HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
