"""Compare like with like: bring the REAL side to the FAKE side's size through the training pipeline.

A model trained at 64x64 is scored against real images prepared as its training data was prepared
(the same square fit, intensity mapping and channels), not against the native scans: the real
side's preprocessing alone moves FID by more than the gaps papers report. The prepared images are
the uint8 images ``medsyn data export`` writes, so any other FID tool given the export agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medsyn_cli.errors import InputError
from medsyn_cli.metrics.inputs import ArrayPart, FilePart, ImageInput, channel_count, iter_images, load_item
from medsyn_cli.run_config import read_run_config

#: The square fit used without ``--run``: what the unconditional models' recipes train with.
DEFAULT_FIT = "resize"


@dataclass
class Target:
    """What the REAL side is brought to, and why."""

    res: int
    channels: int
    fit: str
    reason: str  # "run RUN" or "FAKE side"

    def as_dict(self) -> dict[str, Any]:
        return {"res": self.res, "channels": self.channels, "fit": self.fit, "from": self.reason}


def _sizes(inp: ImageInput) -> set[tuple[int, int]]:
    """Every (height, width) on a side; image files are sized from their headers, not decoded."""
    from medsyn_cli.data.limits import open_image

    sizes: set[tuple[int, int]] = set()
    for part in inp.parts:
        if isinstance(part, FilePart):
            for f in part.files:
                try:
                    with open_image(f) as img:
                        sizes.add((img.height, img.width))
                except OSError:
                    return set()  # unreadable: the feature pass reports it with its name
        else:
            sizes.add((int(part.images.shape[1]), int(part.images.shape[2])))
    return sizes


def run_target(run: str | Path) -> Target:
    """Resolution, channels and fit recorded in a run directory's ``config.json``."""
    cfg = read_run_config(Path(run))
    if cfg.get("task") != "unconditional":
        raise InputError(f"--run: {cfg.get('model')} is a translation model; its real sides are slices of "
                         "the test cases, prepare them with `medsyn data prepare`", path=run)
    return Target(int(cfg["res"]), int(cfg.get("channels", 1)), cfg.get("data", {}).get("fit", "pad"),
                  f"run {run}")


def fake_target(fake: ImageInput, fit: str | None) -> Target | None:
    """The FAKE side's common square size and channels; None when its images differ in size."""
    sizes = _sizes(fake)
    if len(sizes) != 1:
        return None
    (h, w), = sizes
    if h != w:
        return None
    first = load_item(next(iter_images(fake))[1])
    return Target(h, channel_count(first), fit or DEFAULT_FIT, "FAKE side")


def needs_preparation(real: ImageInput, target: Target) -> bool:
    """REAL's sizes differ from the target's, or REAL is a folder with images in subfolders (training reads
    folders recursively, the plain reader only their top): then REAL is read as training reads it."""
    return _sizes(real) != {(target.res, target.res)} or nested_images(real.spec)


def nested_images(spec: str) -> bool:
    """Whether folder ``spec`` has files below its top level that training would read."""
    from medsyn_cli.data import readers

    root = Path(spec).expanduser()
    if spec == "-" or not root.is_dir():
        return False
    return any(p.parent != root for p in readers.list_inputs(root))


def prepare_real(spec: str, target: Target, stdin_lines: list[str] | None = None) -> ImageInput:
    """REAL (a folder, file, or ``-`` list) loaded as training loads data, as uint8 images in memory.

    Folders are read recursively, as ``medsyn train --data`` reads them; the dataset cache makes a
    second evaluation against the same folder start at once.
    """
    from medsyn_cli.data import load_dataset
    from medsyn_cli.data.pixels import to_uint8

    if spec == "-":
        paths = [ln.strip() for ln in (stdin_lines or []) if ln.strip()]
    else:
        paths = [spec]
    parts = []
    for p in paths:
        data = load_dataset(Path(p).expanduser(), res=target.res, channels=target.channels, fit=target.fit,
                            task="unconditional", use_cache=spec != "-")
        parts.append(ArrayPart(to_uint8(data.images), str(p)))
    inp = ImageInput(spec=spec, parts=parts, kinds={"prepared"})
    if len(inp) == 0:
        raise InputError("REAL side is empty: no images found", path=spec)
    return inp
