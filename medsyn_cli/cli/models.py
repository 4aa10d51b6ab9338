"""``medsyn models`` and ``medsyn plugins``: what is installed."""

from __future__ import annotations

import typer

from medsyn_cli.cli.common import echo_json

models_app = typer.Typer(
    help="List installed models (`medsyn models info NAME` for parameters and FLOPs).",
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
