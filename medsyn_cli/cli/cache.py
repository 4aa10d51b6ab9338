"""``medsyn cache``: list, locate and clear the preprocessed-dataset cache, FID statistics and the bf16 speed
measurement of ``--amp auto``.

All are derived data, rebuilt when next needed. Imported FID weights (``medsyn weights``) are
never touched here: an offline machine could not get them back.
"""

from __future__ import annotations

import sys

import typer

from medsyn_cli.cli.common import echo_json, log

cache_app = typer.Typer(help="The preprocessed-dataset cache and FID statistics (ls, clear, path).\n\n"
                        "Examples:\n\n    medsyn cache ls\n    medsyn cache clear --yes\n"
                        "    du -sh \"$(medsyn cache path)\"\n",
                        context_settings={"help_option_names": ["-h", "--help"]}, no_args_is_help=True)


def _fid_stats() -> tuple[object, list]:
    """The reference-statistics folder of ``medsyn eval`` and the files in it."""
    from medsyn_cli.metrics.stats_cache import stats_dir

    folder = stats_dir()
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return folder, files


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
    from medsyn_cli.training.amp_probe import probe_path, probe_records

    entries = cache.entries()
    probes = probe_records()
    stats_folder, stats_files = _fid_stats()
    stats_size = sum(f.stat().st_size for f in stats_files)
    if as_json:
        echo_json({"dir": str(cache.datasets_dir()), "entries": entries,
                   "total_size": sum(e["size"] for e in entries),
                   "fid_stats": {"dir": str(stats_folder), "files": len(stats_files), "size": stats_size},
                   "amp_probe": {"path": str(probe_path()), "measurements": probes}})
        return
    for e in entries:
        what = e["what"]
        typer.echo(f"{e['key'][:16]}\t{_size(e['size'])}\t{what.get('task', '')}\tres {what.get('res', '')}\t"
                   f"{e['count']}\t{e['created']}\t{what.get('path', '')}")
    log(f"{len(entries)} cached dataset(s), {_size(sum(e['size'] for e in entries))} in {cache.datasets_dir()}")
    log(f"{len(stats_files)} FID statistics file(s), {_size(stats_size)} in {stats_folder}")
    for key, record in probes.items():
        log(f"bf16 measured {record.get('speedup')}x fp32 on {key} ({record.get('measured')}; --amp auto uses it)")


@cache_app.command("clear")
def clear(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (what was removed, bytes freed)."),
) -> None:
    """Delete every cached dataset, the cached FID reference statistics and the bf16 speed measurement
    (all are rebuilt when next used). Imported FID weights are kept.

    Examples:

        medsyn cache clear --yes
        medsyn cache clear --yes --json
    """
    from medsyn_cli.data import cache
    from medsyn_cli.errors import InputError
    from medsyn_cli.training.amp_probe import probe_path

    if not yes:
        if not sys.stdin.isatty():
            raise InputError("refusing to clear the cache without confirmation", hint="pass --yes")
        if not typer.confirm(f"Delete all cached datasets and FID statistics under {cache.datasets_dir().parent}?",
                             err=True):
            raise typer.Exit(1)
    removed, freed = cache.clear()
    _, stats_files = _fid_stats()
    stats_freed = 0
    for f in stats_files:
        stats_freed += f.stat().st_size
        f.unlink()
    probe = probe_path()
    probe_removed = probe.is_file()
    if probe_removed:
        probe.unlink()
    log(f"removed {removed} cached dataset(s) and {len(stats_files)} FID statistics file(s), "
        f"freed {_size(freed + stats_freed)}" + ("; the bf16 speed measurement will be taken again" if probe_removed
                                                   else ""))
    if as_json:
        echo_json({"datasets_removed": removed, "fid_statistics_removed": len(stats_files),
                   "bytes_freed": freed + stats_freed, "amp_probe_removed": probe_removed})


@cache_app.command("path")
def path(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Print the folder holding cached datasets (honours MEDSYN_HOME).

    Examples:

        medsyn cache path

        medsyn cache path --json

        du -sh "$(medsyn cache path)"
    """
    from medsyn_cli.data import cache

    if as_json:
        echo_json({"path": str(cache.datasets_dir())})
        return
    typer.echo(str(cache.datasets_dir()))


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
