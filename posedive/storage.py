"""Where a release lives: a local folder or any fsspec URL (``s3://``, ``gs://``, ``memory://``, ...).

A ``Store`` names files by their path relative to the release (``data/train-00000.tar``) and offers
the few operations a build needs, with the same protocol on every file system: a file appears under
its name only once it is complete.

* Local folders keep ``posedive.files``' protocol exactly: write ``<name>.tmp-<pid>``, fsync, rename.
* Object stores have no rename, but a PUT is atomic per object: a key holds the old object or the
  whole new one, never part of one. A file is therefore written under its temporary key
  (``<name>.tmp-<pid>``) and copied to its own key once complete, then the temporary key is deleted.
  A killed writer leaves at most a temporary key, which ``remove_temporaries`` deletes by name as it
  does for local folders; a reader that sees the final key sees the complete file.

The URL's options (endpoint, credentials) come from fsspec's own configuration: environment variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) or ``storage_options`` passed here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

from .errors import PathNotFound
from .files import TEMPORARY_MARK, atomic_write_bytes, sha256_file, temporary_path

__all__ = ["Store", "StoreFile", "Written", "is_url", "open_store"]


def is_url(location: str | Path) -> bool:
    """Whether ``location`` names a remote (fsspec) location rather than a local path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through it, so a shard's sha256 and size
    are known when it is written, without reading it back."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()


@dataclass(frozen=True)
class Written:
    """A file just written: its sha256 and its size in bytes."""

    sha256: str
    bytes: int


@dataclass(frozen=True, order=True)
class StoreFile:
    """One file of a remote store, with the few ``pathlib.Path`` methods the release's readers use
    (``open``, ``is_file``, ``exists``, ``read_bytes``, ``name``), so the same code reads a local
    release (through ``Path``) and a remote one (through this)."""

    store: "Store" = field(compare=False)
    relpath: str

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    def open(self, mode: str = "rb") -> BinaryIO:
        return self.store.open(self.relpath, mode)

    def is_file(self) -> bool:
        return self.store.is_file(self.relpath)

    def exists(self) -> bool:
        return self.store.exists(self.relpath)

    def read_bytes(self) -> bytes:
        return self.store.read_bytes(self.relpath)

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def __str__(self) -> str:
        return self.store.url(self.relpath)


