"""Every versioned file format posedive writes and reads back, and the one check its readers call.

Each format has the version this posedive writes and the oldest version it still reads. A reader
calls ``check_version`` on the version a file states before it parses the rest of the file: a file
from a newer posedive is refused with the upgrade to install, a file older than any this posedive
reads is refused with the posedive command that writes it again, and a file in between is read.
A format changes its version only when readers must change; raising ``oldest`` drops old files.

Caches keep no version in their entries: the version of what decides an entry (the renderer, a
pose bank importer, the bank format) is part of its key, so an entry of another version is never
found, and an entry that cannot be parsed is made again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from . import __version__
from .errors import FormatError, PathNotFound

Model = TypeVar("Model", bound=BaseModel)

UPGRADE = "pip install -U posedive"


@dataclass(frozen=True)
class DiskFormat:
    """One file format: what it is, where it lies, the version written, the oldest version read, and
    the command that writes a file of it again (for files older than ``oldest``)."""

    name: str
    file: str
    version: int
    rewrite: str
    oldest: int = 1

    def readable(self, version: int) -> bool:
        return self.oldest <= version <= self.version

    def versions(self) -> str:
        return str(self.version) if self.oldest == self.version else f"{self.oldest} to {self.version}"


RELEASE = DiskFormat("release", "manifest.json (and the release folder it lists)", 1,
                     "build the release again from its recipe.yaml with `posedive build RECIPE`")
HUB_RECORD = DiskFormat("Hub record", "hub.json beside a release", 1,
                        "publish the release again with `posedive push RELEASE`")
STATS = DiskFormat("statistics report", "stats.json of `posedive stats`", 1,
                   "run `posedive stats SOURCE_OR_RECIPE` again")
SPLIT_FOLDER = DiskFormat("split folder", "split.json of `posedive splits`", 1,
                          "make the split again with `posedive splits SOURCE --by viewpoint|pose`")
TRAINING_PAIRS = DiskFormat("training pairs", "the json member of a pair in a pairs shard", 1,
                            "write the pairs again with `posedive pairs VIDEO --out DIR`")
GENERATOR_METADATA = DiskFormat("generator metadata", "posedive_generator.json of a generator folder", 1,
                                "train the generator again with `posedive train-generator CONFIG`")
CONDITION_CONTRACT = DiskFormat("condition contract", "'conditions' in a generator's pose_guider/config.json", 1,
                                "save the generator again with this posedive")
POSE_BANK = DiskFormat("pose bank", "a pose bank .npz ('format' array)", 2,
                       "build the bank again with `posedive posebank build`", oldest=1)
BUILD_CLAIM = DiskFormat("build claim", ".build/claims/*.json of a running build", 1,
                         "let that build finish (or delete its claim once it is known to be dead)")
# Not read back: part of the key of every cached condition set, so a new renderer renders anew.
RENDERER = DiskFormat("renderer", "cached condition sets (key)", 1, "nothing: entries are rendered again")

FORMATS: dict[str, DiskFormat] = {fmt.name: fmt for fmt in (
    RELEASE, HUB_RECORD, STATS, SPLIT_FOLDER, TRAINING_PAIRS, GENERATOR_METADATA, CONDITION_CONTRACT, POSE_BANK,
    BUILD_CLAIM, RENDERER,
)}


def check_version(fmt: DiskFormat, found: object, source: object) -> int:
    """The version ``found`` in the file ``source`` if this posedive reads it; otherwise a
    ``FormatError`` naming the file, its version, this posedive's version, and the command to run."""
    if isinstance(found, bool) or not isinstance(found, int):
        raise FormatError(f"{source}: not a {fmt.name} file this posedive knows (format version {found!r}; "
                          f"{fmt.file} states an integer version)", hint=f"if a newer posedive wrote it: {UPGRADE}")
    if fmt.readable(found):
        return found
    reads = f"this posedive ({__version__}) reads {fmt.name} format {fmt.versions()}"
    if found > fmt.version:
        raise FormatError(f"{source}: {fmt.name} format {found} is newer than {reads}",
                          hint=f"a newer posedive wrote it: upgrade with `{UPGRADE}`")
    raise FormatError(f"{source}: {fmt.name} format {found} is older than {reads}", hint=fmt.rewrite)


def stated_version(data: object, key: str = "format_version", default: int | None = None) -> object:
    """The version a parsed JSON object states under ``key`` (``default`` when it states none, for
    files written before the format had a version)."""
    if isinstance(data, dict):
        return data.get(key, default)
    return None


def read_json(fmt: DiskFormat, path: Path, model: type[Model], key: str = "format_version") -> Model:
    """The JSON file ``path`` of format ``fmt`` as ``model``, its version checked before its fields."""
    try:
        # A local path, or a remote store's file (``posedive.storage.StoreFile``), which reads the same way.
        data = json.loads(path.read_text() if hasattr(path, "read_text") else Path(path).read_text())
    except FileNotFoundError:
        raise PathNotFound(f"{path}: no such {fmt.name} file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"{path}: cannot be read as a {fmt.name} file: {error}") from None
    check_version(fmt, stated_version(data, key, default=1), path)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise FormatError(f"{path}: not a valid {fmt.name} file: {error}") from None


__all__ = ["DiskFormat", "FORMATS", "check_version", "read_json", "stated_version"]
