"""The root Typer app: one module per verb, plus whatever plugins add via ``register_commands``."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from medsyn_cli import __version__
from medsyn_cli.errors import MedsynError

CONTEXT = {"help_option_names": ["-h", "--help"]}

#: Verb modules under medsyn_cli.cli; each exposes ``register(app)``.
VERBS = ("train", "sample", "translate", "eval", "edges", "report", "models", "data", "cache", "weights")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medsyn {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="medsyn",
        help="Medical image synthesis with GANs: train, sample, translate, evaluate.",
        no_args_is_help=True,
        context_settings=CONTEXT,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="markdown" if not os.environ.get("NO_COLOR") else None,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                     help="Print the version and exit."),
    ) -> None:
        """Medical image synthesis with GANs: train, sample, translate, evaluate.

        Results go to stdout, everything else to stderr. Exit codes: 0 success, 1 runtime
        failure, 2 bad usage or input. Set MEDSYN_DEBUG=1 for tracebacks.
        """

    for verb in VERBS:
        importlib.import_module(f"medsyn_cli.cli.{verb}").register(app)

    from medsyn_cli.plugins import collect

    collect("register_commands", app=app)  # a plugin whose hook raises is reported; the CLI still runs
    return app


def main() -> None:
    debug = os.environ.get("MEDSYN_DEBUG") == "1"
    try:
        app = build_app()
        app()
    except MedsynError as exc:
        if debug:
            raise
        print(f"medsyn: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("medsyn: interrupted", file=sys.stderr)
        sys.exit(130)
