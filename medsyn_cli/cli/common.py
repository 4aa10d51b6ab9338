"""Shared CLI plumbing: stderr console, progress only on a terminal, JSON output, stdin paths."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from medsyn_cli.errors import InputError

#: Everything that is not a result goes to stderr.
err_console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def log(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def echo_json(obj: Any) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def show_progress() -> bool:
    return sys.stderr.isatty() and os.environ.get("MEDSYN_PROGRESS", "1") != "0"


class _NullProgress:
    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def advance(self, *args, **kwargs) -> None:
        pass


@contextlib.contextmanager
def progress() -> Iterator[Any]:
    """A rich progress bar on stderr when stderr is a terminal; a silent stand-in otherwise."""
    if not show_progress():
        yield _NullProgress()
        return
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        transient=False,
    )
    with bar:
        yield bar


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Replace ``-`` with the paths read from stdin: one per line, or medsyn's JSON lines
    (:mod:`medsyn_cli.stdin_paths`)."""
    from medsyn_cli.stdin_paths import paths_from_lines

    out: list[str] = []
    for item in inputs:
        if item == "-":
            out.extend(paths_from_lines(sys.stdin.read().splitlines()))
        else:
            out.append(item)
    return out


def existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or directory", path=p)
    return p
