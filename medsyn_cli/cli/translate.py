"""``medsyn translate``: grow a tumor into normal scans, or remove one, with a trained model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from medsyn_cli.cli.common import echo_json, existing, expand_inputs, log, progress
from medsyn_cli.errors import InputError

#: The model whose weights are used when --model is not given.
DEFAULT_MODEL = "sag-gan"


def resolve_weights(model: str | None) -> Path:
    """--model, else the default translation weights recorded on this machine."""
    if model:
        return existing(model)
    from medsyn_cli.runs_index import default_for

    found = default_for(DEFAULT_MODEL)
    if found is None:
        raise InputError(
            "no translation weights: pass --model RUN_OR_CHECKPOINT",
            hint=f"train some with `medsyn train {DEFAULT_MODEL} --data DIR`, or choose a run with "
            f"`medsyn weights default {DEFAULT_MODEL} RUN`",
        )
    return found


def load_translator(weights: Path, device: str, res: int | None, channels: int | None, which: str = "last",
                    amp: bool | None = False):
    """The model and its metadata, refused when it cannot translate or is not what was asked for;
    ``amp`` as :func:`~medsyn_cli.training.checkpoint.load_for_inference` takes it (None: auto)."""
    from medsyn_cli.training.checkpoint import load_for_inference
    from medsyn_cli.training.device import resolve_device

    model, meta = load_for_inference(weights, resolve_device(device), weights=which, amp=amp)
    name = meta.get("model", type(model).__name__)
    if getattr(model, "task", None) != "translation":
        raise InputError(f"model {name!r} is unconditional: it samples images, it does not translate them",
                         path=weights, hint="use a cyclegan or sag-gan run; `medsyn sample` for this one")
    if res is not None and model.res != res:
        raise InputError(f"checkpoint is at resolution {model.res}, not the requested {res}", path=weights)
    if channels is not None and model.channels != channels:
        raise InputError(f"checkpoint has {model.channels} channel(s), not the requested {channels}",
                         path=weights)
    return model, meta


def translate(
    inputs: list[str] = typer.Argument(..., metavar="INPUT...",
                                       help="PNG/JPEG images, NIfTI volumes, or folders of them ('-' reads paths from stdin)."),
    to: str = typer.Option(..., "--to", help="Target domain: tumor or normal."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Run folder or checkpoint (default: the sag-gan default weights)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Output file (one input) or folder (several). "
                                       "Default: beside the input, named *_to-tumor / *_to-normal."),
    attention_out: Optional[Path] = typer.Option(None, "--attention-out",
                                                 help="Also write the attention maps here (file or folder)."),
    where: Optional[Path] = typer.Option(None, "--where",
                                         help="A mask of where the change may happen (non-zero = inside): a "
                                              "PNG/JPEG of the image's size or a NIfTI of the volume's shape; "
                                              "with several inputs a folder of masks named as the inputs. "
                                              "Outside it the output is the input."),
    mask_out: Optional[Path] = typer.Option(None, "--mask-out",
                                            help="Also write the mask of what changed (PNG 0/255, or NIfTI "
                                                 "uint8 0/1): a file, or with several inputs a folder of "
                                                 "files named as the outputs."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", min=1, help="Slices per forward pass."),
    volume_index: Optional[int] = typer.Option(None, "--volume-index", min=0,
                                               help="Which volume of a 4D NIfTI to translate."),
    res: Optional[int] = typer.Option(None, "--res", help="Refuse a checkpoint of another resolution."),
    channels: Optional[int] = typer.Option(None, "--channels", help="Refuse a checkpoint of another channel count."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp",
                                       help="Run the generators under bf16 autocast (outputs are float32 either "
                                            "way). [default: auto: on for CUDA and for CPUs with native bf16 "
                                            "(avx512_bf16, AMX), off elsewhere, as training]"),
    which: str = typer.Option("last", "--weights", "-w",
                              help="last (weights.safetensors), best (best.safetensors: lowest FID of "
                                   "--eval-every) or live (checkpoints/latest.pt without an EMA) when "
                                   "--model is a run directory."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per input instead of paths."),
    strict: bool = typer.Option(False, "--strict",
                                help="Refuse inputs whose modality (from the file name) or intensity scale "
                                     "(CT vs MR) differs from the model's training data; default: warn."),
) -> None:
    """Translate images or volumes to the tumor or the normal domain.

    Slices of any size are resized to the model's resolution and back; a NIfTI keeps its shape,
    affine, header and intensity scale, and every voxel outside the brain keeps its value.
    Prints each output path on stdout (one per line). An input whose modality (guessed from its
    name: t1, t1ce, t2, flair) or intensity scale (CT in HU vs MR) differs from the data the model
    was trained on gives a warning, or with --strict an error. The generators run under bf16
    autocast where the device computes bf16 natively (--no-amp: float32). --where keeps the change
    inside a region; --mask-out writes where it happened (masks for training a segmentation model).

    Examples:

        medsyn translate --to tumor case_t1ce.nii.gz
        medsyn translate --to normal scan.nii.gz --model runs/sag-gan-128 -o healthy.nii.gz --attention-out att.nii.gz
        medsyn translate --to tumor slices/*.png -o translated/
        medsyn translate --to tumor brats-test/normal/ -o translated/
        ls *.nii.gz | medsyn translate --to tumor - -o out/ --device cuda
        medsyn translate --to tumor case_flair.nii.gz --where roi.nii.gz --mask-out tumor-mask.nii.gz
        medsyn translate --to tumor normal/ --where rois/ -o syn/tumor --mask-out syn/masks
    """
    from medsyn_cli.translation import (
        check_volume_header,
        files_in,
        kind_of,
        plan_outputs,
        translate_image,
        translate_volume,
    )
    from medsyn_cli.translation_regions import check_regions, plan_masks, region_paths

    to = to.strip().lower()
    if to not in ("tumor", "normal"):
        raise InputError(f"--to must be 'tumor' or 'normal', not {to!r}")
    paths = files_in([existing(p) for p in expand_inputs(inputs)])
    if not paths:
        raise InputError("no inputs given")
    plans = plan_outputs(paths, to, out, attention_out, force)
    masks = plan_masks(plans, mask_out, force)
    for path in paths:  # fail fast, before the model is loaded
        if kind_of(path) == "volume":
            check_volume_header(path, volume_index)
    regions = region_paths(paths, where)
    check_regions(paths, regions, [kind_of(p) == "volume" for p in paths])
    weights = resolve_weights(model)
    import torch  # only now: every check above answers without it

    from medsyn_cli.config import setting
    from medsyn_cli.training.plan_values import amp_mode

    if amp is None and os.environ.get("MEDSYN_AMP"):  # the flag, else MEDSYN_AMP (as train), else auto
        amp = setting("amp", None, None, cast=amp_mode, check=amp_mode)
    net, meta = load_translator(weights, device, res, channels, which, amp=amp)
    if attention_out is not None and not getattr(net.config, "attention", False):
        raise InputError(f"model {meta.get('model', '?')!r} has no attention maps", path=weights,
                         hint="drop --attention-out, or use a sag-gan run with attention=true")
    from medsyn_cli.model import supports_region  # torch is loaded with the model by now

    if where is not None and not supports_region(net):
        raise InputError(f"model {meta.get('model', '?')!r} cannot keep its change inside a region: its "
                         "translate() takes no 'region'", path=weights, hint="drop --where, or use a sag-gan or "
                         "cyclegan run")
    volumes = [p for p in paths if kind_of(p) == "volume"]
    if volumes and net.channels != 1:
        raise InputError(f"this model has {net.channels} channels; a NIfTI volume has one", path=volumes[0],
                         hint="use a one-channel model for volumes")
    from medsyn_cli.domain_check import DomainCheck

    check = DomainCheck(meta.get("intensity"), strict=strict)
    for path in paths:  # names first: --strict refuses before anything is written
        check.name(path)
    precision = "bf16 autocast" if meta["amp"] else "fp32"
    log(f"translating {len(paths)} input(s) to {to} with {meta.get('model', '?')} at {net.res}px ({weights}; "
        f"{precision}: {meta['amp_reason']})")
    from medsyn_cli.fileio import staged_outputs
    from medsyn_cli.outputs import record_outputs

    outcomes = []
    # All outputs or none: each waits as a temporary until every input is translated.
    with torch.inference_mode(), progress() as bar, staged_outputs():
        task = bar.add_task("translate", total=len(plans), info="")
        for (path, target, att_target), region, mask in zip(plans, regions, masks):
            if kind_of(path) == "volume":
                outcome = translate_volume(net, path, target, to, att_target, batch_size=batch_size,
                                           volume_index=volume_index, intensity=meta.get("intensity"),
                                           check_volume=check.volume, region_path=region, mask_target=mask)
            else:
                outcome = translate_image(net, path, target, to, att_target, region, mask)
            bar.advance(task)
            outcomes.append((path, outcome, region))
    record_outputs([p for _, o, _ in outcomes for p in (o.output, o.attention, o.mask) if p is not None],
                   "translate")
    for path, outcome, region in outcomes:
        if as_json:
            echo_json({"input": str(path), "output": str(outcome.output),
                       "attention": None if outcome.attention is None else str(outcome.attention),
                       "region": None if region is None else str(region),
                       "mask": None if outcome.mask is None else str(outcome.mask),
                       "mask_pixels": outcome.mask_pixels,
                       "slices_translated": outcome.slices_translated,
                       "slices_skipped": outcome.slices_skipped, "amp": meta["amp"], **outcome.info})
        else:
            typer.echo(str(outcome.output))


def register(app: typer.Typer) -> None:
    app.command("translate", context_settings={"help_option_names": ["-h", "--help"]},
                no_args_is_help=True)(translate)
