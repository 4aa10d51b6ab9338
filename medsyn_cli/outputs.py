"""Where medsyn writes: output checks before the work, `--force` that only replaces medsyn's own outputs,
one process per output (an OS lock, :mod:`medsyn_cli.locks`), temporary siblings that never outlive their process, and the
manifest that marks a folder as medsyn's.

* A folder medsyn owns whole (``sample --out``, ``data phantom``, ``data prepare``) gets ``MANIFEST``
  recording each file's size and hash (:mod:`medsyn_cli.manifest`); ``--force`` replaces such a folder
  only when everything in it is a recorded file, unchanged. A training run is recognised by its
  ``config.json`` and the entries a run has (:data:`RUN_ENTRIES`).
* Files medsyn adds to a folder (``edges``, ``translate``, ``eval embed``) are recorded in the same
  manifest; ``--force`` overwrites only recorded, unchanged files.
* A symlinked output is followed: what is replaced is the folder or file it points to, never the link.
* The folder the user stands in, and every folder above it, is never deleted.
* Temporaries are ``.NAME.tmp-PID`` beside the target; one whose PID is gone (a SIGKILL) is removed by
  the next command that writes there.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterator

from medsyn_cli.errors import InputError, from_os_error
from medsyn_cli.fileio import followed, make_dirs, remove_empty, temp_sibling
from medsyn_cli.locks import OutputInUse, check_unlocked, locked
from medsyn_cli.manifest import MANIFEST, file_record, first_unaccounted, read_manifest, record_folder, \
    why_not_ours, write_manifest
from medsyn_cli.run_config import RUN_FORMAT, read_run_config

#: What a training run directory holds (top level); `--force` refuses a run with anything else. The
#: exports are named: a user's own `model.safetensors` copied into a run is not the run's to delete.
RUN_ENTRIES = ("config.json", "stats.jsonl", "log.txt", "loss.png", "weights.safetensors", "best.safetensors",
               "fid*.json*", "fid*.png", "checkpoints", "samples", "report.html", "tensorboard", MANIFEST, ".*.tmp-*",
               ".*.tmp")
#: ... and inside its sub-folders.
RUN_SUBDIR_ENTRIES = {"checkpoints": ("*.pt", ".*.tmp", ".*.tmp-*"), "samples": ("*.png", ".*.tmp", ".*.tmp-*"),
                      "tensorboard": ("events.out.tfevents.*",)}
_TMP = re.compile(r"^\..+\.tmp-(\d+)$")


# -- temporaries -------------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID`` entries in ``folder`` whose process no longer runs; returns them."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP.match(entry.name)
        if not m or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


# -- checks --------------------------------------------------------------------------------------------
def check_writable(path: Path) -> None:
    """Refuse, before any work, a place that cannot be written: read-only file system, no permission,
    or a file where a folder is needed. ``path`` is what will be created (file or folder)."""
    p = Path(path)
    parent = p.parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError("is a file, not a folder", path=parent, hint=f"cannot create {path} inside it")
    probe = p if p.is_dir() else parent  # a file is replaced by a rename: its folder must be writable
    try:
        if os.statvfs(probe).f_flag & os.ST_RDONLY:
            raise InputError("read-only file system", path=probe, hint="choose an output on a writable disk")
    except OSError:
        pass
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError("permission denied", path=probe, hint="choose an output you can write")


def protect_cwd(folder: Path) -> None:
    """Never delete the folder the user stands in or one above it."""
    try:
        cwd, target = Path.cwd().resolve(), Path(folder).resolve()
    except OSError:
        return
    if cwd == target or target in cwd.parents:
        raise InputError("is the current folder or holds it; medsyn never deletes or replaces it", path=folder,
                         hint="choose another --out")


def is_run_dir(folder: Path) -> bool:
    """A training run: its ``config.json`` carries medsyn's run format tag."""
    try:
        doc = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == RUN_FORMAT


def _foreign_entry(folder: Path, patterns, sub: dict) -> Path | None:
    for entry in sorted(folder.iterdir()):
        if not any(fnmatch.fnmatch(entry.name, pat) for pat in patterns):
            return entry
        if entry.name in sub:
            if not entry.is_dir():
                return entry
            found = _foreign_entry(entry, sub[entry.name], {})
            if found is not None:
                return found
    return None


