"""``medsyn edges``: edge maps of images (PNG out) and NIfTI volumes (NIfTI out, slice by slice)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medsyn_cli.cli.common import echo_json, expand_inputs, log, progress


def edges(
    inputs: list[str] = typer.Argument(..., help="Images, NIfTI volumes or folders; `-` reads paths from stdin."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created if missing)."),
    method: str = typer.Option("sobel", "--method", "-m", help="sobel, canny or laplacian."),
    sigma: Optional[float] = typer.Option(
        None, "--sigma", help="Gaussian sigma in pixels (default: 0 for sobel, 1 for canny and laplacian)."),
    overlay: bool = typer.Option(False, "--overlay", help="Draw the edges in colour over the grey image."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per output instead of paths."),
) -> None:
    """Write an edge map of every input and print each output path on stdout.

    Images (PNG, JPEG, TIFF) give PNG edge maps, strengths scaled to the image's maximum (canny: 0/255),
    or with --overlay the grey image with its edges in colour. NIfTI volumes give a float32 NIfTI of
    the edge strength, computed axial slice by axial slice on the volume mapped to [0, 1] (0.5-99.5
    percentiles), with the input's shape, affine and a copy of its header. A folder's files are written
    under OUT with their relative paths; names get the method, e.g. scan.png -> scan_sobel.png.

    Examples:

        medsyn edges fake/ --out edges/
        medsyn edges scan.png --method canny --sigma 2 --overlay --out edges/
        medsyn edges brain.nii.gz --method laplacian --out edges/
        medsyn sample runs/ct-64 --n 16 --out fake/ | medsyn edges - --out edges/
        medsyn edges scans/ --out edges/ --json | jq -r .output
    """
    from medsyn_cli import edges as E
    from medsyn_cli.errors import InputError
    from medsyn_cli.fileio import atomic_path, staged_outputs
    from medsyn_cli.outputs import check_out_file, check_out_folder, record_outputs

    sigma = E.check_method(method, sigma)
    check_out_folder(out)
    files = E.collect_inputs(expand_inputs(inputs))
    if not files:
        raise InputError("no inputs", hint="name images, volumes or folders, or pipe paths into `-`")
    targets: dict[Path, Path] = {}
    for path, rel in files:
        target = out / E.output_name(rel, method, overlay)
        if target in targets:
            raise InputError(f"two inputs would write the same output {target}", path=path,
                             hint=f"the other is {targets[target]}; run them separately")
        targets[target] = path
        check_out_file(target, force=force)  # refuse before anything is written
    if overlay and any(E.is_volume(p) for p in targets.values()):
        log("medsyn edges: --overlay applies to images; volumes are written as edge volumes")

    # All outputs or none: every file waits as a temporary until the last one is written.
    with progress() as bar, staged_outputs():
        task = bar.add_task("edges", total=len(targets), info="")
        for target, path in targets.items():
            with atomic_path(target, force=True) as tmp:
                if E.is_volume(path):
                    volume, img = E.read_nifti(path)
                    E.write_nifti_like(E.volume_edges(volume, img.affine, method, sigma), img, target, tmp)
                else:
                    grey = E.read_grey(path)
                    emap = E.edge_map(grey, method, sigma)
                    E.write_png(E.overlay(grey, emap) if overlay else E.edges_to_uint8(emap), tmp)
            bar.advance(task)
    record_outputs(list(targets), "edges")
    for target, path in targets.items():  # only once every file is in place
        if as_json:
            echo_json({"input": str(path), "output": str(target), "method": method, "sigma": sigma,
                       "kind": "volume" if E.is_volume(path) else "image", "overlay": overlay})
        else:
            typer.echo(str(target))


def register(app: typer.Typer) -> None:
    app.command("edges", context_settings={"help_option_names": ["-h", "--help"]},
                no_args_is_help=True)(edges)
