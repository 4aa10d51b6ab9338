"""Warnings for the user from any floor (data, training, metrics): one line on stderr, never stdout."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    """``medsyn: warning: MESSAGE`` on stderr (results stay alone on stdout)."""
    print(f"medsyn: warning: {message}".replace("\n", " "), file=sys.stderr, flush=True)
