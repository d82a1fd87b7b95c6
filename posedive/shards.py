"""Writing and reading shards so that nothing is ever half-written.

A shard is built in memory-sized pieces into ``<name>.tmp-<pid>``, flushed, fsynced and renamed into
place: a reader (or a resumed build) sees either a complete shard or none. Tar members carry a fixed
mtime, owner and mode, so the same samples always give the same bytes (and the same sha256 in the
manifest), whichever machine or run wrote them.

``inspect_shard`` reads a shard once, from any binary stream (a local file or a remote one), and
says what it holds: its hash and size, every sample's fields and provenance, and whether it is a
complete tar archive at all; a damaged one raises ``FormatError`` naming it, never ``tarfile``'s error.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
from PIL import Image

from .errors import FormatError
from .files import _fsync_dir, temporary_path
from .paths import shard_name
from .storage import Store, StoreFile, Written

# tarfile ends an archive with two zero blocks; a shard without them was cut short.
END_OF_ARCHIVE_BYTES = 2 * tarfile.BLOCKSIZE

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


def _write_samples(handle: BinaryIO, samples: Iterable[Mapping[str, bytes | str]]) -> int:
    """Write the samples as a tar archive; the bytes its members take (all but the end-of-archive)."""
    from webdataset import TarWriter

    # encoder=False: fields are bytes already, so webdataset adds nothing that could vary.
    writer = TarWriter(handle, encoder=False, mtime=FIXED_MTIME, user="posedive", group="posedive")
    for sample in samples:
        writer.write(dict(sample))
    members_bytes = writer.tarstream.offset  # where the end-of-archive blocks begin
    writer.close()
    return members_bytes


def write_shard(release_dir: Path, shard: int, samples: Iterable[Mapping[str, bytes | str]]) -> Path:
    """Write WebDataset samples (dicts with ``__key__`` and already-encoded fields) atomically."""
    path = release_dir / shard_name(shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with open(tmp, "wb") as handle:
        _write_samples(handle, samples)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


def write_shard_to(store: Store, shard: int, samples: Iterable[Mapping[str, bytes | str]]) -> Written:
    """Write a shard into a release location (local or remote) with the same protocol and the same
    bytes as ``write_shard``; its sha256 and size are taken from the stream as it is written."""
    return store.write_with(shard_name(shard), lambda handle: _write_samples(handle, samples))


class ArchiveWritten(NamedTuple):
    """A shard-format tar just written: its sha256 and size, and the bytes its members take (the
    archive less its end-of-archive blocks), which is what joining archives copies."""

    sha256: str
    bytes: int
    members_bytes: int


def write_samples_to(store: Store, relpath: str, samples: Iterable[Mapping[str, bytes | str]]) -> ArchiveWritten:
    """Write samples as a shard-format tar at ``relpath`` of ``store``, atomically."""
    members: list[int] = []
    written = store.write_with(relpath, lambda handle: members.append(_write_samples(handle, samples)))
    return ArchiveWritten(sha256=written.sha256, bytes=written.bytes, members_bytes=members[0])


def archive_end(members_bytes: int) -> bytes:
    """The end of a tar archive whose members take ``members_bytes``, as ``tarfile`` closes one: two
    zero blocks, then zeros up to a whole record."""
    return b"\0" * (END_OF_ARCHIVE_BYTES + (-(members_bytes + END_OF_ARCHIVE_BYTES)) % tarfile.RECORDSIZE)


def join_archives_to(store: Store, relpath: str, parts: Sequence[tuple[str, int]], block: int = 1 << 18) -> Written:
    """Write, at ``relpath``, the tar archive holding the members of the archives ``parts`` (their
    paths in ``store`` and ``members_bytes``), in order: their members' bytes copied as they are, then
    one end-of-archive. A tar member's bytes do not depend on where it lies, so archives written by
    ``write_samples_to`` join into the bytes ``write_shard_to`` gives for all their samples, with no
    sample decoded or held: only ``block`` bytes at a time."""

    def fill(handle: BinaryIO) -> None:
        total = 0
        for part, members_bytes in parts:
            left = members_bytes
            with store.open(part, "rb") as source:
                while left and (data := source.read(min(block, left))):
                    handle.write(data)
                    left -= len(data)
            if left:
                raise FormatError(f"{store.url(part)}: ends {left} bytes before its last member does",
                                  hint="the file was cut short; build it again")
            total += members_bytes
        handle.write(archive_end(total))

    return store.write_with(relpath, fill)


def _open_shard(shard: "Path | str | StoreFile") -> BinaryIO:
    """A local shard through ``open``, a remote store's file through its own ``open``."""
    return open(shard, "rb") if isinstance(shard, (str, os.PathLike)) else shard.open("rb")


