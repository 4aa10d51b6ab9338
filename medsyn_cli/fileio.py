"""Atomic writes: outputs appear complete or not at all, and inputs are never overwritten."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from medsyn_cli.errors import InputError


@contextlib.contextmanager
def atomic_path(target: str | Path, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    if target.exists() and not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_output(target: str | Path, force: bool) -> Path:
    """Refuse an existing output unless ``force``; the message names the file."""
    target = Path(target)
    if target.exists() and not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    return target
