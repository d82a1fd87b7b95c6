"""Finished chunks, kept in the release's build state until their shard is assembled from them.

Nobody holds a shard built in several chunks (``output.units_per_chunk``) while its chunks are built:
the worker that finishes a chunk writes it into ``.build/chunks/`` of the release location (a local
folder or an fsspec URL, with the store's atomic protocol, under the names ``paths.chunk_files``
gives): its rejected log, its samples as a tar, then its ``ChunkReceipt``, last, which marks the chunk
as done and holds the hashes of the other two. Only the receipt goes back to the driver.

Once every chunk of a shard is there, the shard is assembled by streaming (``ChunkStore.assemble``):
the members of the chunks' tars are copied in plan order, a block at a time and never decoded, into
the shard's tar (``shards.join_archives_to``); their rejected logs are concatenated into the shard's
and their stats merged. Chunk ``i`` holds keys before chunk ``i + 1``, each chunk is sorted by key and
a tar member's bytes do not depend on where it lies, so this gives the bytes of the shard written
whole from the merged samples, and whoever assembles holds no sample (nor loads the tar writer's
libraries: joining is a byte copy). The chunk files are deleted only once the shard is in place (renamed, or copied to its
key): they are posedive's own build state, and nothing but those names is ever deleted.

A restarted build keeps every chunk whose receipt is this recipe's and this plan's, names exactly the
plan's units of that chunk, and whose files have the sizes and hashes it records
(``ChunkStore.kept``); a chunk that fails is moved into ``.build/rejected-chunks/`` (never deleted) and
built again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import BinaryIO, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import paths
from ..plan import Plan, WorkUnit
from ..release import ShardStats, StageTotals, UnreadableImage
from ..shards import archive_end, join_archives_to, write_samples_to
from ..storage import Store
from .progress import UnitEvent
from .receipt import ShardReceipt, rejected_jsonl
from .shard_job import ShardResult

logger = logging.getLogger(__name__)

COPY_BLOCK = 1 << 18


class ChunkReceipt(BaseModel):
    """One chunk written into the release's build state: which chunk of which plan it is, the keys of
    the plan's units it built, the sizes and sha256s of its samples and rejected log, its stats and
    the progress events its build emitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shard: int
    chunk: int
    chunks: int
    recipe_hash: str
    plan_hash: str
    unit_keys: list[str]
    samples: int
    sha256: str
    bytes: int
    members_bytes: int
    """The bytes the tar's members take (the tar less its end-of-archive): what assembly copies."""
    rejected: int
    rejected_sha256: str
    rejected_bytes: int
    stats: ShardStats
    events: list[UnitEvent] = []


def merge_stats(parts: Sequence[ShardStats]) -> ShardStats:
    """One shard's stats from its chunks' (in chunk order), as the shard built whole records them:
    totals summed, short identities joined, each unreadable image once (its first reason), sorted."""
    if len(parts) == 1:
        return parts[0]
    totals = StageTotals()
    for part in parts:
        totals = totals.add(part.totals)
    unreadable: dict[str, str] = {}
    for part in parts:
        for image in part.unreadable:
            unreadable.setdefault(image.image, image.reason)
    return ShardStats(shard=parts[0].shard, totals=totals,
                      short_pids=sorted({pid for part in parts for pid in part.short_pids}),
                      generator=parts[0].generator, estimator=parts[0].estimator,
                      unreadable=[UnreadableImage(image=image, reason=reason)
                                  for image, reason in sorted(unreadable.items())])


