"""Engines: where the shards of a build are built.

An engine takes the shards still to build and yields each one's ``ShardResult`` as it is done,
sending every work unit's ``UnitEvent`` to ``on_event`` as it happens, wherever the work runs. The
runner (``build_release``) writes what an engine yields and finishes the release, the same for every
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
from .chunks import assemble, chunk_work
from .progress import EventHandler
from .shard_job import BuildContext, ShardBuilder, ShardResult, ShardWork
from .stages import BuildStages


class ShardEngine(Protocol):
    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: Sequence[int],
                     on_event: EventHandler) -> Iterator[ShardResult]:
        """Build ``shards`` of ``plan``; yield each shard's result, assembled from its chunks
        (``posedive.builder.chunks``), as it is done (any order)."""
        ...


class ShardWorker:
    """A ``posedive.parallel`` worker that builds the shards it is given with one set of stages."""

    def __init__(self, ctx: BuildContext) -> None:
        self._builder = ShardBuilder(ctx)

    def __call__(self, work: ShardWork, emit: Emit) -> ShardResult:
        result = self._builder.build(work.shard, work.units, emit)
        result.chunk, result.chunks = work.chunk, work.chunks
        return result


@dataclass
class LocalEngine:
    """Builds shards in this process, one after another, with ``stages``: ready-made ones, or a loader
    called on the first shard (then the stages are closed when the build is done)."""

    stages: BuildStages | Callable[[], BuildStages]

    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: Sequence[int],
                     on_event: EventHandler) -> Iterator[ShardResult]:
        owned = not isinstance(self.stages, BuildStages)
        stages = self.stages() if not isinstance(self.stages, BuildStages) else self.stages
        try:
            worker = ShardWorker(BuildContext(recipe=recipe, source=source, stages=stages, plan_hash=plan.hash))
            yield from assemble(InProcess().map(lambda: worker, chunk_work(plan, shards), on_event=on_event))
        finally:
            if owned:
                stages.close()
