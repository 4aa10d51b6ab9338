"""The file-format registry that ``register_formats`` fills: suffix or sniffing -> reader (and writer).

Every command asks this registry what a file is: training data (``data.readers.file_kind``), eval
inputs (``metrics.inputs``), translate and edges. The built-in formats (images, NIfTI, DICOM,
NumPy) are registered by the default plugin :mod:`medsyn_cli.data.builtin_formats`, exactly as a
third-party format is. A format's ``read(path)`` returns every 2D image the file holds as
``(label, float32 (C, H, W) in [-1, 1], intensity mapping)``; commands that read a built-in format
their own way (eval reads images as pytorch-fid does) keep doing so and use ``read`` for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: (label, image (C, H, W) float32 in [-1, 1], intensity mapping) per 2D image of a file.
Plane = tuple[str, np.ndarray, dict[str, Any]]


@dataclass(frozen=True)
class FileFormat:
    """A registered file format. ``name`` is the kind the commands see (``image``, ``nifti``, ...)."""

    name: str
    suffixes: tuple[str, ...]
    summary: str
    read: Callable[[Path], list[Plane]]
    #: For files whose name does not say (DICOM without a suffix): True when the content is this format.
    sniff: Callable[[Path], bool] | None = None
    #: ``write(image (C, H, W) in [-1, 1], path)`` where the format can be written.
    write: Callable[[np.ndarray, Path], None] | None = None
    plugin: str = ""

    def __post_init__(self):
        bad = [s for s in self.suffixes if not s.startswith(".") or s != s.lower()]
        if bad:
            raise ValueError(f"format {self.name!r}: suffixes must be lower-case and start with '.', not {bad}")


_cache: tuple[tuple, dict[str, FileFormat]] | None = None


def _accept(fmt: FileFormat) -> FileFormat:
    if not isinstance(fmt, FileFormat):
        raise TypeError(f"register_formats: expected a FileFormat, got {type(fmt).__name__}")
    return fmt


def all_formats() -> dict[str, FileFormat]:
    """Every registered format by name, the built-ins first. Cached until the set of plugins changes,
    because file listings ask once per file."""
    global _cache
    from medsyn_cli.plugins import collect_named, load_plugins

    key = tuple(name for name, _ in load_plugins().list_name_plugin())
    if _cache is not None and _cache[0] == key:
        return _cache[1]
    found = collect_named("register_formats", _accept, "format")
    _cache = (key, found)
    return found


def suffixes(*names: str) -> tuple[str, ...]:
    """The suffixes of the named formats (every format when none is named)."""
    formats = all_formats()
    return tuple(s for n, f in formats.items() if not names or n in names for s in f.suffixes)


def format_of(path: str | Path) -> FileFormat | None:
    """The format of ``path`` by its suffix (the longest that matches), else by sniffing a file whose
    name has no suffix; None for hidden files and files no format claims."""
    p = Path(path)
    name = p.name.lower()
    if name.startswith("."):
        return None
    formats = list(all_formats().values())
    matches = [(len(s), f) for f in formats for s in f.suffixes if name.endswith(s)]
    if matches:
        return max(matches, key=lambda m: m[0])[1]
    if "." not in name:
        for f in formats:
            if f.sniff is not None and f.sniff(p):
                return f
    return None


def kind_of(path: str | Path) -> str | None:
    """The name of the format of ``path`` (``image``, ``nifti``, ``dicom``, ``array``, a plugin's), or None."""
    fmt = format_of(path)
    return None if fmt is None else fmt.name


def describe() -> str:
    """What medsyn reads, for error messages: each registered format's summary."""
    return ", ".join(f.summary for f in all_formats().values())