@dataclass(frozen=True)
class ChunkCheck:
    """What checking a chunk found: its receipt when it can be kept, else why not (``None``: not built)."""

    receipt: ChunkReceipt | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ChunkStore:
    """The chunks of one build (one recipe, one plan) in a release location. Picklable: workers write
    through it, the driver checks and assembles through it."""

    store: Store
    recipe_hash: str
    plan_hash: str

    def write(self, shard: int, chunk: int, chunks: int, units: Sequence[WorkUnit],
              result: ShardResult) -> ChunkReceipt:
        """Write one built chunk, its receipt last; idempotent (the same chunk gives the same bytes)."""
        rejected_name, samples_name, receipt_name = paths.chunk_files(shard, chunk)
        rejected = self.store.write_text(rejected_name, rejected_jsonl(result.rejected))
        samples = write_samples_to(self.store, samples_name, result.samples)
        receipt = ChunkReceipt(shard=shard, chunk=chunk, chunks=chunks, recipe_hash=self.recipe_hash,
                               plan_hash=self.plan_hash, unit_keys=[unit.key for unit in units],
                               samples=len(result.samples), sha256=samples.sha256, bytes=samples.bytes,
                               members_bytes=samples.members_bytes,
                               rejected=len(result.rejected), rejected_sha256=rejected.sha256,
                               rejected_bytes=rejected.bytes, stats=result.stats, events=list(result.events))
        self.store.write_text(receipt_name, receipt.model_dump_json() + "\n")
        return receipt

    def check(self, shard: int, chunk: int, units: Sequence[WorkUnit]) -> ChunkCheck:
        """Whether chunk ``chunk`` of ``shard`` (the plan's ``units``) is built and can be kept."""
        rejected_name, samples_name, receipt_name = paths.chunk_files(shard, chunk)
        if not self.store.is_file(receipt_name):
            return ChunkCheck()
        try:
            receipt = ChunkReceipt.model_validate_json(self.store.read_bytes(receipt_name))
        except (ValidationError, UnicodeDecodeError):
            return ChunkCheck(reason="unreadable")
        if (receipt.recipe_hash, receipt.plan_hash) != (self.recipe_hash, self.plan_hash) \
                or (receipt.shard, receipt.chunk) != (shard, chunk) or receipt.unit_keys != [u.key for u in units]:
            return ChunkCheck(reason="other-plan")
        if receipt.bytes != receipt.members_bytes + len(archive_end(receipt.members_bytes)):
            return ChunkCheck(reason="unreadable")
        for relpath, size, sha256 in ((samples_name, receipt.bytes, receipt.sha256),
                                      (rejected_name, receipt.rejected_bytes, receipt.rejected_sha256)):
            if not self.store.is_file(relpath):
                return ChunkCheck(reason="missing")
            if self.store.size(relpath) != size or self.store.sha256(relpath) != sha256:
                return ChunkCheck(reason="damaged")
        return ChunkCheck(receipt=receipt)

    def move_aside(self, shard: int, chunk: int, reason: str) -> list[str]:
        """Move a failed chunk's files (whichever exist) into ``.build/rejected-chunks/`` as
        ``<name>.<reason>``, never over an earlier one; the receipt first, so the chunk reads as not built."""
        present = [relpath for relpath in paths.chunk_files(shard, chunk) if self.store.is_file(relpath)]
        copy = 1
        while any(self.store.exists(paths.rejected_chunk_name(relpath, reason, copy)) for relpath in present):
            copy += 1
        moved = []
        for relpath in reversed(present):
            target = paths.rejected_chunk_name(relpath, reason, copy)
            self.store.move(relpath, target)
            moved.append(target)
        return moved

    def kept(self, plan: Plan, shards: Sequence[int]) -> dict[int, dict[int, ChunkReceipt]]:
        """The chunks of ``shards`` (those built in several) an earlier run finished and that pass their
        checks, by shard and chunk; the ones that fail are moved aside, to be built again."""
        kept: dict[int, dict[int, ChunkReceipt]] = {}
        for shard in shards:
            chunks = plan.shard_chunks(shard)
            if len(chunks) < 2:
                continue
            for index, units in enumerate(chunks):
                check = self.check(shard, index, units)
                if check.receipt is not None:
                    kept.setdefault(shard, {})[index] = check.receipt
                elif check.reason is not None:
                    moved = self.move_aside(shard, index, check.reason)
                    logger.warning("chunk %d of shard %d failed its checks (%s): moved to %s and built again",
                                   index, shard, check.reason, ", ".join(moved))
        if kept:
            logger.info("kept %d finished chunk(s) of %d shard(s) from an earlier run",
                        sum(map(len, kept.values())), len(kept))
        return kept

    def assemble(self, receipts: Sequence[ChunkReceipt]) -> ShardReceipt:
        """Write the shard of ``receipts`` (all its chunks) from its chunk files, streaming them in
        chunk order, sidecars first and the shard last; then delete the chunk files."""
        receipts = sorted(receipts, key=lambda receipt: receipt.chunk)
        shard = receipts[0].shard
        files = [paths.chunk_files(shard, receipt.chunk) for receipt in receipts]
        self.store.write_with(paths.rejected_name(shard), lambda handle: self._concatenate(handle, [f[0] for f in files]))
        stats = merge_stats([receipt.stats for receipt in receipts])
        self.store.write_text(paths.shard_stats_name(shard), stats.model_dump_json(indent=2) + "\n")
        written = join_archives_to(self.store, paths.shard_name(shard),
                                   [(f[1], receipt.members_bytes) for f, receipt in zip(files, receipts)])
        # The shard is in place: its chunks are no longer needed.
        self.remove(shard, [receipt.chunk for receipt in receipts])
        return ShardReceipt(shard=shard, name=paths.shard_name(shard), samples=sum(r.samples for r in receipts),
                            rejected=sum(r.rejected for r in receipts), sha256=written.sha256, bytes=written.bytes,
                            stats=stats, events=[event for receipt in receipts for event in receipt.events])

    def remove(self, shard: int, chunks: Sequence[int]) -> None:
        """Delete the chunk files of ``chunks`` of ``shard``, the receipt last (only posedive's names)."""
        for chunk in chunks:
            for relpath in paths.chunk_files(shard, chunk):
                self.store.remove(relpath)

    def discard_leftovers(self, plan: Plan, shards: Sequence[int]) -> None:
        """Delete chunk files an interrupted run left for ``shards``, which are built already."""
        present = set(self.store.listdir(paths.CHUNKS_DIR))
        if not present:
            return
        for shard in shards:
            count = len(plan.shard_chunks(shard))
            if count > 1 and any(relpath.rsplit("/", 1)[-1] in present
                                 for chunk in range(count) for relpath in paths.chunk_files(shard, chunk)):
                self.remove(shard, range(count))

    def _concatenate(self, handle: BinaryIO, relpaths: Sequence[str]) -> None:
        for relpath in relpaths:
            with self.store.open(relpath, "rb") as source:
                while block := source.read(COPY_BLOCK):
                    handle.write(block)
