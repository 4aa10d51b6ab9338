"""The manifest that marks files as medsyn's: ``.medsyn-output.json`` in an output folder.

Each file medsyn writes is recorded with its size and SHA-256 at write time. ``--force`` deletes or
overwrites a file only while it is still that file: a name a user added to the manifest by hand, or a
file changed since, is not medsyn's to delete. Older manifests list names only; their files count as
unverified, so ``--force`` refuses them too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path

from medsyn_cli.fileio import write_text_atomic

MANIFEST = ".medsyn-output.json"
FORMAT = "medsyn-output-2"
_TMP = re.compile(r"^\..+\.tmp-(\d+)$")  # a temporary of a command (``.NAME.tmp-PID``)


def file_record(path: Path) -> dict:
    """What identifies a file medsyn has just written: its size and the SHA-256 of its content."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        return {"size": size, "sha256": hashlib.file_digest(fh, "sha256").hexdigest()}


def why_not_ours(path: Path, record: dict | None) -> str | None:
    """None when ``path`` is still the regular file ``record`` describes, else why it is not medsyn's."""
    if not isinstance(record, dict) or "sha256" not in record:
        return "has no size and hash recorded (written by an older medsyn)"
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return "is no longer the file medsyn wrote (now a link or folder)"
        if st.st_size != record.get("size") or file_record(path)["sha256"] != record["sha256"]:
            return "changed after medsyn wrote it"
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    return None


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest with ``files`` as {relative path: record}; None when there is none.
    An old manifest's name list becomes records of None (unverified)."""
    try:
        doc = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    files = doc.get("files")
    if isinstance(files, list):
        doc["files"] = {str(name): None for name in files}
    elif not isinstance(files, dict):
        return None
    return doc


def write_manifest(folder: Path, command: str, records: dict[str, dict], *, merge: bool = False) -> None:
    """Record files (relative to ``folder``, each with :func:`file_record`) as written by ``medsyn COMMAND``."""
    from medsyn_cli import __version__

    old = read_manifest(folder) if merge else None
    files = {**(old["files"] if old else {}), **records}
    doc = {"written_by": "medsyn", "format": FORMAT, "version": __version__,
           "command": (old or {}).get("command") or command,  # the folder stays the first command's output
           "created": (old or {}).get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
           "files": dict(sorted(files.items()))}
    write_text_atomic(Path(folder) / MANIFEST, json.dumps(doc, indent=1) + "\n")


def record_folder(folder: Path) -> dict[str, dict]:
    """Records of every regular file under ``folder`` (a folder a command has just filled)."""
    records = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                records[path.relative_to(folder).as_posix()] = file_record(path)
    return records


def first_unaccounted(folder: Path, files: dict[str, dict | None]) -> tuple[str, str] | None:
    """The first entry of ``folder`` (walked in name order, links not followed) that its manifest does
    not account for, with why: not listed, changed since it was written, or a folder holding nothing
    listed. Temporaries of commands are skipped (removed with the folder)."""
    holders = {p for f in files for p in Path(f).parents}
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        rel_dir = here.relative_to(folder)
        if rel_dir != Path(".") and rel_dir not in holders:
            return rel_dir.as_posix() + "/", "was not written by medsyn"
        dirnames.sort()
        links = [d for d in dirnames if (here / d).is_symlink()]  # os.walk lists a linked folder as a folder
        for name in sorted(filenames + links):
            rel = (rel_dir / name).as_posix()
            if _TMP.match(name) or rel == MANIFEST:
                continue
            if rel not in files:
                return rel, "was not written by medsyn"
            why = why_not_ours(here / name, files[rel])
            if why is not None:
                return rel, why
    return None