def iter_shard_members(shard: "Path | StoreFile") -> Iterator[tuple[str, str, bytes]]:
    """``(key, field, bytes)`` of every member of a shard (a local path or a remote store's file), in
    the order written."""

    with _open_shard(shard) as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
        for member in tar:
            key, _, field = member.name.partition(".")
            yield key, field, tar.extractfile(member).read()


class ShardScan(NamedTuple):
    samples: int  # members whose field is ``json``: one per sample
    sha256: str  # of the whole file, as ``sha256_file`` gives it
    bytes: int  # the file's size


class _HashingReader:
    """A read-only stream that hashes and counts every byte read from it, and remembers where its last
    non-zero byte ended (so the zero blocks closing a tar archive can be checked afterwards)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self.data_end = 0

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(size)
        self.digest.update(block)
        content = len(block.rstrip(b"\0"))
        if content:
            self.data_end = self.size + content
        self.size += len(block)
        return block


@dataclass
class ShardContents:
    """What one read of a shard found: its scan, each sample's fields (in the order written) and the
    bytes of its ``json`` member, and members that break the one-sample-one-run-of-members layout."""

    scan: ShardScan
    fields: dict[str, list[str]] = dataclass_field(default_factory=dict)
    provenance: dict[str, bytes] = dataclass_field(default_factory=dict)
    layout_problems: list[str] = dataclass_field(default_factory=list)


def _read_members(tar: tarfile.TarFile, contents: ShardContents) -> None:
    previous = None
    for member in tar:
        key, _, name = member.name.partition(".")
        fields = contents.fields.get(key)
        if fields is None:
            fields = contents.fields[key] = []
        elif key != previous:
            contents.layout_problems.append(f"sample {key!r} is split: member {member.name!r} comes after another sample's")
        if name in fields:
            contents.layout_problems.append(f"member {member.name!r} appears twice")
        fields.append(name)
        if name == "json" and member.isfile():
            contents.provenance[key] = tar.extractfile(member).read()
        previous = key


def inspect_shard_stream(handle: BinaryIO, name: str, chunk: int = 1 << 20) -> ShardContents:
    """Read a shard from ``handle`` once (``name`` is what errors call it): tar headers and ``json``
    members are parsed from the stream that is hashed; other members' data is read through."""
    reader = _HashingReader(handle)
    contents = ShardContents(scan=ShardScan(samples=0, sha256="", bytes=0))
    try:
        with tarfile.open(fileobj=reader, mode="r|", bufsize=chunk) as tar:  # type: ignore[arg-type]
            _read_members(tar, contents)
            end = tar.offset
    except (tarfile.TarError, EOFError) as error:
        raise FormatError(f"{name}: not a readable tar archive ({error})",
                          hint="the file is damaged or was cut short; rebuild that shard") from None
    while reader.read(chunk):  # whatever follows the end-of-archive blocks
        pass
    if reader.size - end < END_OF_ARCHIVE_BYTES or reader.data_end > end:
        raise FormatError(f"{name}: the tar archive is cut short (no end-of-archive blocks after its last member "
                          f"at byte {end} of {reader.size})", hint="rebuild that shard")
    samples = sum("json" in fields for fields in contents.fields.values())
    contents.scan = ShardScan(samples=samples, sha256=reader.digest.hexdigest(), bytes=reader.size)
    return contents


def inspect_shard(shard: "Path | StoreFile", chunk: int = 1 << 20) -> ShardContents:
    with _open_shard(shard) as handle:
        return inspect_shard_stream(handle, str(shard), chunk)


def scan_shard(shard: "Path | StoreFile", chunk: int = 1 << 20) -> ShardScan:
    """Count a shard's samples and hash it in one read of the file: tar headers are parsed from the
    same stream that is hashed (member data is skipped by reading through it)."""
    return inspect_shard(shard, chunk).scan


def iter_provenance(shards: Iterable["Path | StoreFile"]) -> Iterator[dict]:
    """The provenance record of every sample of the shards, in order."""
    import json

    for shard in shards:
        for _, field, data in iter_shard_members(shard):
            if field == "json":
                yield json.loads(data)
