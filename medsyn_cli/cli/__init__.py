"""The root Typer app: one module per verb, plus whatever plugins add via ``register_commands``."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings

import typer

from medsyn_cli import __version__
from medsyn_cli.errors import MedsynError, from_os_error

CONTEXT = {"help_option_names": ["-h", "--help"]}

#: Verb modules under medsyn_cli.cli; each exposes ``register(app)``.
VERBS = ("train", "sample", "translate", "eval", "edges", "report", "models", "data", "cache", "weights")


ROOT_HELP = """Medical image synthesis with GANs: train, sample, translate, evaluate.

Results go to stdout, everything else to stderr; --json on every command that prints a result.
Exit codes: 0 success, 1 runtime failure, 2 bad usage or input. MEDSYN_DEBUG=1 shows tracebacks.

Examples:

    medsyn train dcgan --data ./covid-ct --res 64 --steps 2000
    medsyn sample runs/dcgan-64 --n 2000 --out fake/ | medsyn eval fid ./covid-ct -
    medsyn translate --to tumor case_t1ce.nii.gz
    medsyn models dcgan
"""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"medsyn {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="medsyn",
        help=ROOT_HELP,
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


class Terminated(KeyboardInterrupt):
    """SIGTERM as an exception, so ``finally`` blocks remove temporaries as they do on Ctrl-C."""

    received = False  # Typer turns any KeyboardInterrupt into exit 130; this tells main() it was SIGTERM


def _raise_terminated(signum, frame) -> None:
    Terminated.received = True
    raise Terminated()


def _stdout_closed() -> bool:
    """Whether Typer (Click) stopped the command because stdout is a closed pipe: it then exits 1 with
    stdout wrapped so the final flush stays quiet. medsyn prints results only once its outputs are
    written, so a reader that stopped early (``head``) is not a failure, as for rg and most Unix tools."""
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning (numpy, torch, PIL) as medsyn's one line, without its source line."""
    from medsyn_cli.notices import warn

    warn(f"{category.__name__}: {message}")


def main() -> None:
    debug = os.environ.get("MEDSYN_DEBUG") == "1"
    # The trainer installs its own handlers (finish the step, checkpoint) while its loop runs.
    signal.signal(signal.SIGTERM, _raise_terminated)
    if not debug:
        warnings.showwarning = _show_warning
    try:
        app = build_app()
        from medsyn_cli.cli.usage import bare_usage

        usage = bare_usage(app, sys.argv[1:])
        if usage is not None:  # no arguments: usage on stderr, not the help on stdout
            print(usage, file=sys.stderr)
            sys.exit(2)
        app()
    except MedsynError as exc:
        if debug:
            raise
        print(f"medsyn: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:  # a full disk, a read-only folder, a busy path: one line naming the path
        if debug:
            raise
        err = from_os_error(exc)
        print(f"medsyn: error: {err.one_line()}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Terminated:
        print("medsyn: terminated", file=sys.stderr)
        sys.exit(143)
    except SystemExit as exc:
        if Terminated.received and exc.code == 130:
            print("medsyn: terminated", file=sys.stderr)
            sys.exit(143)
        if exc.code == 1 and _stdout_closed():  # `medsyn sample … | head -1`: the outputs are written
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())  # nothing left to flush into the pipe
            sys.exit(0)
        raise
    except KeyboardInterrupt:
        print("medsyn: interrupted", file=sys.stderr)
        sys.exit(130)
