"""Writing and reading shards so that nothing is ever half-written.

A shard is built in memory-sized pieces into ``<name>.tmp-<pid>``, flushed, fsynced and renamed into
place: a reader (or a resumed build) sees either a complete shard or none. Tar members carry a fixed
mtime, owner and mode, so the same samples always give the same bytes (and the same sha256 in the
manifest), whichever machine or run wrote them.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping, NamedTuple

import numpy as np
from PIL import Image

from .files import _fsync_dir
from .paths import shard_name

FIXED_MTIME = 0.0
JPEG_QUALITY = 95


def encode_image(image: Image.Image | np.ndarray, fmt: str) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    if fmt == "jpg":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    elif fmt == "png":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(f"unsupported image format {fmt!r} (jpg or png)")
    return buffer.getvalue()


def write_shard(release_dir: Path, shard: int, samples: Iterable[Mapping[str, bytes | str]]) -> Path:
    """Write WebDataset samples (dicts with ``__key__`` and already-encoded fields) atomically."""
    from webdataset import TarWriter

    path = release_dir / shard_name(shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        # encoder=False: fields are bytes already, so webdataset adds nothing that could vary.
        writer = TarWriter(handle, encoder=False, mtime=FIXED_MTIME, user="posedive", group="posedive")
        for sample in samples:
            writer.write(dict(sample))
        writer.close()
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def remove_stale_temporaries(folder: Path) -> int:
    """Delete ``*.tmp-*`` files left by a killed build; they are never part of a release."""
    removed = 0
    if folder.is_dir():
        for path in sorted(folder.rglob("*.tmp-*")):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def iter_shard_members(shard: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(key, field, bytes)`` of every member of a shard, in the order written."""
    import tarfile

    with tarfile.open(shard) as tar:
        for member in tar:
            key, _, field = member.name.partition(".")
            yield key, field, tar.extractfile(member).read()


class ShardScan(NamedTuple):
    samples: int  # members whose field is ``json``: one per sample
    sha256: str  # of the whole file, as ``sha256_file`` gives it
    bytes: int  # the file's size


class _HashingReader:
    """A read-only file that hashes and counts every byte read from it."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(size)
        self.digest.update(block)
        self.size += len(block)
        return block


def scan_shard(shard: Path, chunk: int = 1 << 20) -> ShardScan:
    """Count a shard's samples and hash it in one read of the file: tar headers are parsed from the
    same stream that is hashed (member data is skipped by reading through it)."""
    import tarfile

    with open(shard, "rb") as handle:
        reader = _HashingReader(handle)
        samples = 0
        with tarfile.open(fileobj=reader, mode="r|", bufsize=chunk) as tar:  # type: ignore[arg-type]
            for member in tar:
                samples += member.name.partition(".")[2] == "json"
        while reader.read(chunk):  # whatever follows the end-of-archive blocks
            pass
    return ShardScan(samples=samples, sha256=reader.digest.hexdigest(), bytes=reader.size)


def iter_provenance(shards: Iterable[Path]) -> Iterator[dict]:
    """The provenance record of every sample of the shards, in order."""
    import json

    for shard in shards:
        for _, field, data in iter_shard_members(shard):
            if field == "json":
                yield json.loads(data)
