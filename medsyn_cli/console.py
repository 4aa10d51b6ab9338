"""The console: logs and progress on stderr, JSON results on stdout.

The bottom floor: every layer (cli, training, metrics, report, data) may use it; it imports nothing from medsyn.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
