"""Chunks: a shard's work split below the shard, and the shard assembled from what its chunks built.

A recipe with ``output.units_per_chunk`` builds every shard in chunks of that many work units
(``Plan.shard_chunks``). Each chunk is a work item of its own: any worker builds it with a
``ShardBuilder``, in rounds of its own, so a cluster with more workers than shards keeps them all
busy. The chunks of a shard are the recipe's, never the cluster's, so each chunk's result, and the
shard assembled from the chunks in plan order, is the same on every engine and every cluster.

A worker writes a shard that is one chunk itself and returns its ``ShardReceipt``; the chunks of a
shard built in several come back to the engine, which writes the assembled shard
(``assemble_receipts``): there the driver holds the images of the shards whose chunks are still
arriving, so chunks trade the driver's memory for parallelism below the shard.

Assembly is a pure merge: the samples of the chunks (each sorted by key; chunk ``i`` holds keys
before chunk ``i + 1``), their rejected attempts and events in chunk order, their totals summed, their
short identities joined. A shard that is one chunk is that chunk's result, unchanged.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

from ..plan import Plan
from ..release import ShardStats, StageTotals, UnreadableImage
from ..storage import Store
from .receipt import ShardReceipt, write_shard_files
from .shard_job import ShardResult, ShardWork


def chunk_work(plan: Plan, shards: Sequence[int]) -> Iterator[ShardWork]:
    """The work items of ``shards``, shard after shard and chunk after chunk, made as an engine asks
    for them (so a shard's chunks go out together and the shard is assembled early)."""
    for shard in shards:
        chunks = plan.shard_chunks(shard)
        for index, units in enumerate(chunks):
            yield ShardWork(shard=shard, units=units, chunk=index, chunks=len(chunks))


def merge_chunks(parts: Sequence[ShardResult]) -> ShardResult:
    """One shard's result from the results of all its chunks, given in chunk order."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0].stats
    totals = StageTotals()
    for part in parts:
        totals = totals.add(part.stats.totals)
    short_pids = sorted({pid for part in parts for pid in part.stats.short_pids})
    unreadable: dict[str, str] = {}
    for part in parts:  # as one shard records them: each image once (its first reason), sorted
        for image in part.stats.unreadable:
            unreadable.setdefault(image.image, image.reason)
    stats = ShardStats(shard=first.shard, totals=totals, short_pids=short_pids,
                       generator=first.generator, estimator=first.estimator,
                       unreadable=[UnreadableImage(image=image, reason=reason)
                                   for image, reason in sorted(unreadable.items())])
    samples = sorted((sample for part in parts for sample in part.samples), key=lambda sample: sample["__key__"])
    return ShardResult(samples=samples, rejected=[r for part in parts for r in part.rejected], stats=stats,
                       events=[event for part in parts for event in part.events])


class ShardAssembler:
    """Collects chunk results as they arrive (any order) and hands back each shard once all its
    chunks are in; the driver holds at most the chunks of shards still incomplete."""

    def __init__(self) -> None:
        self._waiting: dict[int, dict[int, ShardResult]] = {}

    def add(self, result: ShardResult) -> ShardResult | None:
        """The assembled shard when ``result`` (a chunk's) completes it, else ``None``."""
        parts = self._waiting.setdefault(result.shard, {})
        parts[result.chunk] = result  # a retried chunk's result replaces the first: the same bytes
        if len(parts) < result.chunks:
            return None
        del self._waiting[result.shard]
        return merge_chunks([parts[index] for index in range(result.chunks)])


def assemble_receipts(results: Iterable[ShardReceipt | ShardResult], store: Store) -> Iterator[ShardReceipt]:
    """Every shard's receipt from a stream of workers' answers (any order): a receipt for a shard a
    worker wrote whole, and for a shard built in chunks, the receipt of writing it into ``store`` once
    its last chunk arrives."""
    assembler = ShardAssembler()
    for result in results:
        if isinstance(result, ShardReceipt):
            yield result
            continue
        shard = assembler.add(result)
        if shard is not None:
            yield write_shard_files(store, shard.shard, shard.samples, shard.rejected, shard.stats, shard.events)