@dataclass
class Store:
    """The files of one release location; ``location`` is a local path or an fsspec URL."""

    location: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import fsspec
        from fsspec.config import conf

        self.location = str(self.location).rstrip("/")
        if is_url(self.location):
            # This process's fsspec configuration for the protocol (endpoint, credentials: from
            # ``FSSPEC_<PROTOCOL>_<OPTION>`` variables or fsspec's config files) is taken into the
            # store's options, so a store sent to a worker opens the same location there.
            protocol = self.location.split("://", 1)[0]
            self.storage_options = {**conf.get(protocol, {}), **self.storage_options}
        self.fs, self.root = fsspec.core.url_to_fs(self.location, **self.storage_options)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    def __getstate__(self) -> dict:  # the file system object is remade where the store is unpickled
        return {"location": self.location, "storage_options": self.storage_options}

    def __setstate__(self, state: dict) -> None:
        self.location, self.storage_options = state["location"], state["storage_options"]
        self.__post_init__()

    def path(self, relpath: str) -> str:
        """The file's full path on its file system (local: an absolute path)."""
        return f"{self.root}/{relpath}" if relpath else self.root

    def url(self, relpath: str) -> str:
        """The file's name as the user reads it: a local path, or the URL with its scheme."""
        return self.path(relpath) if self.local else f"{self.location}/{relpath}"

    def file(self, relpath: str) -> "Path | StoreFile":
        """The file as its readers take it: a ``Path`` in a local folder, a ``StoreFile`` elsewhere."""
        return self.local_path(relpath) if self.local else StoreFile(self, relpath)

    def local_path(self, relpath: str = "") -> Path:
        if not self.local:
            raise ValueError(f"{self.location} is not a local folder")
        return Path(self.path(relpath))

    def _fresh(self) -> None:
        # Other processes (workers) write here too: never answer from a cached listing.
        if not self.local:
            self.fs.invalidate_cache()

    def is_file(self, relpath: str) -> bool:
        self._fresh()
        return self.fs.isfile(self.path(relpath))

    def exists(self, relpath: str = "") -> bool:
        self._fresh()
        return self.fs.exists(self.path(relpath))

    def size(self, relpath: str) -> int:
        return int(self.fs.size(self.path(relpath)))

    def read_bytes(self, relpath: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(relpath))
        except FileNotFoundError:
            raise PathNotFound(f"{self.url(relpath)} does not exist") from None

    def open(self, relpath: str, mode: str = "rb") -> BinaryIO:
        return self.fs.open(self.path(relpath), mode)

    def sha256(self, relpath: str, chunk: int = 1 << 20) -> str:
        if self.local:
            return sha256_file(self.local_path(relpath), chunk)
        digest = hashlib.sha256()
        with self.open(relpath) as handle:
            while block := handle.read(chunk):
                digest.update(block)
        return digest.hexdigest()

    def listdir(self, relfolder: str) -> list[str]:
        """Names (not paths) of the files directly in ``relfolder``; empty when it does not exist."""
        folder = self.path(relfolder)
        self._fresh()
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        return sorted(entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in entries if entry["type"] == "file")

    def top_level_names(self) -> list[str]:
        """Names of the files and folders directly at the location; empty when it does not exist."""
        self._fresh()
        try:
            entries = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return []
        return sorted({str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries} - {""})

    def walk_files(self) -> list[str]:
        """Every file under the location, as relative paths."""
        if not self.exists():
            return []
        found = [str(name) for name in self.fs.find(self.root)]
        return sorted(name[len(self.root) + 1:] for name in found if name.startswith(self.root + "/"))

    def write_bytes(self, relpath: str, data: bytes) -> Written:
        """Write a file atomically (see the module's note)."""
        if self.local:
            atomic_write_bytes(self.local_path(relpath), data)
        else:
            self.write_with(relpath, lambda handle: handle.write(data))
        return Written(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))

    def write_text(self, relpath: str, text: str) -> Written:
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_with(self, relpath: str, fill: Callable[[BinaryIO], object]) -> Written:
        """Write a file atomically by streaming: ``fill`` writes into the handle it is given."""
        target = self.path(relpath)
        tmp = f"{target}{TEMPORARY_MARK}{os.getpid()}"
        if self.local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            tmp = str(temporary_path(Path(target)))
            with open(tmp, "wb") as handle:
                writer = _HashingWriter(handle)
                fill(writer)  # type: ignore[arg-type]
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            _fsync_folder(Path(target).parent)
        else:
            with self.fs.open(tmp, "wb") as handle:
                writer = _HashingWriter(handle)
                fill(writer)  # type: ignore[arg-type]
            self.fs.copy(tmp, target)
            self.fs.rm_file(tmp)
        return Written(sha256=writer.digest.hexdigest(), bytes=writer.size)

    def move(self, relpath: str, target: str) -> None:
        """Move a file within the location (local: a rename; object stores: copy, then delete)."""
        if self.local:
            Path(self.path(target)).parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path(relpath), self.path(target))
        else:
            self.fs.copy(self.path(relpath), self.path(target))
            self.fs.rm_file(self.path(relpath))

    def remove(self, relpath: str) -> None:
        """Delete one file posedive wrote (a missing one is not an error)."""
        try:
            self.fs.rm_file(self.path(relpath))
        except FileNotFoundError:
            pass

    def remove_temporaries(self, relpaths: list[str]) -> list[str]:
        """Delete the temporaries (``<name>.tmp-<pid>``) killed writers left for ``relpaths``; nothing
        else, whatever its name. Returns the relative paths deleted."""
        wanted: dict[str, set[str]] = {}
        for relpath in relpaths:
            folder, _, name = relpath.rpartition("/")
            wanted.setdefault(folder, set()).add(name)
        removed = []
        for folder, names in sorted(wanted.items()):
            for candidate in self.listdir(folder):
                name, mark, pid = candidate.rpartition(TEMPORARY_MARK)
                if mark and name in names and pid.isdigit() and pid.isascii():
                    relpath = f"{folder}/{candidate}" if folder else candidate
                    self.fs.rm_file(self.path(relpath))
                    removed.append(relpath)
        return removed


def _fsync_folder(folder: Path) -> None:
    from .files import _fsync_dir

    _fsync_dir(folder)


def open_store(location: str | Path, storage_options: dict[str, Any] | None = None) -> Store:
    """The store of a release location (a local path or an fsspec URL)."""
    return Store(str(location), dict(storage_options or {}))
