"""``medsyn cache``: list, locate and clear the preprocessed-dataset cache."""

from __future__ import annotations

import sys

import typer

from medsyn_cli.cli.common import echo_json, log

cache_app = typer.Typer(help="The preprocessed-dataset cache (ls, clear, path).",
                        context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cache_app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List cached datasets: key, size, source path, resolution, task, image count, creation time.

    Examples:

        medsyn cache ls

        medsyn cache ls --json | jq '.entries[].what.path'
    """
    from medsyn_cli.data import cache

    entries = cache.entries()
    if as_json:
        echo_json({"dir": str(cache.datasets_dir()), "entries": entries,
                   "total_size": sum(e["size"] for e in entries)})
        return
    for e in entries:
        what = e["what"]
        typer.echo(f"{e['key'][:16]}\t{_size(e['size'])}\t{what.get('task', '')}\tres {what.get('res', '')}\t"
                   f"{e['count']}\t{e['created']}\t{what.get('path', '')}")
    log(f"{len(entries)} cached dataset(s), {_size(sum(e['size'] for e in entries))} in {cache.datasets_dir()}")


@cache_app.command("clear")
def clear(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete every cached dataset (they are rebuilt from the source files when next used).

    Examples:

        medsyn cache clear --yes
    """
    from medsyn_cli.data import cache
    from medsyn_cli.errors import InputError

    if not yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to clear the cache without confirmation", hint="pass --yes")
        if not typer.confirm(f"Delete all cached datasets in {cache.datasets_dir()}?", err=True):
            raise typer.Exit(1)
    removed, freed = cache.clear()
    log(f"removed {removed} cached dataset(s), freed {_size(freed)}")


@cache_app.command("path")
def path() -> None:
    """Print the folder holding cached datasets (honours MEDSYN_HOME).

    Examples:

        medsyn cache path

        du -sh "$(medsyn cache path)"
    """
    from medsyn_cli.data import cache

    typer.echo(str(cache.datasets_dir()))


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
