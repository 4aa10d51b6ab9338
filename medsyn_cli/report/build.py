"""Write the report of a run: read it, build the sections, write one HTML file atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsyn_cli.errors import InputError
from medsyn_cli.fileio import atomic_path
from medsyn_cli.report.html import page
from medsyn_cli.report.run import open_run
from medsyn_cli.report.sections import Options, all_sections, header

DEFAULT_NAME = "report.html"


@dataclass
class ReportResult:
    path: Path
    bytes: int
    sections: list[str]
    images: int


def default_output(run_dir: Path) -> Path:
    return run_dir / DEFAULT_NAME


def build_report(run_dir: str | Path, out: str | Path | None = None, *, force: bool = False,
                 options: Options | None = None) -> ReportResult:
    """Write the report of ``run_dir`` to ``out`` (default RUN/report.html, always refreshed).

    An explicit ``out`` that exists is replaced only with ``force``; the default file belongs to the
    run, like ``loss.png``, and is rewritten each time so a running training can be watched.
    """
    run = open_run(run_dir)
    target = Path(out) if out is not None else default_output(run.dir)
    if out is not None and target.exists() and not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    if target.is_dir():
        raise InputError("output is a directory; give a file name", path=target)
    sections = all_sections(run, options or Options())
    text = page(f"medsyn report: {run.model} {run.name}", header(run), sections)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return ReportResult(path=target, bytes=target.stat().st_size, sections=[s[0] for s in sections],
                        images=text.count("<img "))
