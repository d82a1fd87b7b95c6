"""Chunks: a shard's work split below the shard, and the shard assembled from its finished chunks.

A recipe with ``output.units_per_chunk`` builds every shard in chunks of that many work units
(``Plan.shard_chunks``). Each chunk is a work item of its own: any worker builds it with a
``ShardBuilder``, in rounds of its own, so a cluster with more workers than shards keeps them all
busy. The chunks of a shard are the recipe's, never the cluster's, so each chunk's result, and the
shard assembled from the chunks in plan order, is the same on every engine and every cluster.

A worker writes a shard that is one chunk itself and returns its ``ShardReceipt``. A chunk of a shard
built in several is written by its worker into the release's build state
(``posedive.builder.chunk_store``), which returns a ``ChunkReceipt``; once a shard's chunks are all
there, the shard is assembled from those files by streaming them (``assemble_receipts``), so nothing
holds more than one sample of it. Chunks an earlier, interrupted run finished are kept and not built
again (``chunk_work``).

``merge_chunks`` is the same assembly as a pure merge of in-memory results: the samples of the chunks
(each sorted by key; chunk ``i`` holds keys before chunk ``i + 1``), their rejected attempts and
events in chunk order, their stats merged.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

from ..plan import Plan
from .chunk_store import ChunkReceipt, ChunkStore, merge_stats
from .receipt import ShardReceipt
from .shard_job import ShardResult, ShardWork

KeptChunks = Mapping[int, Mapping[int, ChunkReceipt]]
"""Finished chunks of an earlier run, by shard and chunk (``ChunkStore.kept``)."""


def chunk_work(plan: Plan, shards: Sequence[int], kept: KeptChunks | None = None) -> list[ShardWork]:
    """The work items of ``shards``, shard after shard and chunk after chunk (so a shard's chunks go out
    together and the shard is assembled early), less the chunks in ``kept``."""
    kept = kept or {}
    work = []
    for shard in shards:
        chunks = plan.shard_chunks(shard)
        for index, units in enumerate(chunks):
            if index not in kept.get(shard, {}):
                work.append(ShardWork(shard=shard, units=units, chunk=index, chunks=len(chunks)))
    return work


def merge_chunks(parts: Sequence[ShardResult]) -> ShardResult:
    """One shard's result from the results of all its chunks, given in chunk order."""
    if len(parts) == 1:
        return parts[0]
    samples = sorted((sample for part in parts for sample in part.samples), key=lambda sample: sample["__key__"])
    return ShardResult(samples=samples, rejected=[r for part in parts for r in part.rejected],
                       stats=merge_stats([part.stats for part in parts]),
                       events=[event for part in parts for event in part.events])


class ChunkAssembler:
    """Collects chunk receipts as they arrive (any order, a retried chunk's again) and assembles each
    shard once all its chunks are in; it holds receipts only, never images."""

    def __init__(self, chunk_store: ChunkStore, kept: KeptChunks | None = None) -> None:
        self._chunk_store = chunk_store
        self._waiting: dict[int, dict[int, ChunkReceipt]] = {
            shard: dict(chunks) for shard, chunks in (kept or {}).items()}
        self._assembled: set[int] = set()

    def complete(self) -> Iterator[ShardReceipt]:
        """Assemble the shards whose chunks are all kept from an earlier run."""
        for shard in sorted(self._waiting):
            receipts = self._waiting[shard]
            if receipts and len(receipts) == next(iter(receipts.values())).chunks:
                yield self._assemble(shard)

    def add(self, receipt: ChunkReceipt) -> ShardReceipt | None:
        """The assembled shard's receipt when ``receipt`` completes its shard, else ``None``."""
        if receipt.shard in self._assembled:  # a retried chunk of a shard already in place: its files go
            self._chunk_store.remove(receipt.shard, [receipt.chunk])
            return None
        parts = self._waiting.setdefault(receipt.shard, {})
        parts[receipt.chunk] = receipt  # a retried chunk's receipt replaces the first: the same bytes
        if len(parts) < receipt.chunks:
            return None
        return self._assemble(receipt.shard)

    def _assemble(self, shard: int) -> ShardReceipt:
        parts = self._waiting.pop(shard)
        self._assembled.add(shard)
        return self._chunk_store.assemble([parts[index] for index in sorted(parts)])


def assemble_receipts(results: Iterable[ShardReceipt | ChunkReceipt], chunk_store: ChunkStore,
                      kept: KeptChunks | None = None) -> Iterator[ShardReceipt]:
    """Every shard's receipt from a stream of workers' answers (any order): a receipt for a shard a
    worker wrote whole, and for a shard built in chunks, the receipt of assembling it once its last
    chunk is in (first those whose chunks were all ``kept``)."""
    assembler = ChunkAssembler(chunk_store, kept)
    yield from assembler.complete()
    for result in results:
        if isinstance(result, ShardReceipt):
            yield result
            continue
        shard = assembler.add(result)
        if shard is not None:
            yield shard
