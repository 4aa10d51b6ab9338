"""The evaluations of translation models: ``medsyn eval translation RUN --data TEST`` (does it translate
held-out slices?) and ``medsyn eval attention`` (Dice of its attention maps with the true masks).

The built-in metrics plugin registers them as the ``translation`` and ``attention`` metrics' commands; the
scoring is :mod:`medsyn_cli.metrics.translation` (the judge :mod:`medsyn_cli.metrics.judge`) and
:mod:`medsyn_cli.metrics.attention`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from medsyn_cli.cli.common import echo_json, log, progress
from medsyn_cli.metrics.judge import JudgeSettings


def _judge_data(run: str, given: Optional[str]) -> str:
    """The judge's training data: ``--judge-data``, else the data the run was trained on."""
    if given:
        return given
    from medsyn_cli.errors import InputError
    from medsyn_cli.run_config import read_run_config

    if not Path(run).is_dir():
        raise InputError("--judge-data is needed: a checkpoint or export does not say what it was trained on",
                         path=run, hint="pass --judge-data TRAINING-DATA (the training cases, never the test cases)")
    return read_run_config(Path(run))["data"]["path"]


def _fmt(v: Any, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _table(r: dict[str, Any]) -> str:
    j, tt, tn = r["judge"], r["to_tumor"], r["to_normal"]
    rows = [
        ("slices", f"{r['slices']['normal']} normal, {r['slices']['tumor']} tumor (area-matched, of "
                   f"{r['slices']['normal_in']} and {r['slices']['tumor_visible']} with a visible tumor)"),
        ("judge accuracy", f"{_fmt(j['accuracy'])}  (TPR {_fmt(j['tpr'])}, TNR {_fmt(j['tnr'])}; real test slices)"),
        ("normal -> tumor", f"conversion {_fmt(tt['conversion'])}  (judged tumor {_fmt(tt['judged_tumor_before'])}"
                            f" -> {_fmt(tt['judged_tumor_after'])})"),
        ("tumor -> normal", f"conversion {_fmt(tn['conversion'])}  (judged normal {_fmt(tn['judged_normal_before'])}"
                            f" -> {_fmt(tn['judged_normal_after'])})"),
    ]
    d = r.get("distances")
    if d:
        rows.append(("FID to tumor", f"{d['fid_translated_normal_vs_tumor']:.2f} translated normals, "
                                     f"{d['fid_normal_vs_tumor']:.2f} untouched (ratio {d['fid_ratio_to_tumor']:.3f})"))
        if "fid_reference_tumor_vs_tumor" in d:
            rows.append(("FID reference", f"{d['fid_reference_tumor_vs_tumor']:.2f} real tumor slices of the judge's "
                                          f"cases (ratio {d['fid_ratio_reference']:.3f}): what real tumors score"))
        if "fid_paste_tumor_into_normal" in d:
            rows.append(("FID paste", f"{d['fid_paste_tumor_into_normal']:.2f} their real tumors pasted into the "
                                      f"untouched normals (ratio {d['fid_ratio_paste']:.3f})"))
        rows.append(("FID to normal", f"{d['fid_translated_tumor_vs_normal']:.2f} translated tumors, "
                                      f"{d['fid_tumor_vs_normal']:.2f} untouched"))
    rr = r.get("to_tumor_in_region")
    if rr:
        fid = (f"; FID ratio {rr['fid_ratio_to_tumor']:.3f} (paste {_fmt(rr.get('fid_ratio_paste'))})"
               if "fid_ratio_to_tumor" in rr else "")
        rows.append(("to tumor, in a region", f"conversion {_fmt(rr['conversion'])} (real tumors pasted there: "
                                              f"{_fmt(rr['paste_conversion'])}), "
                                              f"{_fmt(rr['region_filled_share'])} of each region filled{fid} "
                                              f"(the paste reference's regions)"))
    kind = r["maps"]["kind"]
    rows.append((f"{kind}", f"normal -> tumor: {_fmt(tt['inside_brain_share'])} of its mass inside the brain, "
                            f"{_fmt(tt['brain_attended_share'])} of the brain above {r['maps']['level']:g}"))
    rows.append(("", f"tumor -> normal: {_fmt(tn['inside_brain_share'])} inside the brain, "
                     f"{_fmt(tn['brain_attended_share'])} of the brain, Dice with the masks {_fmt(tn.get('dice'))}"))
    li = tt.get("intensity")
    if li and li["grown"] and li["real_tumor"]:
        g, t = li["grown"], li["real_tumor"]
        rows.append(("what grows", f"intensity {g['mean']:.3f} ± {g['std']:.3f} where {kind} > {r['maps']['level']:g}, "
                                   f"real tumors {t['mean']:.3f} ± {t['std']:.3f} in their masks "
                                   f"(quantile distance {li['quantile_distance']:.3f})"))
        c = li["contrast"]
        rows.append(("", f"over the rest of the brain: {c['grown']['mean']:+.3f} grown, {c['real_tumor']['mean']:+.3f} "
                         f"real tumors (quantile distance {c['quantile_distance']:.3f})"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def eval_translation(
    run: str = typer.Argument(..., help="A translation run directory, checkpoint or .safetensors export."),
    data: Path = typer.Option(..., "--data", help="Held-out cases: a folder with normal/, tumor/ and masks/ "
                                                 "(e.g. PREPARED/test) or a folder of BraTS cases."),
    judge_data: Optional[str] = typer.Option(
        None, "--judge-data", help="Real slices the judge learns normal vs tumor from (default: the run's "
                                   "training data; never the test cases)."),
    which: str = typer.Option("last", "--weights", "-w", help="last, best or live (as for eval attention)."),
    min_tumor_share: float = typer.Option(0.05, "--min-tumor-share",
                                          help="A tumor slice counts when its tumor covers this share of the brain."),
    fid: bool = typer.Option(True, "--fid/--no-fid", help="Also FID/KID (needs the FID Inception weights)."),
    fid_weights: Optional[Path] = typer.Option(None, "--fid-weights",
                                               help="FID Inception weights file (default: the cache)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the area matching and the judge."),
    judge_epochs: int = typer.Option(JudgeSettings.epochs, "--judge-epochs", min=1,
                                     help="Epochs of each judge network (fewer: a quicker, weaker judge)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Train the judge again instead of reading the cache."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score translations of held-out slices: conversion, FID/KID, where the change is.

    Normal and tumor slices of DATA (tumors covering at least --min-tumor-share of the brain) are
    matched by brain area, then translated both ways. A judge (small CNNs trained on the real slices of
    --judge-data, cached) says which translations moved to the other domain: conversion is the share
    moved beyond what the untouched inputs had, 0 for a copy, 1 when all moved; its own accuracy on the
    real test slices is printed so a weak judge shows. FID/KID of translated normals against the real
    tumors sit beside the untouched normals'. The attention map (or |y - x| / 2 for a model without one)
    says where the change is: inside the brain, how much of it, and Dice with the true tumor masks.

    Examples:

        medsyn eval translation runs/sag-gan-64 --data brats-flair/test

        medsyn eval translation runs/cyclegan-64 --data brats-test --judge-data brats-train --json
    """
    from medsyn_cli.cli.eval import _resolve_device
    from medsyn_cli.data import load_dataset
    from medsyn_cli.errors import InputError
    from medsyn_cli.metrics.judge import load_or_train
    from medsyn_cli.metrics.translation import score_translation
    from medsyn_cli.training.checkpoint import load_for_inference

    if not 0.0 <= min_tumor_share < 1.0:
        raise InputError(f"--min-tumor-share must be in [0, 1), not {min_tumor_share}")
    dev = _resolve_device(device)
    model, meta = load_for_inference(run, dev, weights=which)
    if getattr(model, "task", None) != "translation":
        raise InputError(f"{meta.get('model')} is unconditional: it translates nothing", path=run)
    judge_source = _judge_data(run, judge_data)
    if Path(judge_source).resolve() == Path(data).resolve():
        raise InputError("the judge would learn from the test cases", path=data,
                         hint="--judge-data takes the training cases, --data the held-out ones")
    res, channels = model.res, model.channels
    test = load_dataset(data, res=res, channels=channels, task="translation")
    if test.tumor.masks is None:
        raise InputError("the tumor slices have no masks", path=data,
                         hint="use a folder with masks/ (the test/ part of `medsyn data prepare brats`)")
    train = load_dataset(judge_source, res=res, channels=channels, task="translation")
    settings = JudgeSettings(seed=seed, min_tumor_share=min_tumor_share, epochs=judge_epochs)
    with progress() as bar:
        task = bar.add_task("judge", total=settings.epochs * settings.members)
        try:
            judge, cached = load_or_train(train, settings, dev, on_epoch=lambda: bar.advance(task),
                                          use_cache=not no_cache)
        except ValueError as exc:
            raise InputError(f"cannot train the judge: {exc}", path=judge_source) from None
    log(f"judge {'from the cache' if cached else 'trained'} on {judge_source}")

    features = kid_fn = None
    if fid:
        features, kid_fn = _inception(fid_weights, dev)
    result = score_translation(model, test, judge, seed=seed, features=features, kid_fn=kid_fn,
                               min_tumor_share=min_tumor_share, reference=train)
    result.update({"model": meta.get("model"), "step": meta.get("step"), "weights": str(meta.get("source", run)),
                   "data": str(data), "judge_data": judge_source, "judge_cached": cached})
    if as_json:
        echo_json(result)
    else:
        typer.echo(_table(result))


def _inception(weights: Optional[Path], device: str):
    """(features(images) -> pool3 features, kid(a, b) -> mean) with the FID Inception network."""
    from medsyn_cli.data.pixels import to_uint8
    from medsyn_cli.metrics.features import FeatureExtractor
    from medsyn_cli.metrics.inputs import ArrayPart, ImageInput
    from medsyn_cli.metrics.kid import kid
    from medsyn_cli.metrics.weights import resolve_weights

    extractor = FeatureExtractor(resolve_weights(weights), device="cuda" if device.startswith("cuda") else "cpu")

    def features(images):
        inp = ImageInput(spec="translation", parts=[ArrayPart(to_uint8(images), "translation")], kinds={"array"})
        return extractor.extract(inp)[0]

    def kid_mean(a, b) -> float:
        return float(kid(a, b)["mean"])

    return features, kid_mean


def attention(
    run: str = typer.Argument(..., help="A translation run directory, checkpoint or .safetensors export."),
    data: Path = typer.Option(..., "--data", help="Folder with tumor/ and masks/ (e.g. PREPARED/test)."),
    threshold: float = typer.Option(0.5, "--threshold", help="Attention above this counts as the model's tumor."),
    which: str = typer.Option("last", "--weights", "-w",
                              help="last, best (best.safetensors) or live (checkpoints/latest.pt without an EMA) "
                                   "of a run directory."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Dice of a translation model's attention maps with the true tumor masks.

    Each masked tumor slice of DATA is translated to normal; the attention map (where the model
    changes the image), thresholded at --threshold, is compared with the slice's mask. Prints the
    mean and median Dice, a soft Dice (no threshold) and the mean per case. The papers show these
    maps but never score them. Score on held-out cases: the test/ part of a prepared BraTS folder.

    Examples:

        medsyn eval attention runs/sag-gan-64 --data brats-flair/test

        medsyn eval attention runs/sag-gan-64 --data brats-flair/test --weights best --json
    """
    from medsyn_cli.data import load_dataset
    from medsyn_cli.errors import InputError
    from medsyn_cli.cli.eval import _resolve_device
    from medsyn_cli.metrics.attention import attention_dice
    from medsyn_cli.training.checkpoint import load_for_inference

    if not 0.0 <= threshold < 1.0:
        raise InputError(f"--threshold must be in [0, 1), not {threshold}")
    model, meta = load_for_inference(run, _resolve_device(device), weights=which)
    if getattr(model, "task", None) != "translation":
        raise InputError(f"{meta.get('model')} is unconditional: it has no attention maps", path=run)
    pair = load_dataset(data, res=model.res, channels=model.channels, task="translation")
    result = {**attention_dice(model, pair.tumor, threshold=threshold), "model": meta.get("model"),
              "step": meta.get("step"), "weights": meta.get("source"), "data": str(data)}
    if as_json:
        echo_json(result)
        return
    typer.echo(f"Dice      {result['dice_mean']:.4f} mean, {result['dice_median']:.4f} median "
               f"({result['slices']} masked slices, attention > {threshold:g})")
    typer.echo(f"soft Dice {result['soft_dice_mean']:.4f}")
    for case, v in result["per_case"].items():
        typer.echo(f"  {case}: {v['dice_mean']:.4f} ({v['slices']} slices)")
