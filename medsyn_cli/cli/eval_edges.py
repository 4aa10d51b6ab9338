"""``medsyn eval edges REAL FAKE``: compare the edge statistics of two image sets.

The built-in metrics plugin (``medsyn_cli.metrics.builtin``) registers ``eval_edges`` as the
``edges`` metric's command; ``register(eval_app)`` adds it to another group (tests use it).
"""

from __future__ import annotations

from typing import Optional

import typer

from medsyn_cli.cli.common import echo_json, expand_inputs, log

#: (label, key) rows of the table, in order; keys index a set's statistics.
ROWS = (
    ("edge density", "edge_density"),
    ("background edge density", "background_edge_density"),
    ("background gradient mean", "background_gradient_mean"),
    ("components / image", "components_per_image"),
    ("small components / image", "small_components_per_image"),
    ("small component fraction", "small_component_fraction"),
    ("gradient mean", ("gradient", "mean")),
    ("gradient p50", ("gradient", "p50")),
    ("gradient p90", ("gradient", "p90")),
    ("gradient p99", ("gradient", "p99")),
)


def _value(stats: dict, key) -> float | None:
    return stats[key[0]][key[1]] if isinstance(key, tuple) else stats[key]


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def eval_edges(
    real: str = typer.Argument(..., help="Real images: a folder, an image, or `-` for paths on stdin."),
    fake: str = typer.Argument(..., help="Generated images: a folder, an image, or `-` for paths on stdin."),
    method: str = typer.Option("sobel", "--method", "-m", help="sobel, canny or laplacian."),
    sigma: Optional[float] = typer.Option(
        None, "--sigma", help="Gaussian sigma in pixels (default: 0 for sobel, 1 for canny and laplacian)."),
    res: Optional[int] = typer.Option(
        None, "--res", help="Compare at RES x RES (default: the size of the first FAKE image)."),
    min_size: int = typer.Option(8, "--min-size", help="Edge components under this many pixels count as small."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compare edge density, background noise, broken lines and gradient magnitudes of REAL and FAKE.

    Both sets are read as grey images and brought to RES x RES as training data is (aspect kept,
    padded with black). Edge pixels are the canny map, or for sobel/laplacian the response above
    Otsu's threshold of the REAL set (used for both). Measures (see docs/edges.md): edge density;
    background edge density and mean gradient (inside the dark surroundings of the body, 'noisy
    background'); connected edge
    components per image and how many are small ('broken lines'); the Sobel gradient-magnitude
    distribution (mean, percentiles) and its Wasserstein, Jensen-Shannon and KL distances.

    Examples:

        medsyn eval edges ./covid-ct fake/
        medsyn eval edges ./covid-ct fake/ --method canny --json | jq .distance
        medsyn sample runs/ct-64 --n 500 --out fake/ | medsyn eval edges ./covid-ct -
    """
    from medsyn_cli import edges as E
    from medsyn_cli.errors import InputError

    E.check_method(method, sigma)
    if real == "-" and fake == "-":
        raise InputError("only one of REAL and FAKE can be read from stdin")
    if min_size < 1:
        raise InputError(f"--min-size must be at least 1, not {min_size}")
    real_files = [p for p, _ in E.collect_inputs(expand_inputs([real]), volumes=False)]
    fake_files = [p for p, _ in E.collect_inputs(expand_inputs([fake]), volumes=False)]
    if not real_files or not fake_files:
        raise InputError("no images to compare", hint="REAL and FAKE must each name at least one image")
    if res is None:
        res = E.image_size(fake_files[0])
        log(f"medsyn eval edges: comparing at {res}x{res} (the first FAKE image's size; set --res to change)")
    if res < 8:
        raise InputError(f"--res must be at least 8, not {res}")
    stats = E.edge_statistics(E.load_grey_set(real_files, res), E.load_grey_set(fake_files, res),
                              method=method, sigma=sigma, min_size=min_size)
    stats["real"]["path"], stats["fake"]["path"] = real, fake
    if as_json:
        echo_json(stats)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("measure", "real", "fake"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row("images", str(stats["real"]["n_images"]), str(stats["fake"]["n_images"]))
    for label, key in ROWS:
        table.add_row(label, _fmt(_value(stats["real"], key)), _fmt(_value(stats["fake"], key)))
    for name, value in stats["distance"].items():
        table.add_row(f"gradient {name.replace('_', ' ')}", "", _fmt(value))
    Console(width=120).print(table)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("edges", context_settings={"help_option_names": ["-h", "--help"]},
                     no_args_is_help=True)(eval_edges)
