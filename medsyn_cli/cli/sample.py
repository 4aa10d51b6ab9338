"""``medsyn sample``: draw images from a trained unconditional model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from medsyn_cli.errors import InputError

CONTEXT = {"help_option_names": ["-h", "--help"]}
FORMATS = ("png", "npy", "nii")
SUFFIX = {"png": ".png", "npy": ".npy", "nii": ".nii.gz"}


def sample(
    source: str = typer.Argument(..., metavar="RUN_OR_CHECKPOINT",
                                 help="A run directory, a .pt checkpoint or a .safetensors export."),
    n: str = typer.Option("64", "--n", "-n",
                          help="How many images, or auto: as many as the run's training images (the papers' "
                               "equal-count FID protocol)."),
    weights: str = typer.Option("last", "--weights", "-w",
                                help="last (weights.safetensors), best (best.safetensors: lowest FID of "
                                     "--eval-every) or live (the last step's weights without the EMA, "
                                     "from checkpoints/latest.pt) of a run directory."),
    out: str = typer.Option(..., "--out", "-o", help="Output directory (created; must not exist without --force)."),
    fmt: str = typer.Option("png", "--format", "-f",
                            help="png (8-bit grey), npy (C,H,W float32 in [-1,1]) or nii (one-slice float32 volume in [-1,1])."),
    seed: int = typer.Option(0, "--seed", help="Same seed, batch size and device: same images."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images generated per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N. [default: auto]"),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp",
                                       help="Run the generator under bf16 autocast (outputs are float32 either way). "
                                            "[default: auto: on for CUDA and for CPUs with native bf16 "
                                            "(avx512_bf16, AMX), off elsewhere, as training]"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per file instead of paths."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
) -> None:
    """Sample N images from a trained unconditional model; prints one path per line.

    The files appear all at once: they are written into a temporary directory beside --out, which
    is renamed to --out at the end. Images come from the EMA weights when the run kept an EMA.
    The generator runs under bf16 autocast where the device computes bf16 natively (--no-amp:
    float32; the images then match a float32 run's bit for bit).

    Examples:

        medsyn sample runs/dcgan64 --n 500 --out fake/
        medsyn sample runs/dcgan64/weights.safetensors --n 16 --out fake-npy/ --format npy --json
        medsyn sample runs/dcgan64 --n 500 --out fake/ | medsyn eval fid ./covid-ct -
        medsyn sample runs/hagan64 --n auto --weights best --out fake/
    """
    from medsyn_cli.cli.common import echo_json, log, progress
    from medsyn_cli.config import setting

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    count = auto_count(source) if str(n).strip().lower() == "auto" else _count(str(n))
    if count < 1 or batch_size < 1:
        raise InputError("--n and --batch-size must be at least 1")
    n = count
    target = Path(out)
    from medsyn_cli.outputs import check_owned_folder

    check_owned_folder(target, force=force, command="sample")  # before the model is loaded
    device_name = setting("device", device, "auto", section="sample")
    from medsyn_cli.training.plan_values import amp_mode

    amp = setting("amp", amp, None, cast=amp_mode, section="sample", check=amp_mode)

    from medsyn_cli.training.checkpoint import load_for_inference

    model, meta = load_for_inference(source, device=device_name, weights=weights, amp=amp)
    if meta["task"] != "unconditional":
        raise InputError(f"{meta['model']} is a translation model; it translates images instead of sampling",
                         path=source, hint="use `medsyn translate`")

    files = write_samples(model, target, n=n, fmt=fmt, seed=seed, batch_size=batch_size, force=force,
                          progress=progress)
    precision = "bf16 autocast" if meta["amp"] else "fp32"
    log(f"{n} images from {meta['model']} (step {meta['step']}, {precision}: {meta['amp_reason']}) in {target}")
    for i, path in enumerate(files):
        if as_json:
            echo_json({"path": str(path), "index": i, "format": fmt, "model": meta["model"], "step": meta["step"],
                       "seed": seed, "source": meta["source"], "amp": meta["amp"]})
        else:
            typer.echo(str(path))


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--n {text!r}: expected a number of images or auto") from None


def auto_count(source: str) -> int:
    """``--n auto``: how many images the run trained on (its config.json beside or above ``source``)."""
    import json

    p = Path(source)
    run = p if p.is_dir() else (p.parent.parent if p.parent.name == "checkpoints" else p.parent)
    try:
        count = json.loads((run / "config.json").read_text())["data"]["count"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError("--n auto needs the run's config.json (how many training images it had)", path=source,
                         hint="pass a run directory, or give --n a number") from None
    if isinstance(count, dict):  # a translation run: the tumor domain is what FID compares with
        count = count.get("tumor", 0)
    return int(count)


def write_samples(model, target: Path, *, n: int, fmt: str, seed: int, batch_size: int, force: bool,
                  progress) -> list[Path]:
    """Generate and write ``n`` images into a temporary folder, then rename it onto ``target``
    (under a lock on ``target``; nothing is left behind on an error or a signal)."""
    import torch

    from medsyn_cli.outputs import owned_folder

    names = [f"sample_{i:05d}{SUFFIX[fmt]}" for i in range(n)]
    with owned_folder(target, force=force, command="sample") as tmp:
        generator = torch.Generator().manual_seed(seed)
        done = 0
        with progress() as bar:
            task = bar.add_task("sample", total=n, info="")
            while done < n:
                b = min(batch_size, n - done)
                images = model.sample(b, generator=generator).detach().float().cpu().clamp(-1, 1)
                for j in range(b):
                    _write_one(images[j], tmp / names[done + j], fmt)
                done += b
                bar.update(task, completed=done)
    return [target / name for name in names]


def _write_one(image, path: Path, fmt: str) -> None:
    """One image (C, H, W) in [-1, 1]."""
    import numpy as np

    if fmt == "png":
        from PIL import Image

        from medsyn_cli.data.pixels import to_uint8

        arr = to_uint8(image[None])[0]
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path, format="PNG")
    elif fmt == "npy":
        np.save(path, image.numpy().astype(np.float32))
    else:
        import nibabel as nib

        from medsyn_cli.data.volumes import assemble_volume

        # A one-slice axial volume with an identity affine, laid out as medsyn's NIfTI reader slices
        # volumes (so reading it back gives the image upright); colour images get a 4th axis.
        arr = image.numpy().astype(np.float32)
        channels = [assemble_volume([plane], "axial", None) for plane in arr]
        vol = channels[0] if len(channels) == 1 else np.stack(channels, axis=-1)
        nib.save(nib.Nifti1Image(np.ascontiguousarray(vol, dtype=np.float32), np.eye(4)), str(path))


def register(app: typer.Typer) -> None:
    app.command("sample", context_settings=CONTEXT, no_args_is_help=True)(sample)
