"""``medsyn data``: inspect inputs, generate phantoms, prepare BraTS cases for translation."""

from __future__ import annotations

from pathlib import Path

import typer

from medsyn_cli.cli.common import echo_json, log

CONTEXT = {"help_option_names": ["-h", "--help"]}

data_app = typer.Typer(help="Inspect datasets, generate phantoms, prepare BraTS slices.\n\nExamples:\n\n"
                            "    medsyn data info scans/\n"
                            "    medsyn data phantom --kind brain --n 64 --out phantoms/brain\n"
                            "    medsyn data prepare brats cases/ --modality t1ce --out brats-t1ce\n",
                       context_settings=CONTEXT, no_args_is_help=True)
prepare_app = typer.Typer(help="Turn raw datasets into training folders.\n\nExamples:\n\n"
                               "    medsyn data prepare brats cases/ --modality flair --out brats-flair --json\n",
                          context_settings=CONTEXT,
                          no_args_is_help=True)
data_app.add_typer(prepare_app, name="prepare")


@data_app.command("info")
def info(
    path: str = typer.Argument(..., help="A file, a folder, a normal/+tumor/ folder, BraTS cases or phantom:ct."),
    axis: str = typer.Option("axial", "--axis", help="Slicing axis for volumes: axial, coronal, sagittal."),
    modality: str = typer.Option("t1ce", "--modality", help="Modality for BraTS-style cases."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a dataset: kind, counts, shapes, dtypes/modes, value range, intensity mapping.

    Every file is decoded, so a corrupt file is found now rather than during training.

    Examples:

        medsyn data info ../shared/data/covid-ct-noncovid

        medsyn data info scan.nii.gz --json | jq .mapping

        medsyn data info phantom:brain
    """
    from medsyn_cli.data.info import as_lines, describe
    from medsyn_cli.data.volumes import check_axis

    result = describe(path, axis=check_axis(axis), modality=modality)
    if as_json:
        echo_json(result)
        return
    for line in as_lines(result):
        typer.echo(line)


@data_app.command("phantom")
def phantom(
    kind: str = typer.Option(..., "--kind", help="brain (with tumors and masks) or ct."),
    n: int = typer.Option(..., "--n", min=1, help="How many slices."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
    res: int = typer.Option(128, "--res", min=8, help="Side of the square slices in pixels."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same images."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the folder."),
) -> None:
    """Write synthetic slices as 8-bit PNGs: brain -> OUT/normal, OUT/tumor, OUT/masks; ct -> OUT/*.png.

    Brain masks carry the tumor image's file name, so OUT is a two-domain dataset for
    `medsyn train sag-gan --data OUT`. Prints the output folder.

    Examples:

        medsyn data phantom --kind brain --n 64 --out phantoms/brain

        medsyn data phantom --kind ct --n 200 --res 64 --seed 1 --out phantoms/ct --json
    """
    from medsyn_cli.data import phantoms
    from medsyn_cli.data.writing import atomic_dir, save_mask, save_png
    from medsyn_cli.errors import InputError

    if kind not in ("brain", "ct"):
        raise InputError(f"unknown phantom kind {kind!r}", hint="use --kind brain or --kind ct")
    with atomic_dir(out, force=force) as tmp:
        if kind == "ct":
            for i, img in enumerate(phantoms.ct(n, res, seed)):
                save_png(img, tmp / f"ct_{i:05d}.png")
        else:
            normal, tumor, masks = phantoms.brain(n, res, seed)
            for name in ("normal", "tumor", "masks"):
                (tmp / name).mkdir()
            for i in range(n):
                save_png(normal[i], tmp / "normal" / f"brain_{i:05d}.png")
                save_png(tumor[i], tmp / "tumor" / f"brain_{i:05d}.png")
                save_mask(masks[i], tmp / "masks" / f"brain_{i:05d}.png")
    log(f"wrote {n} {kind} phantom slice(s) at {res}x{res} (seed {seed})")
    if as_json:
        echo_json({"out": str(out), "kind": kind, "n": n, "res": res, "seed": seed,
                   "folders": ["normal", "tumor", "masks"] if kind == "brain" else []})
        return
    typer.echo(str(out))


@prepare_app.command("brats")
def prepare_brats(
    cases: Path = typer.Argument(..., help="Folder of BraTS-style cases (<case>_<modality>.nii.gz, <case>_seg.nii.gz)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
    modality: str = typer.Option("t1ce", "--modality", help="t1, t1ce (the SAG-GAN paper's), t2 or flair."),
    mask_fraction: float = typer.Option(1.0, "--mask-fraction", help="Share of tumor slices that keep their mask."),
    res: int = typer.Option(0, "--res", min=0, help="Square output size; 0 keeps the native slice size."),
    seed: int = typer.Option(0, "--seed", help="Seed for choosing which tumor slices keep masks."),
    min_tumor_area: int = typer.Option(100, "--min-tumor-area", min=1, help="Pixels of tumor for a tumor slice."),
    min_brain_area: int = typer.Option(1000, "--min-brain-area", min=0, help="Pixels of brain to keep a slice."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (folder, counts) instead of the folder."),
) -> None:
    """Split BraTS volumes into tumor-free (normal/) and tumor (tumor/) axial slices with masks (masks/).

    Intensities are normalised per volume (0.5/99.5 percentiles within the brain) and each mapping is
    written to OUT/intensity.json. Slices with less brain than --min-brain-area are dropped; slices with
    some tumor but less than --min-tumor-area are ambiguous and dropped from both sets. Prints OUT.

    Examples:

        medsyn data prepare brats ../shared/data/brats2018-sample --modality t1ce --out brats-t1ce

        medsyn data prepare brats cases/ --out brats-s --mask-fraction 0.125 --res 128 --json
    """
    from medsyn_cli.data import brats
    from medsyn_cli.data.writing import atomic_dir
    from medsyn_cli.errors import InputError
    from medsyn_cli.fileio import check_output

    if not cases.exists():
        raise InputError("no such file or directory", path=cases)
    check_output(out, force)
    prep = brats.prepare(cases, modality, mask_fraction=mask_fraction, seed=seed,
                         min_tumor_area=min_tumor_area, min_brain_area=min_brain_area)
    if not prep.normal and not prep.tumor:
        raise InputError("no slice passed the thresholds", path=cases,
                         hint="lower --min-brain-area / --min-tumor-area")
    settings = {"modality": modality, "mask_fraction": mask_fraction, "res": res, "seed": seed,
                "min_tumor_area": min_tumor_area, "min_brain_area": min_brain_area}
    with atomic_dir(out, force=force) as tmp:
        counts = brats.write(prep, tmp, res=res, settings=settings)
    log(f"{counts['normal']} normal, {counts['tumor']} tumor slices ({counts['masks']} with masks); dropped "
        f"{counts['dropped_small_brain']} with little brain, {counts['dropped_ambiguous_tumor']} ambiguous")
    if as_json:
        echo_json({"out": str(out), "modality": modality, "counts": counts, "settings": settings})
        return
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
