"""Atomic writes: outputs appear complete or not at all, and inputs are never overwritten.

A temporary file is ``.NAME.tmp-PID`` beside the target, created with mode 0666 so the user's umask
decides the final permissions (``tempfile.mkstemp`` would make every output 0600). Inside
:func:`staged_outputs` the renames wait until the whole command has succeeded, so a command that
writes several files leaves all of them or none.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Iterator

from medsyn_cli.errors import InputError

_STAGE: contextvars.ContextVar["_Stage | None"] = contextvars.ContextVar("medsyn_stage", default=None)


class _Stage:
    """Finished temporaries waiting for their rename, and the folders made for them."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []
        self.created: list[Path] = []

    def commit(self) -> list[Path]:
        for tmp, target in self.pending:
            os.replace(tmp, target)
        done = [target for _, target in self.pending]
        self.pending.clear()
        return done

    def abort(self) -> None:
        for tmp, _ in self.pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.pending.clear()
        remove_empty(self.created)


@contextlib.contextmanager
def staged_outputs() -> Iterator[_Stage]:
    """Hold back every :func:`atomic_path` rename in the block until it ends without an exception;
    on an exception (SIGTERM/SIGINT included) remove the temporaries and the folders made for them."""
    stage = _Stage()
    token = _STAGE.set(stage)
    try:
        yield stage
        stage.commit()
    except BaseException:
        stage.abort()
        raise
    finally:
        _STAGE.reset(token)


def temp_sibling(target: Path) -> Path:
    """``.NAME.tmp-PID`` beside ``target``: unique per process, recognisable as stale once PID is gone."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"


def followed(target: str | Path) -> Path:
    """Where a symlinked output points (the link is followed, never replaced by the output); else ``target``."""
    p = Path(target)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def make_dirs(folder: Path) -> list[Path]:
    """``mkdir -p`` (the umask decides the mode); returns the folders it created, outermost first."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command created, innermost first, when they are (still) empty."""
    for d in reversed(folders):
        with contextlib.suppress(OSError):
            d.rmdir()


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_temp(target: Path) -> Path:
    tmp = temp_sibling(target)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # this process's own leftover
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


@contextlib.contextmanager
def atomic_path(target: str | Path, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` (where it points, when it is
    a symlink) only on success."""
    target = followed(target)
    if target.exists() and not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    stage = _STAGE.get()
    created = make_dirs(target.parent)
    if stage is not None:
        stage.created.extend(created)
    tmp_path = _new_temp(target)
    kept = False
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # writers that replace the file (safetensors) make it 0600
        if stage is not None:
            stage.pending.append((tmp_path, target))
            kept = True
        else:
            os.replace(tmp_path, target)
    except OSError as exc:
        if not exc.filename:
            exc.filename = str(target)  # writers that got a file object name no file: name the output
        raise
    finally:
        if not kept and tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def check_output(target: str | Path, force: bool) -> Path:
    """Refuse an existing output unless ``force``; the message names the file."""
    target = Path(target)
    if target.exists() and not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    return target
