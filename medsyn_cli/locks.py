"""One process per output: an OS lock (``.NAME.lock`` beside the target, holding the PID, host and
command) taken for the whole of a command that writes there; the kernel drops it when the process dies."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from medsyn_cli.errors import InputError
from medsyn_cli.fileio import followed, make_dirs, remove_empty


class OutputInUse(InputError):
    """Another process holds the output's lock."""


def lock_path(target: Path) -> Path:
    target = Path(os.path.abspath(followed(target)))  # "." and ".." have a name only once resolved
    return target.parent / f".{target.name}.lock"


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']} on {info['host']} (`medsyn {info.get('command', '?')}` since {info.get('since', '?')})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def check_unlocked(target: Path) -> None:
    """Refuse early when another process holds ``target``'s lock (the real lock is taken later)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the lock itself still guards
        return
    try:
        fd = os.open(lock_path(target), os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise OutputInUse(f"in use by {_holder(os.pread(fd, 4096, 0).decode(errors='replace'))}", path=target,
                         hint="wait for it to finish, or choose another --out") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(target: Path, command: str) -> Iterator[None]:
    """Hold an OS lock on ``target`` (``.NAME.lock`` beside it, holding the PID and host) for the block.

    The kernel drops the lock when the process dies, so a crash never leaves ``target`` locked; the
    lock file is removed on release (a stale one is simply taken over).
    """
    shown = target  # messages name the path as the user gave it
    target = Path(os.path.abspath(target))
    created = make_dirs(target.parent)
    path = lock_path(target)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(path), timeout=0):
                yield
        except Timeout:
            raise OutputInUse("in use by another process", path=shown, hint="wait for it to finish") from None
        return
    fd = None
    try:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0).decode(errors="replace")
                os.close(fd)
                fd = None
                raise OutputInUse(f"in use by {_holder(text)}", path=shown,
                                 hint="wait for it to finish, or choose another --out") from None
            try:  # the file may have been removed by a holder releasing just now: lock the current one
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            fd = None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
        remove_empty(created)
