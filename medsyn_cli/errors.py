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


#: errno -> (what to say, exit code): a bad place to write is bad input (2), a full disk a runtime failure (1).
_OS_ERRORS = {
    "ENOSPC": ("no space left on device", 1),
    "EDQUOT": ("disk quota exceeded", 1),
    "EIO": ("input/output error", 1),
    "EROFS": ("read-only file system", 2),
    "EACCES": ("permission denied", 2),
    "EPERM": ("operation not permitted", 2),
    "EBUSY": ("busy (in use, or a mount point or the current folder)", 2),
    "ENOENT": ("no such file or directory", 2),
    "ENOTDIR": ("not a folder", 2),
    "EISDIR": ("is a folder", 2),
    "ENAMETOOLONG": ("file name too long", 2),
    "ENOTEMPTY": ("folder not empty", 2),
    "EEXIST": ("already exists", 2),
}


def from_os_error(exc: OSError, *, hint: str | None = None) -> MedsynError:
    """One line for an OSError: the path it names and what went wrong, with the right exit code."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    message, code = _OS_ERRORS.get(name, (exc.strerror or str(exc) or type(exc).__name__, 1))
    path = getattr(exc, "filename2", None) or exc.filename  # a rename: name its destination, the output
    cls = InputError if code == 2 else MedsynError
    return cls(message.lower() if message else "operating system error", path=path, hint=hint)
