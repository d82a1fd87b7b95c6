"""Files that are never half-written: atomic writes (temporary name, fsync, rename) and file hashes.

Everything posedive writes into a release, a plan or a cache goes through ``atomic_write_bytes``: a
reader (or a resumed build) sees the old file or the new one, never a partial one. The temporary file
is ``<name>.tmp-<pid>`` beside the target (``temporary_path``); a killed writer leaves it behind, and
``remove_temporaries`` deletes exactly those names for the files it is given, nothing else.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

__all__ = ["atomic_write_bytes", "atomic_write_text", "remove_temporaries", "sha256_file", "temporary_path"]

TEMPORARY_MARK = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """The name this process writes ``path`` under until it is complete."""
    return path.with_name(f"{path.name}{TEMPORARY_MARK}{os.getpid()}")


def remove_temporaries(root: Path, relpaths: Iterable[str]) -> list[Path]:
    """Delete the temporaries (``<name>.tmp-<pid>``) that killed writers left for the files ``relpaths``
    of ``root``; any other file, whatever its name, is left alone. Returns what was deleted."""
    names_by_folder: dict[Path, set[str]] = {}
    for relpath in relpaths:
        target = root / relpath
        names_by_folder.setdefault(target.parent, set()).add(target.name)
    removed = []
    for folder, names in sorted(names_by_folder.items()):
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.iterdir()):
            name, mark, pid = candidate.name.rpartition(TEMPORARY_MARK)
            if mark and name in names and pid.isdigit() and pid.isascii() and candidate.is_file() \
                    and not candidate.is_symlink():
                candidate.unlink(missing_ok=True)
                removed.append(candidate)
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
