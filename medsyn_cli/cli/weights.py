"""``medsyn weights``: the FID Inception weights in the cache, and default model weights per model."""

from __future__ import annotations

from pathlib import Path

import typer

from medsyn_cli.cli.common import echo_json, log

weights_app = typer.Typer(
    help="FID Inception weights (import, ls) and default generator weights per model (default).\n\n"
         "Examples:\n\n    medsyn weights import pt_inception-2015-12-05.pth\n    medsyn weights ls\n"
         "    medsyn weights default sag-gan runs/sag-gan-128\n",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@weights_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="A weights file: pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
                                          "or a state dict with the same tensors (fc optional)."),
    force: bool = typer.Option(False, "--force", help="Replace an imported file of the same name."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Verify that FILE is the FID Inception network and copy it into the cache.

    The check is behavioural: the network built from FILE must produce the reference pool3
    features for a fixed probe image (so a re-saved copy without `fc` is accepted and torchvision's
    ImageNet Inception is refused). Evaluations then use the imported copy, with no download.

    Examples:

        medsyn weights import ~/Downloads/pt_inception-2015-12-05-6726825d.pth

        medsyn weights import ../shared/weights/fid-inception-pool3.pth --json
    """
    from medsyn_cli.metrics.weights import import_weights

    info = import_weights(file, force=force)
    if as_json:
        echo_json({"imported": str(file), **info.as_dict(), "valid": True})
    else:
        log(f"verified: {file} is the FID Inception network (sha256 {info.sha256[:12]}...)")
        typer.echo(str(info.path))


@weights_app.command("ls")
def ls_cmd(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the FID weights in the cache, whether each is valid, and which one evaluations use.

    Examples:

        medsyn weights ls

        medsyn weights ls --json | jq '.weights[] | select(.valid)'
    """
    import os

    from medsyn_cli.metrics.weights import ENV_VAR, describe_cached, weights_dir

    entries = describe_cached()
    env = os.environ.get(ENV_VAR)
    if env:  # the environment variable wins over the cache
        for e in entries:
            e["in_use"] = False
    if as_json:
        echo_json({"dir": str(weights_dir()), "env": {ENV_VAR: env}, "weights": entries})
        return
    if env:
        log(f"{ENV_VAR}={env} (used instead of the cache)")
    if not entries:
        log(f"no weights in {weights_dir()}; `medsyn weights import FILE` or an evaluation with "
            "internet access puts them there")
        return
    for e in entries:
        status = "valid" if e["valid"] else f"INVALID: {e['reason']}"
        mark = "*" if e["in_use"] else " "
        typer.echo(f"{mark} {e['path']}\t{e['bytes'] / 2**20:.1f} MiB\tsha256 {e['sha256'][:12]}\t{status}")


@weights_app.command("default")
def default_cmd(
    model: str = typer.Argument(None, help="Model name (as in `medsyn models`)."),
    target: Path = typer.Argument(None, help="A run directory or a checkpoint/exported weights file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Choose the run or weights file a model uses by default (e.g. by `medsyn translate`).

    With no arguments, list the defaults: the explicit choice, else the latest finished run.

    Examples:

        medsyn weights default sag-gan runs/sag-gan-256

        medsyn weights default cyclegan runs/cyclegan-128/checkpoints/last.pt

        medsyn weights default --json
    """
    from medsyn_cli import runs_index
    from medsyn_cli.errors import InputError
    from medsyn_cli.registry import all_models, get_model

    if model is None:
        explicit = runs_index.defaults()
        rows = []
        for name in sorted(set(all_models()) | set(explicit)):
            chosen = runs_index.default_for(name)
            rows.append({"model": name, "default": str(chosen) if chosen else None,
                         "source": "explicit" if name in explicit and chosen and str(chosen) == explicit[name]
                         else ("latest run" if chosen else None)})
        if as_json:
            echo_json({"defaults": rows})
        else:
            for r in rows:
                typer.echo(f"{r['model']}\t{r['default'] or '-'}\t{r['source'] or ''}")
        return
    if target is None:
        raise InputError("give both MODEL and RUN_OR_CHECKPOINT, or neither to list the defaults")
    spec = get_model(model)
    if not target.exists():
        raise InputError("no such run directory or weights file", path=target)
    from medsyn_cli.run_identity import recorded_model

    holds = recorded_model(target)
    if holds != spec.name:  # runs record the canonical name, never an alias
        raise InputError(f"this holds a {holds} model, not {spec.name}", path=target,
                         hint=f"choose a {spec.name} run, or `medsyn weights default {holds} {target}`")
    runs_index.set_default(spec.name, target)
    if as_json:
        echo_json({"model": spec.name, "default": str(target.resolve())})
    else:
        typer.echo(str(target.resolve()))


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