def check_owned_folder(folder: Path, *, force: bool, command: str, lock_held: bool = False) -> None:
    """For a folder a command writes whole (``sample --out``, ``data phantom|prepare --out``): refuse a
    file, an unwritable place, an existing folder without ``force``, and with ``force`` anything but an
    empty folder or an earlier output of the same command holding nothing but its recorded, unchanged
    files. A symlinked ``folder`` is checked (and later replaced) where it points."""
    folder = followed(folder)
    check_writable(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("output exists and is not a folder", path=folder)
    if not lock_held:
        check_unlocked(folder)
    if folder.exists():
        protect_cwd(folder)  # the output replaces the folder: never the one the user stands in
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not force:
        raise InputError("output exists", path=folder, hint="pass --force to replace it")
    if is_run_dir(folder):
        raise InputError(f"is a training run, not the output of `medsyn {command}`; --force does not delete it",
                         path=folder, hint="choose another --out")
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("command") != command:
        what = "files medsyn did not write" if manifest is None else f"the output of `medsyn {manifest.get('command')}`"
        raise InputError(f"holds {what}; --force only replaces an earlier `medsyn {command}` output", path=folder,
                         hint="choose another --out, or empty it yourself")
    found = first_unaccounted(folder, manifest["files"])
    if found is not None:
        raise InputError(f"{found[0]} {found[1]}; --force does not delete it", path=folder,
                         hint="move it away, or choose another --out")


def check_run_replaceable(out: Path) -> None:
    """``train --force``: only a run directory holding nothing but a run's entries is deleted."""
    protect_cwd(out)
    read_run_config(out)  # a medsyn run directory, else InputError
    found = _foreign_entry(Path(out), RUN_ENTRIES, RUN_SUBDIR_ENTRIES)
    if found is not None:
        raise InputError(f"{found.relative_to(out).as_posix()} is not part of a medsyn run; --force does not delete it",
                         path=out, hint="move it away, or choose another --out")


def holds_only_run_entries(out: Path) -> bool:
    return Path(out).is_dir() and _foreign_entry(Path(out), RUN_ENTRIES, RUN_SUBDIR_ENTRIES) is None


def remove_run(out: Path) -> None:
    """Empty a run directory for ``train --force`` (checked again here, now that the lock is held). The
    folder itself stays, so a symlinked ``--out`` keeps pointing at the new run."""
    check_run_replaceable(out)
    for entry in followed(out).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_out_folder(folder: Path) -> None:
    """For a folder a command adds files to (``edges``, ``eval embed``, ``translate`` of several
    inputs): refuse a file, an unwritable place or a training run, before any work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("output exists and is not a folder", path=folder, hint="choose a folder for --out")
    if folder.is_dir() and is_run_dir(folder):
        raise InputError("is a training run; medsyn does not write other outputs into it", path=folder,
                         hint="choose another --out, e.g. a sub-folder")
    check_writable(folder)
    clean_stale_temps(folder)


def check_out_file(target: Path, *, force: bool) -> None:
    """One output file: refuse a folder in its place, an existing file without ``force``, and with
    ``force`` a file that is not the one medsyn's manifest for that folder recorded (a symlink is
    followed: the file it points to is checked and later replaced)."""
    target = followed(target)
    check_writable(target)
    if target.is_dir():
        raise InputError("output exists and is a folder", path=target, hint="name a file")
    if not target.exists():
        return
    if not force:
        raise InputError("output exists", path=target, hint="pass --force to overwrite")
    manifest = read_manifest(target.parent)
    if manifest is None or target.name not in manifest["files"]:
        raise InputError("was not written by medsyn; --force only overwrites medsyn's outputs", path=target,
                         hint="remove it yourself, or choose another name")
    why = why_not_ours(target, manifest["files"][target.name])
    if why is not None:
        raise InputError(f"{why}; --force only overwrites medsyn's outputs as written", path=target,
                         hint="remove it yourself, or choose another name")


def record_outputs(targets: list[Path], command: str) -> None:
    """Add written files, with their size and hash, to their folders' manifests (so a later ``--force``
    may overwrite them while they are unchanged)."""
    by_folder: dict[Path, dict[str, dict]] = {}
    for t in map(followed, targets):
        by_folder.setdefault(t.parent, {})[t.name] = file_record(t)
    for folder, records in by_folder.items():
        write_manifest(folder, command, records, merge=True)


# -- a folder written whole ---------------------------------------------------------------------------
@contextlib.contextmanager
def owned_folder(target: Path, *, force: bool, command: str) -> Iterator[Path]:
    """Yield a new temporary folder beside ``target``; on success it gets a manifest and replaces
    ``target`` in one rename. On failure (or SIGTERM/SIGINT) nothing is left: no temporary folder, no
    empty ``target``, no parent folder this made. An existing ``target`` is replaced only per
    :func:`check_owned_folder`, under the lock."""
    shown, target = Path(target), Path(os.path.abspath(followed(target)))  # a link: replace where it points
    check_writable(target)  # before the lock file is made beside it
    with locked(shown, command):
        check_owned_folder(shown, force=force, command=command, lock_held=True)
        clean_stale_temps(target.parent)
        created = make_dirs(target.parent)
        tmp = temp_sibling(target)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            yield tmp
            write_manifest(tmp, command, record_folder(tmp))
            if target.exists() and any(target.iterdir()):  # --force: move the old output aside, swap in one rename
                old = target.parent / f".{target.name}.old.tmp-{os.getpid()}"
                os.replace(target, old)
                try:
                    os.replace(tmp, target)
                except BaseException:
                    os.replace(old, target)  # put the old output back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            remove_empty(created)
            if isinstance(exc, OSError) and not exc.filename:
                exc.filename = str(shown)  # e.g. an image writer's ENOSPC names no file: name the output
            raise


# -- files added to a folder --------------------------------------------------------------------------
def check_plot_outputs(folder: Path, names, force: bool) -> None:
    """``eval embed --out``: the folder and each file it will hold, checked before any work."""
    check_out_folder(folder)
    for name in names:
        check_out_file(Path(folder) / name, force=force)


def write_plots(folder: Path, write, command: str = "eval embed"):
    """Run ``write()`` (which writes files with ``atomic_path`` into ``folder``) so that all of them
    appear or none, and record them in the folder's manifest; returns what ``write`` returned."""
    from medsyn_cli.fileio import staged_outputs

    with staged_outputs() as stage:
        result = write()
        written = [target for _, target in stage.pending]
    record_outputs([t for t in written if Path(t).parent == Path(folder)], command)
    return result


# -- caches ----------------------------------------------------------------------------------------------
def write_cache_entry(target: Path, write, what: str) -> bool:
    """Run ``write()`` for a cache entry under its lock. A cache is an optimisation: when another
    process is writing the same entry this one skips it, and a full or read-only cache only warns."""
    import sys

    try:
        clean_stale_temps(Path(target).parent)
        with locked(Path(target), "cache"):
            write()
        return True
    except OutputInUse:
        return False
    except OSError as exc:
        print(f"medsyn: warning: {what} not cached ({from_os_error(exc).one_line()}); continuing without it",
              file=sys.stderr)
        return False
