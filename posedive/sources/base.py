"""The record type every source reader yields, and the checks they share.

A reader turns a dataset layout on disk into a sorted list of ``SourceRecord`` (image path, person id,
camera id, split). Camera ids are kept as the dataset writes them (Market-1501's ``c1`` is camid 1).
Junk images (Market-1501 pid -1) are dropped and counted; distractors (pid 0) stay in the gallery.

Reading a source only lists file names: identity, camera and split come from the names and folders,
and no image is opened, so a source of millions of crops is indexed in seconds (a build checks each
image lazily, in the worker that loads it, and records an unreadable one in its shard's stats). A full
check (``check_images=True``: ``posedive stats``) decodes every image; those that cannot be read are
skipped, counted and listed in ``SourceIndex.unreadable``, and the check goes on past them.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Iterable, Literal

from PIL import Image, UnidentifiedImageError

from ..errors import SourceError

logger = logging.getLogger(__name__)

Split = Literal["train", "query", "gallery"]
SPLITS: tuple[Split, ...] = ("train", "query", "gallery")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    root: Path  # the folder ``relpath`` is relative to, shared by a reader's records
    relpath: str  # relative to the source root, with forward slashes: stable across machines
    pid: int
    camid: int
    split: Split

    @property
    def path(self) -> Path:
        # Made when asked for: building a million Paths would cost most of reading a source.
        return self.root / self.relpath


@dataclass
class SourceIndex:
    """All usable records of a source dataset, plus what was left out and why."""

    dataset: str
    format: str
    root: Path
    records: list[SourceRecord]
    junk: int = 0
    unreadable: list[str] = field(default_factory=list)

    def split(self, name: Split) -> list[SourceRecord]:
        return [record for record in self.records if record.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images and identities per split, in the form papers report them."""
        result = {}
        for name in SPLITS:
            records = self.split(name)
            result[name] = {"images": len(records), "identities": len({r.pid for r in records})}
        return result

    def train_by_pid(self) -> dict[int, list[SourceRecord]]:
        grouped: dict[int, list[SourceRecord]] = {}
        for record in self.split("train"):
            grouped.setdefault(record.pid, []).append(record)
        return {pid: sorted(records, key=attrgetter("relpath")) for pid, records in sorted(grouped.items())}

    def summary(self) -> str:
        parts = [f"{name}: {c['images']} images / {c['identities']} ids" for name, c in self.counts().items()]
        line = f"{self.dataset} ({self.format}) at {self.root}: " + ", ".join(parts)
        if self.junk:
            line += f"; {self.junk} junk images dropped"
        if self.unreadable:
            line += f"; {len(self.unreadable)} unreadable images skipped"
        return line


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise SourceError(f"{what}: folder {path} does not exist")
    return path


def list_image_names(folder: Path) -> list[str]:
    """The names of the image files of ``folder``, sorted: ``os.scandir`` reads each entry's type from
    the directory listing itself, so no file is opened (nor, on most file systems, even stat-ed)."""
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file())


def list_images(folder: Path) -> list[Path]:
    return [folder / name for name in list_image_names(folder)]


def image_problem(path: Path) -> str | None:
    """Why the image at ``path`` cannot be used (None: it decodes). The image is decoded in full, so a
    truncated file fails here as it would mid-build."""
    try:
        with Image.open(path) as image:
            image.load()
        return None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        return f"{type(error).__name__}: {error}"


def is_readable(path: Path) -> bool:
    return image_problem(path) is None


def finish_index(
    dataset: str, format: str, root: Path, candidates: Iterable[SourceRecord], junk: int = 0,
    check_images: bool = False,
) -> SourceIndex:
    """Sort the records and log the counts; with ``check_images``, decode every image first and drop
    (listing them) those that cannot be read."""
    records: list[SourceRecord] = []
    unreadable: list[str] = []
    for record in candidates:
        if not check_images or is_readable(record.path):
            records.append(record)
        else:
            unreadable.append(record.relpath)
    # In split order, each split by path: sorted split by split, by a key read in C (a million records).
    by_split: dict[str, list[SourceRecord]] = {name: [] for name in SPLITS}
    for record in records:
        by_split[record.split].append(record)
    records = [record for name in SPLITS for record in sorted(by_split[name], key=attrgetter("relpath"))]
    index = SourceIndex(dataset=dataset, format=format, root=root, records=records, junk=junk,
                        unreadable=sorted(unreadable))
    for relpath in index.unreadable:
        logger.warning("unreadable image skipped: %s", root / relpath)
    logger.info(index.summary())
    return index


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def count_by(records: Iterable[SourceRecord], attribute: str) -> Counter:
    return Counter(getattr(r, attribute) for r in records)
