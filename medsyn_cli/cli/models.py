"""``medsyn models`` and ``medsyn plugins``: what is installed."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from medsyn_cli.cli.common import echo_json

class _ModelsGroup(TyperGroup):
    """``medsyn models NAME`` is ``medsyn models show NAME``: a first word that is not a sub-command
    is taken as a model name."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


models_app = typer.Typer(
    cls=_ModelsGroup,
    help="List installed models; `medsyn models NAME` for one model's settings, "
         "`medsyn models info NAME` for parameters and FLOPs.\n\nExamples:\n\n    medsyn models --json\n"
         "    medsyn models sag-gan\n    medsyn models info hagan --res 256\n",
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)


@models_app.callback()
def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the installed models.

    Examples:

        medsyn models
        medsyn models --json | jq '.models[].name'
        medsyn models dcgan                     # one model: summary, citation, settings
        medsyn models info hagan --res 256      # parameters and FLOPs
    """
    if ctx.invoked_subcommand is not None:
        return
    from medsyn_cli.registry import all_models

    specs = all_models()
    if as_json:
        echo_json({"models": [s.as_dict() for s in specs.values()]})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("name", "task", "resolutions", "aliases", "summary"):
        table.add_column(col)
    for s in specs.values():
        table.add_row(s.name, s.task, ",".join(map(str, s.resolutions)), ",".join(s.aliases), s.summary)
    Console(width=200).print(table)


@models_app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name or alias."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One model: task, resolutions, channels, summary, citation, every setting with its default
    and its allowed values (what `--set KEY=VALUE` accepts), and its recipes (what `--recipe NAME` sets).
    `medsyn models NAME` is the same.

    Examples:

        medsyn models dcgan
        medsyn models show sag-gan --json | jq .settings
    """
    import dataclasses
    import typing

    from medsyn_cli.config_rules import field_rules
    from medsyn_cli.registry import get_model

    spec = get_model(name)
    rules = field_rules(spec.config_cls)
    hints = typing.get_type_hints(spec.config_cls)
    defaults = spec.default_config()
    settings = [{"name": f.name, "type": _type_name(hints[f.name]), "default": defaults[f.name],
                 "allowed": _describe_rules(rules[f.name])} for f in dataclasses.fields(spec.config_cls)]
    if as_json:
        echo_json({**spec.as_dict(), "settings": settings})
        return
    typer.echo(f"{spec.name} ({spec.task}): {spec.summary}")
    typer.echo(f"  aliases: {', '.join(spec.aliases) or '-'}; resolutions: {', '.join(map(str, spec.resolutions))}; "
               f"channels: {', '.join(map(str, spec.channels))}; default batch: {spec.default_batch_size}; "
               f"default fit: {spec.default_fit}; layout: {'channels-last' if spec.channels_last else 'plain'}")
    typer.echo(f"  citation: {spec.citation}")
    typer.echo("settings (--set KEY=VALUE):")
    width = max((len(x["name"]) for x in settings), default=4)
    for x in settings:
        default = x["default"] if not isinstance(x["default"], (list, tuple)) else ",".join(map(str, x["default"])) or "()"
        typer.echo(f"  {x['name'].ljust(width)}  {x['type']:<14} {str(default):<20} {x['allowed']}")
    typer.echo("recipes (--recipe NAME): paper (the defaults)")
    for recipe, values in spec.recipes.items():
        typer.echo(f"  {recipe}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


def _type_name(tp) -> str:
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _describe_rules(rules: dict) -> str:
    """``{"min": 0, "lt": 1}`` -> ``>= 0, < 1`` (what ``--set`` accepts besides the type)."""
    parts = []
    for key, sign in (("gt", ">"), ("min", ">="), ("lt", "<"), ("max", "<=")):
        if key in rules:
            parts.append(f"{sign} {rules[key]}")
    if "choices" in rules:
        parts.append("one of " + "|".join(map(str, rules["choices"])))
    if "items" in rules:
        parts.append("comma list of " + "|".join(map(str, rules["items"])))
    if "length" in rules:
        parts.append(f"{rules['length']} values")
    if rules.get("odd"):
        parts.append("odd")
    return ", ".join(parts)


#: How ``models info`` feeds each network; documented for model authors in docs/metrics.md.
INPUT_CONVENTION = (
    "inputs come from model.example_inputs(network_name, batch) -> tuple when the model defines it; "
    "otherwise a network whose name contains 'generator' in an unconditional model gets a latent "
    "(batch, latent_dim) (then (batch, latent_dim, 1, 1) if that fails) and every other network an "
    "image batch (batch, channels, res, res)"
)


def _network_inputs(model, name: str, batch: int) -> list[tuple]:
    """Candidate argument tuples for network ``name``, tried in order (see INPUT_CONVENTION)."""
    import torch

    if hasattr(model, "example_inputs"):
        return [("example_inputs", tuple(model.example_inputs(name, batch)))]
    if model.task == "unconditional" and "generator" in name.lower():
        dim = getattr(model, "latent_dim", None) or getattr(model.config, "latent_dim", None)
        if dim:
            return [("default latent", (torch.randn(batch, dim),)),
                    ("default latent", (torch.randn(batch, dim, 1, 1),))]
    return [("default image", (torch.randn(batch, model.channels, model.res, model.res),))]


def network_costs(model, batch: int = 1) -> dict[str, dict]:
    """Parameters and forward FLOPs per image of each network, from a real forward pass counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add; MACs = FLOPs / 2)."""
    import torch

    from medsyn_cli.errors import MedsynError
    from medsyn_cli.nn.flops import count_flops

    out = {}
    model.eval()
    for name, net in model.networks.items():
        last_error: Exception | None = None
        for source, args in _network_inputs(model, name, batch):
            try:
                flops = count_flops(net, args) // batch
            except (RuntimeError, TypeError, ValueError) as exc:
                last_error = exc
                continue
            out[name] = {
                "parameters": sum(p.numel() for p in net.parameters()),
                "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
                "flops": flops, "macs": flops // 2, "gflops": round(flops / 1e9, 4),
                "inputs": [list(a.shape) for a in args if torch.is_tensor(a)], "input_source": source,
            }
            break
        else:
            raise MedsynError(f"cannot run network {name!r} of {type(model).__name__} for FLOP counting: "
                              f"{last_error}", hint="the model should define example_inputs(network_name, batch)")
    return out


@models_app.command("info")
def info(
    name: str = typer.Argument(..., help="Model name or alias."),
    res: int = typer.Option(None, "--res", help="Resolution (default: the model's smallest)."),
    channels: int = typer.Option(None, "--channels", help="Image channels (default: the model's first)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameter counts and forward FLOPs per image of each network of a model (HAGAN's Table I).

    FLOPs are counted by PyTorch's own FlopCounterMode on a real forward pass of one image (2 FLOPs
    per multiply-add, so MACs are half). Generators get a latent or an input image, discriminators
    an image batch; models whose networks need other inputs define `example_inputs(name, batch)`.

    Examples:

        medsyn models info hagan --res 256

        medsyn models info sag-gan --res 128 --json | jq '.networks[].gflops'
    """
    from medsyn_cli.registry import get_model

    spec = get_model(name)
    res = min(spec.resolutions) if res is None else res  # 0 is a bad value, not "the default"
    channels = spec.channels[0] if channels is None else channels
    spec.check(res, channels)
    model = spec.factory(spec.config_cls(), res, channels)
    costs = network_costs(model)
    total_params = sum(c["parameters"] for c in costs.values())
    if as_json:
        echo_json({"model": spec.name, "task": spec.task, "res": res, "channels": channels,
                   "networks": costs, "total_parameters": total_params,
                   "flop_counter": "torch.utils.flop_counter.FlopCounterMode, forward, per image, "
                                   "2 FLOPs per multiply-add",
                   "input_convention": INPUT_CONVENTION})
        return
    width = max(len(n) for n in costs) if costs else 7
    typer.echo(f"{'network'.ljust(width)}  {'parameters':>12}  {'GFLOPs/img':>11}  {'GMACs/img':>10}  input")
    for n, c in costs.items():
        shapes = ", ".join("x".join(map(str, s)) for s in c["inputs"])
        typer.echo(f"{n.ljust(width)}  {c['parameters']:>12,}  {c['flops'] / 1e9:>11.3f}  "
                   f"{c['macs'] / 1e9:>10.3f}  {shapes}")
    typer.echo(f"{'total'.ljust(width)}  {total_params:>12,}   ({spec.name}, res {res}, {channels} channel(s))")


def plugins(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List the installed plugins and the hooks each implements.

    Examples:

        medsyn plugins
        medsyn plugins --json
    """
    from medsyn_cli.plugins import plugin_info

    info = plugin_info()
    if as_json:
        echo_json({"plugins": info})
        return
    for p in info:
        status = f"error: {p['error']}" if "error" in p else ", ".join(p["hooks"])
        typer.echo(f"{p['name']}\t{p.get('distribution', '')}\t{status}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("plugins")(plugins)
