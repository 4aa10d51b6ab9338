"""``medsyn report``: one self-contained HTML page of a run, finished or still training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}


def report(
    run: Path = typer.Argument(..., help="Run directory (the --out of `medsyn train`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write. [default: RUN/report.html]"),
    grids: int = typer.Option(20, "--grids", min=0,
                              help="At most this many sample grids, evenly spaced, the last always kept (0: all)."),
    slices: int = typer.Option(6, "--slices", min=1, help="Translation runs: real slices to translate."),
    device: str = typer.Option("cpu", "--device", help="Where a translation model runs: cpu, auto, cuda or cuda:N."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing --out file."),
    as_json: bool = typer.Option(False, "--json",
                                 help="Print one JSON object (path, bytes, images, sections) instead of the path."),
) -> None:
    """Write one HTML page that shows a run: settings and data, loss curves, FID (when scored),
    sample grids over training, real translations with attention and Dice (translation models),
    and the commands that reproduce it.

    The page needs nothing else: images are embedded, the CSS and the small slider script are
    inline and nothing is fetched, so it can be mailed or put on a shared drive. It works while the
    run is still training; run it again to refresh. Prints the page's path on stdout.

    Examples:

        medsyn report runs/dcgan64
        medsyn report runs/sag-gan-128 --out sag.html --slices 8 --json
    """
    from medsyn_cli.cli.common import echo_json, log
    from medsyn_cli.report.build import build_report
    from medsyn_cli.report.sections import Options

    result = build_report(run, out, force=force, options=Options(max_grids=grids, translate_n=slices, device=device))
    if as_json:
        echo_json({"path": str(result.path), "bytes": result.bytes, "images": result.images,
                   "sections": result.sections})
        return
    log(f"report: {result.bytes / 1e6:.2f} MB, {result.images} images, sections: {', '.join(result.sections)}")
    typer.echo(str(result.path))


def register(app: typer.Typer) -> None:
    app.command("report", context_settings=CONTEXT, no_args_is_help=True)(report)
