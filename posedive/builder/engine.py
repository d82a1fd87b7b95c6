"""Engines: where the shards of a build are built.

An engine takes the shards still to build and yields each one's ``ShardReceipt`` as it is done,
sending every work unit's ``UnitEvent`` to ``on_event`` as it happens, wherever the work runs. The
worker that builds a shard writes it into the release location itself (``posedive.builder.receipt``);
the runner (``build_release``) only collects receipts and finishes the release, the same for every
engine. ``LocalEngine`` builds here, one shard after another; ``posedive.builder.ray_engine.RayEngine``
builds on a Ray cluster. Both run the same ``ShardWorker`` (a ``ShardBuilder`` over one set of
stages) as a worker of ``posedive.parallel`` on the plan's chunks of each shard, and assemble each
shard from its chunks the same way, so a shard has the same bytes whichever builds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

from ..parallel import Emit, InProcess
from ..plan import Plan
from ..recipe import Recipe
from ..sources import SourceIndex
from ..storage import Store, open_store
from .chunks import assemble_receipts, chunk_work
from .progress import EventHandler
from .receipt import ShardReceipt, write_shard_files
from .shard_job import BuildContext, ShardBuilder, ShardResult, ShardWork
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


class ShardWorker:
    """A ``posedive.parallel`` worker that builds the shards it is given with one set of stages, writes
    each into the release location and returns its receipt."""

    def __init__(self, ctx: BuildContext, store: Store) -> None:
        self._builder = ShardBuilder(ctx)
        self._store = store

    def __call__(self, work: ShardWork, emit: Emit) -> ShardReceipt | ShardResult:
        result = self._builder.build(work.shard, work.units, emit)
        if work.chunks == 1:
            return write_shard_files(self._store, result.shard, result.samples, result.rejected, result.stats,
                                     result.events)
        # A shard built in chunks is written once all its chunks are in (``assemble_receipts``).
        result.chunk, result.chunks = work.chunk, work.chunks
        return result


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
            store = release_store(recipe)
            worker = ShardWorker(BuildContext(recipe=recipe, source=source, stages=stages, plan_hash=plan.hash),
                                 store)
            built = InProcess().map(lambda: worker, chunk_work(plan, shards), on_event=on_event)
            yield from assemble_receipts(built, store)
        finally:
            if owned:
                stages.close()
