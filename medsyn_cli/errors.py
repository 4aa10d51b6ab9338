"""User-facing errors: one line on stderr, exit code 2 for bad input, 1 for runtime failures."""

from __future__ import annotations

from pathlib import Path


class MedsynError(Exception):
    """A failure to report in one line. ``exit_code`` 2 means bad usage or bad input."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text.replace("\n", " ")


class InputError(MedsynError):
    """Bad input or bad usage: a missing/corrupt file, an unknown model, an existing output."""

    exit_code = 2


class TrainingError(MedsynError):
    """A runtime failure during training, e.g. the NaN guard stopping a run."""

    exit_code = 1
