"""``medsyn data``: inspect inputs, generate phantoms, prepare BraTS cases and volume slices."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medsyn_cli.cli.common import echo_json, log

CONTEXT = {"help_option_names": ["-h", "--help"]}

data_app = typer.Typer(help="Inspect datasets, generate phantoms, prepare BraTS slices, export prepared sets.\n\nExamples:\n\n"
                            "    medsyn data info scans/\n"
                            "    medsyn data phantom --kind brain --n 64 --out phantoms/brain\n"
                            "    medsyn data prepare brats cases/ --modality t1ce --out brats-t1ce\n"
                            "    medsyn data export scans/ --res 64 --out scans64/\n",
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
    modality: str = typer.Option("auto", "--modality",
                                 help="Modality for BraTS-style cases (auto: t1ce if every case has it)."),
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
    with atomic_dir(out, force=force, command="data phantom") as tmp:
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
    cases: Path = typer.Argument(..., help="Folder of BraTS cases (<case>_<modality>.nii.gz + <case>_seg.nii.gz, "
                                 "or <case>/FLAIR.nii.gz, T1.nii.gz + GT_W.nii.gz)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
    modality: str = typer.Option("t1ce", "--modality",
                                 help="t1, t1ce (the SAG-GAN paper's), t2, flair, or auto (t1ce if present)."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=1.0,
                                        help="Share of the cases held out for testing (the paper's 20 %)."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", min=0.0, max=1.0,
                                       help="Share of the cases held out for validation (the paper's 10 %)."),
    case_fraction: float = typer.Option(1.0, "--case-fraction", min=0.0, max=1.0,
                                        help="Share of the training cases kept (0.125: the paper's BraTS_S)."),
    mask_fraction: float = typer.Option(1.0, "--mask-fraction",
                                        help="Share of the training tumor slices that keep their mask."),
    res: int = typer.Option(0, "--res", min=0, help="Square output size; 0 keeps the native slice size (240)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the case split and of the mask choice."),
    min_tumor_area: int = typer.Option(100, "--min-tumor-area", min=1, help="Pixels of tumor for a tumor slice."),
    min_brain_area: int = typer.Option(1000, "--min-brain-area", min=0, help="Pixels of brain to keep a slice."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (folder, counts) instead of the folder."),
) -> None:
    """Split BraTS cases into training, validation and test cases, and their axial slices into
    tumor-free (normal/) and tumor (tumor/) slices with whole-tumor masks (masks/).

    The split is by case (seeded): --test-fraction and --val-fraction of the cases go to OUT/test/ and
    OUT/val/, the training cases to OUT/normal/, OUT/tumor/ and OUT/masks/ (what `medsyn train` reads);
    --case-fraction keeps a share of the training cases. OUT/split.json records the modality and which
    cases went where (`medsyn eval classify` reads it). Intensities are normalised per volume (0.5/99.5
    percentiles within the brain), each mapping written to OUT/intensity.json. Slices with less brain
    than --min-brain-area are dropped; slices with some tumor but less than --min-tumor-area are
    ambiguous and dropped from both sets. Prints OUT.

    Examples:

        medsyn data prepare brats ../shared/data/brats2018-sample --modality t1ce --out brats-t1ce

        medsyn data prepare brats BraTS2019/ --out brats-s --case-fraction 0.125

        medsyn data prepare brats ../shared/data/brats2018-flair-t1 --modality flair --out brats-flair

        medsyn data prepare brats cases/ --out brats-s --case-fraction 0.125 --res 128 --json
    """
    from medsyn_cli.data import brats
    from medsyn_cli.data.writing import atomic_dir
    from medsyn_cli.errors import InputError
    from medsyn_cli.outputs import check_owned_folder

    if not cases.exists():
        raise InputError("no such file or directory", path=cases)
    if modality != "auto" and modality not in brats.MODALITIES:
        raise InputError(f"unknown modality {modality!r}", hint=f"use one of {', '.join(brats.MODALITIES)} or auto")
    check_owned_folder(out, force=force, command="data prepare brats")  # before the volumes are read
    prep = brats.prepare(cases, modality, mask_fraction=mask_fraction, seed=seed, test_fraction=test_fraction,
                         val_fraction=val_fraction, case_fraction=case_fraction,
                         min_tumor_area=min_tumor_area, min_brain_area=min_brain_area)
    if not prep.normal and not prep.tumor:
        raise InputError("no slice passed the thresholds", path=cases,
                         hint="lower --min-brain-area / --min-tumor-area")
    settings = {"modality": prep.modality, "test_fraction": test_fraction, "val_fraction": val_fraction,
                "case_fraction": case_fraction, "mask_fraction": mask_fraction, "res": res, "seed": seed,
                "min_tumor_area": min_tumor_area, "min_brain_area": min_brain_area}
    with atomic_dir(out, force=force, command="data prepare brats") as tmp:
        counts = brats.write(prep, tmp, res=res, settings=settings)
    split = {part: len(prep.split[part]) for part in ("train", "val", "test", "unused")}
    log(f"{prep.modality}: cases {split['train']} train, {split['val']} val, {split['test']} test"
        + (f", {split['unused']} training case(s) left out" if split["unused"] else ""))
    log(f"training: {counts['normal']} normal, {counts['tumor']} tumor slices ({counts['masks']} with masks); "
        f"val {counts['val']['normal']}+{counts['val']['tumor']}, test {counts['test']['normal']}+"
        f"{counts['test']['tumor']} normal+tumor; dropped {counts['dropped_small_brain']} with little brain, "
        f"{counts['dropped_ambiguous_tumor']} ambiguous")
    if as_json:
        echo_json({"out": str(out), "modality": prep.modality, "split": split, "counts": counts, "settings": settings})
        return
    typer.echo(str(out))


@data_app.command("export")
def export(
    path: str = typer.Argument(..., help="What `medsyn train --data` would read: a folder, a file or phantom:ct."),
    res: int = typer.Option(..., "--res", "-r", min=1, help="Square size in pixels."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
    fit: str = typer.Option("resize", "--fit", help="pad (aspect kept), resize, or crop (centre square)."),
    channels: int = typer.Option(1, "--channels", help="1 (grey) or 3."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the folder."),
) -> None:
    """Write the prepared dataset as 8-bit PNGs: the images training sees and FID compares against.

    The images go through the training pipeline (the same fit, intensity mapping and channels) and
    are written as `medsyn sample` writes its PNGs, so another FID tool given OUT computes the FID
    `medsyn eval fid PATH FAKE` computes. OUT/export.json lists each image's source.

    Examples:

        medsyn data export ../shared/data/covid-ct-noncovid --res 64 --out covid64/

        python -m pytorch_fid covid64/ fake/      # the same FID as medsyn eval fid

        medsyn data export ./scans --res 128 --fit pad --out scans128/ --json
    """
    import json

    from medsyn_cli.data import load_dataset
    from medsyn_cli.data.pixels import to_uint8
    from medsyn_cli.data.writing import atomic_dir
    from medsyn_cli.errors import InputError
    from medsyn_cli.outputs import check_owned_folder

    if fit not in ("pad", "resize", "crop"):
        raise InputError(f"unknown --fit {fit!r}", hint="use pad, resize or crop")
    check_owned_folder(out, force=force, command="data export")  # before the images are read
    data = load_dataset(path, res=res, channels=channels, fit=fit)
    images = to_uint8(data.images)
    from PIL import Image

    names = [f"{i:05d}.png" for i in range(len(images))]
    with atomic_dir(out, force=force, command="data export") as tmp:
        for name, img in zip(names, images):
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp / name, format="PNG")
        doc = {"source": str(path), "res": res, "fit": fit, "channels": channels, "count": len(names),
               "intensity": data.intensity, "images": dict(zip(names, data.sources))}
        (tmp / "export.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    log(f"wrote {len(names)} images at {channels}x{res}x{res} (fit {fit}) to {out}")
    if as_json:
        echo_json({"out": str(out), "count": len(names), "res": res, "fit": fit, "channels": channels})
    else:
        typer.echo(str(out))

@prepare_app.command("slices")
def prepare_slices(
    source: Path = typer.Argument(..., help="A NIfTI volume or a folder searched recursively for them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (must not exist unless --force)."),
    modality: Optional[str] = typer.Option(None, "--modality",
                                           help="Use files named *_NAME.nii[.gz] or NAME.nii[.gz] only (flair, t1, 4d)."),
    frames: str = typer.Option("ed,es", "--frames", help="4D cine volumes: ed, es (from Info.cfg), all, or 1-based numbers."),
    axis: str = typer.Option("axial", "--axis", help="3D volumes: axial, coronal or sagittal."),
    min_foreground: float = typer.Option(0.02, "--min-foreground",
                                         help="Keep a slice when this share of its pixels is above the volume's minimum."),
    res: int = typer.Option(0, "--res", min=0, help="Square output size (aspect kept, padded); 0 keeps the native size."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
) -> None:
    """Write the 2D slices of NIfTI volumes as 8-bit PNGs in OUT, for unconditional training.

    3D volumes are sliced along --axis; 4D cine volumes (ACDC) give the acquired slices of the
    --frames frames. Intensities are mapped per volume (0.5/99.5 percentiles of the foreground for
    MR) and recorded in OUT/intensity.json. Prints OUT.

    Examples:

        medsyn data prepare slices BraTS2018/ --modality flair --out brats-flair

        medsyn data prepare slices ACDC/training --modality 4d --frames ed,es --out acdc
    """
    from medsyn_cli.data import slices
    from medsyn_cli.data.writing import atomic_dir
    from medsyn_cli.errors import InputError
    from medsyn_cli.outputs import check_owned_folder

    check_owned_folder(out, force=force, command="data prepare slices")  # before the volumes are read
    prep = slices.prepare(source, modality=modality, frames=frames, axis=axis, min_foreground=min_foreground)
    if not prep.images:
        raise InputError("no slice passed --min-foreground", path=source, hint="lower --min-foreground")
    settings = {"modality": modality, "frames": frames, "axis": axis, "min_foreground": min_foreground, "res": res}
    with atomic_dir(out, force=force, command="data prepare slices") as tmp:
        counts = slices.write(prep, tmp, res=res, settings=settings)
    log(f"{counts['slices']} slices from {counts['volumes']} volume(s); dropped {counts['dropped']} "
        f"with less than {min_foreground:g} foreground")
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
