"""Engines: where the shards of a build are built.

An engine takes the shards still to build and yields each one's ``ShardReceipt`` as it is done,
sending every work unit's ``UnitEvent`` to ``on_event`` as it happens, wherever the work runs. The
worker that builds a shard writes it into the release location itself (``posedive.builder.receipt``);
the runner (``build_release``) only collects receipts and finishes the release, the same for every
engine. ``LocalEngine`` builds here, one shard after another; ``posedive.builder.ray_engine.RayEngine``
builds on a Ray cluster. Both run the same ``ShardWorker`` (a ``ShardBuilder`` over one set of
stages) as a worker of ``posedive.parallel`` on the plan's chunks of each shard, keep the chunks an
interrupted run finished, and assemble each shard from its chunks' files the same way
(``build_chunks``), so a shard has the same bytes whichever builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from ..parallel import Emit, InProcess
from ..plan import Plan
from ..recipe import Recipe
from ..sources import SourceIndex
from ..storage import Store, open_store
from .chunk_store import ChunkReceipt, ChunkStore
from .chunks import assemble_receipts, chunk_work
from .progress import EventHandler
from .receipt import ShardReceipt, write_shard_files
from .shard_job import BuildContext, ShardBuilder, ShardWork
from .stages import BuildStages


class ShardEngine(Protocol):
    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: Sequence[int],
                     on_event: EventHandler) -> Iterator[ShardReceipt]:
        """Build ``shards`` of ``plan`` (chunk by chunk, ``posedive.builder.chunks``) and write them into
        the recipe's release location; yield each shard's receipt as it is written (any order)."""
        ...


def release_store(recipe: Recipe) -> Store:
    """The release location a recipe's shards are written to."""
    return open_store(recipe.release_location)


def chunk_store(recipe: Recipe, plan: Plan, store: Store | None = None) -> ChunkStore:
    """Where the chunks of a recipe's build are kept until their shard is assembled."""
    return ChunkStore(store or release_store(recipe), recipe.hash, plan.hash)


class ShardWorker:
    """A ``posedive.parallel`` worker that builds the chunks it is given with one set of stages and
    writes each into the release location: a shard that is one chunk as the shard itself (its
    ``ShardReceipt`` comes back), a chunk of a shard built in several into the build state (its
    ``ChunkReceipt`` comes back)."""

    def __init__(self, ctx: BuildContext, chunks: ChunkStore) -> None:
        self._builder = ShardBuilder(ctx)
        self._chunks = chunks

    def __call__(self, work: ShardWork, emit: Emit) -> ShardReceipt | ChunkReceipt:
        result = self._builder.build(work.shard, work.units, emit)
        if work.chunks == 1:
            return write_shard_files(self._chunks.store, result.shard, result.samples, result.rejected,
                                     result.stats, result.events)
        return self._chunks.write(work.shard, work.chunk, work.chunks, work.units, result)


def build_chunks(run: Callable[[list[ShardWork]], Iterable[ShardReceipt | ChunkReceipt]], chunks: ChunkStore,
                 plan: Plan, shards: Sequence[int]) -> Iterator[ShardReceipt]:
    """Every shard's receipt, whatever engine ``run``s the work items it is given: the chunks of
    ``shards`` an earlier run finished are kept (checked first), the others built, and each shard built
    in chunks assembled from its chunks' files once they are all there."""
    kept = chunks.kept(plan, shards)
    yield from assemble_receipts(run(chunk_work(plan, shards, kept)), chunks, kept)


@dataclass
class LocalEngine:
    """Builds shards in this process, one after another, with ``stages``: ready-made ones, or a loader
    called on the first shard (then the stages are closed when the build is done)."""

    stages: BuildStages | Callable[[], BuildStages]

    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: Sequence[int],
                     on_event: EventHandler) -> Iterator[ShardReceipt]:
        owned = not isinstance(self.stages, BuildStages)
        stages = self.stages() if not isinstance(self.stages, BuildStages) else self.stages
        try:
            chunks = chunk_store(recipe, plan)
            worker = ShardWorker(BuildContext(recipe=recipe, source=source, stages=stages, plan_hash=plan.hash),
                                 chunks)
            yield from build_chunks(lambda work: InProcess().map(lambda: worker, work, on_event=on_event),
                                    chunks, plan, shards)
        finally:
            if owned:
                stages.close()
