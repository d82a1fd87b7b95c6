"""The Ray engine: the shards of a build scheduled on a Ray cluster, with the same result as one machine.

``RayEngine`` is an engine like ``LocalEngine`` (``posedive build RECIPE --engine ray``). Planning,
skipping complete shards, writing shards and finalising the release stay on the driver, in
``build_release``; the cluster only runs ``ShardWorker``, the worker the local engine runs.

Layout of the work (both pools are ``posedive.parallel`` Ray pools):

- a ``RayBackend`` of *shard workers* (one CPU each) takes the chunks of the shards still to build
  (``posedive.builder.chunks``: the whole shard unless the recipe sets ``output.units_per_chunk``),
  one at a time per worker. A shard worker creates the CPU stages once (condition renderer and pose
  estimator) and builds each chunk it receives with a ``ShardBuilder``: eq. 10 on the reference,
  rendering, eq. 11, then generation and eqs. 12-13, round after round. Each work unit's outcome is
  sent to the driver as it happens, so the build's progress moves per image;
- the generator, the only GPU stage, lives in ``RayServices``, the *generation actors* (one per GPU,
  the model loaded once per actor). A shard worker's generator is a ``RemoteGenerator`` (the same
  ``Generator`` protocol) that sends each batch the shard builder forms to one of these actors; while
  one shard worker waits for its batch, the others render and filter, so a few CPU workers per GPU
  keep the GPU busy. The identity features of the quality report (``schema.IdentityFeatures``) are
  asked of the same actors, whose generator holds the identity encoder;
- each shard worker writes the shards it builds straight into the release location (a local folder
  every node sees, or an object store: ``posedive.storage``), atomically, and sends back only a
  ``ShardReceipt`` (counts, hash, stats: kilobytes, never images); the driver finalises the release
  once every shard exists. A chunk of a shard built in several (``output.units_per_chunk``) is
  written by its worker into the release's build state (``posedive.builder.chunk_store``) and only its
  ``ChunkReceipt`` comes back; once all of a shard's chunks are there, the driver assembles the shard
  by streaming the chunk files into it, one sample at a time.

Why not one distributed operator per stage (conditions -> generation -> filtering), as in a Ray Data
pipeline? A shard is built in rounds: the units rejected in round k retry with attempt k+1, so the
stages form a loop, and a Ray Data graph has no cycles. Unrolling the rounds would give each round its
own generation actor pool (a pool belongs to one operator), loading the model once per round and
splitting the GPUs between rounds that are mostly idle after the first. Building a shard whole also
keeps the generator's batches exactly those of the local engine (the same units, in the same order,
``generator.batch_size`` at a time), so batch-dependent numerics cannot make the two engines differ.

Threads: each worker runs as many threads as the CPUs it reserves (``posedive.parallel``'s
policy): one per shard worker, ``generator_num_cpus`` per generation actor. The numerics do not
depend on those numbers (workers take the driver's ``MKL_CBWR``, and a CPU generator computes on
one thread), so a Ray build equals a local one with any thread settings.

Faults: generation actors restart when they die and the call in flight is retried (generation is a
pure function of the request and its seed); shard workers restart too, and their chunk is rebuilt.
A shard appears under its name only once complete (written under a temporary name, then renamed or,
on object stores, copied to its key), and the same shard always has the same bytes, so a retried
chunk is neither lost nor duplicated (its progress events, sent again, are counted once). The event
buffer lives on the driver's node, so losing any other node loses no event. A killed driver loses
only the chunks in flight; the next run resumes from the shards and the finished chunks in storage
(each checked against the plan first), as with the local engine.

Scaling: a chunk is the unit of parallelism (at least as many chunks as shard workers are needed).
``benchmarks/cluster.py`` runs this engine on a simulated multi-node cluster (one raylet per
simulated GPU; ``benchmarks/results/cluster.json``).
``benchmarks/scaleout.py`` (stage doubles with costs in the ratio of the real stages) on two shared
cores: 10.6 samples/s with the local engine, 11.1 with Ray and one shard worker, 18.6 with two,
once the workers have started (about 5 s on that machine; ``benchmarks/results/scaleout.json``).
With the real stages a generated image costs about 0.12 s of CPU (a condition set, 45 ms, and two
BlazePose estimates, 35 ms each: ``benchmarks/results/conditions.json``, ``filtering.json``), and an
H200 generates 15-19 images/s (``generation_cuda_h200.json``), so about three shard workers keep a
GPU busy (README, "Scaling").

Requirements on a cluster: posedive (and the stages' extras) installed on every node, and the source
dataset readable at the same path on every node. The release location must be reachable from every
node: a shared folder, or an fsspec URL such as ``s3://bucket/releases``.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from ..errors import StageUnavailable
from ..parallel import RayBackend, RayServiceClient, RayServices, ThreadLimits, ray_connection, require_ray
from ..plan import Plan
from ..recipe import Recipe
from ..schema import GenerationRequest, Generator, GeneratorInfo, IdentityFeatures
from ..sources import SourceIndex
from .chunk_store import ChunkReceipt, ChunkStore
from .engine import ShardWorker, build_chunks, chunk_store
from .progress import EventHandler
from .receipt import ShardReceipt
from .shard_job import BuildContext, ShardWork
from .stages import BuildStages, CpuStages, close_stage, load_cpu_stages, load_generator

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

logger = logging.getLogger(__name__)

StagesFactory = Callable[[], CpuStages]
"""Makes the CPU stages in a shard worker; ``BuildStages`` are accepted too (their generator is closed)."""
GeneratorFactory = Callable[[], Generator]

ACTOR_NAME_PREFIX = "posedive-generator"


# Picklable stage factories: each worker calls the one it needs, so a shard worker never loads the
# generator and a generation actor never loads the renderer or the estimator.


@dataclass(frozen=True)
class RecipeCpuStages:
    """The CPU stages a recipe names (condition renderer and pose estimator), created in a shard worker."""

    recipe: Recipe

    def __call__(self) -> CpuStages:
        return load_cpu_stages(self.recipe)


@dataclass(frozen=True)
class RecipeGenerator:
    """The generator a recipe names, loaded once in each generation actor."""

    recipe: Recipe

    def __call__(self) -> Generator:
        return load_generator(self.recipe)


@dataclass(frozen=True)
class GeneratorOfStages:
    """The generator of a ``StagesFactory`` that makes all three stages (e.g. test doubles)."""

    stages_factory: StagesFactory

    def __call__(self) -> Generator:
        stages = self.stages_factory()
        if not isinstance(stages, BuildStages):
            raise StageUnavailable(f"the stages factory {self.stages_factory!r} made no generator",
                                   hint="pass generator_factory to RayEngine")
        CpuStages.close(stages)  # this actor only generates
        return stages.generator


@dataclass(frozen=True)
class GenerationStats:
    """What one generation actor did since it (last) started: enough to tell whether CPU workers kept
    it busy (``busy_s`` against the build's duration) and its own rate (``images / busy_s``)."""

    pid: int
    batches: int
    images: int
    busy_s: float


class GenerationService:
    """Holds one loaded generator (one per GPU, in a generation actor) and answers batches of requests."""

    def __init__(self, generator_factory: GeneratorFactory) -> None:
        self._generator = generator_factory()
        self._batches = self._images = 0
        self._busy_s = 0.0
        logger.info("generation actor (pid %d) loaded %s", os.getpid(), self._generator.info.id)

    def info(self) -> GeneratorInfo:
        return self._generator.info

    def stats(self) -> GenerationStats:
        return GenerationStats(pid=os.getpid(), batches=self._batches, images=self._images, busy_s=self._busy_s)

    def identity_encoder(self) -> str | None:
        """The hosted generator's identity encoder, or ``None`` when it has none (then shard workers
        record no identity similarity, as a local build with that generator does)."""
        return self._generator.identity_encoder if isinstance(self._generator, IdentityFeatures) else None

    def identity_features(self, images: list["Image.Image"]) -> "np.ndarray":
        return self._generator.identity_features(images)

    def generate(self, requests: list[GenerationRequest]) -> list["Image.Image"]:
        started = time.perf_counter()
        images = self._generator.generate(requests)
        self._busy_s += time.perf_counter() - started
        self._batches += 1
        self._images += len(images)
        return images


class RemoteGenerator:
    """A shard worker's generator: sends each batch, unchanged, to one of the generation actors.

    Which actor serves a batch changes nothing in its images (same model, same request, same seed).
    """

    def __init__(self, actors: RayServiceClient, info: GeneratorInfo) -> None:
        self._actors = actors
        self.info = info

    def generate(self, requests: Sequence[GenerationRequest]) -> list["Image.Image"]:
        return self._actors.call("generate", list(requests))


class RemoteIdentityGenerator(RemoteGenerator):
    """A ``RemoteGenerator`` whose hosted generator has an identity encoder: identity features are
    computed by the generation actors too (the encoder is loaded there, with the model), so a Ray
    build records the same identity similarity as a local one."""

    def __init__(self, actors: RayServiceClient, info: GeneratorInfo, identity_encoder: str) -> None:
        super().__init__(actors, info)
        self.identity_encoder = identity_encoder

    def identity_features(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        return self._actors.call("identity_features", list(images))


def remote_generator(actors: RayServiceClient, info: GeneratorInfo, identity_encoder: str | None) -> RemoteGenerator:
    """The remote generator that offers exactly what the hosted one does (``schema.IdentityFeatures``
    only when it has an identity encoder: the shard builder checks for it with ``isinstance``)."""
    if identity_encoder is None:
        return RemoteGenerator(actors, info)
    return RemoteIdentityGenerator(actors, info, identity_encoder)


@dataclass(frozen=True)
class RayShardWorker:
    """Makes a ``ShardWorker`` inside a shard worker's actor: the CPU stages from ``stages_factory``,
    the generator a ``RemoteGenerator`` on the generation actors."""

    recipe: Recipe
    source: SourceIndex
    plan_hash: str
    stages_factory: StagesFactory
    generation: RayServiceClient
    generator_info: GeneratorInfo
    chunks: ChunkStore
    identity_encoder: str | None = None

    def __call__(self) -> ShardWorker:
        made = self.stages_factory()
        if isinstance(made, BuildStages):
            close_stage(made.generator)  # a generator made here is not used: the generation actors generate
        stages = BuildStages(conditions=made.conditions, estimator=made.estimator, shapes=made.shapes, reid=made.reid,
                             generator=remote_generator(self.generation, self.generator_info, self.identity_encoder))
        return ShardWorker(BuildContext(recipe=self.recipe, source=self.source, stages=stages, plan_hash=self.plan_hash),
                           self.chunks)


@dataclass
class RayEngine:
    """Builds shards on a Ray cluster; pass it to ``build_release(recipe, engine=RayEngine(...))``.

    ``address``: the cluster to join (``"auto"``, ``"ray://host:10001"``, ...); ``None`` joins the
    cluster this process is already connected to, or starts a local one. ``stages_factory`` makes the
    stages inside each shard worker (default: the recipe's renderer and estimator); ``generator_factory``
    makes the generator inside each generation actor (default: the recipe's generator, or the
    generator of ``stages_factory`` when only that is given). Both must be picklable.
    ``generators``: generation actors (default: one per GPU of the cluster, one without GPUs);
    ``shard_workers``: CPU workers (default: the cluster's CPUs left after the generation actors).
    ``actor_restarts``: how often a dead generation actor or shard worker is restarted before the
    build fails.
    """

    address: str | None = None
    stages_factory: StagesFactory | None = None
    generator_factory: GeneratorFactory | None = None
    generators: int | None = None
    shard_workers: int | None = None
    generator_num_cpus: float = 1.0
    actor_restarts: int = 3
    generation_stats: list[GenerationStats] = field(default_factory=list, init=False)
    """Filled at the end of each ``build_shards``: one entry per generation actor."""

    def __post_init__(self) -> None:
        require_ray()

    def _factories(self, recipe: Recipe) -> tuple[StagesFactory, GeneratorFactory]:
        stages_factory = self.stages_factory or RecipeCpuStages(recipe)
        if self.generator_factory is not None:
            return stages_factory, self.generator_factory
        if self.stages_factory is not None:
            return stages_factory, GeneratorOfStages(self.stages_factory)
        return stages_factory, RecipeGenerator(recipe)

    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: Sequence[int],
                     on_event: EventHandler) -> Iterator[ShardReceipt]:
        """Yield the receipt of every shard of ``shards`` as it is written, in completion order."""
        with ray_connection(self.address) as ray:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            count = self.generators or max(gpus, 1)
            stages_factory, generator_factory = self._factories(recipe)
            suffix = os.urandom(4).hex()
            names = [f"{ACTOR_NAME_PREFIX}-{plan.hash[:8]}-{suffix}-{index}" for index in range(count)]
            services = RayServices(functools.partial(GenerationService, generator_factory), names,
                                   cpus=self.generator_num_cpus, gpus=1 if gpus else 0,
                                   max_restarts=self.actor_restarts,
                                   threads=ThreadLimits.for_cpus(self.generator_num_cpus))
            with services as generation:
                try:
                    generator_info = generation.call("info")
                    identity_encoder = generation.call("identity_encoder")
                except ray.exceptions.RayActorError as error:
                    raise StageUnavailable(f"the generation actors could not load the generator: {error}") from error
                spare_cpus = int(resources.get("CPU", 1) - count * self.generator_num_cpus)
                chunks = chunk_store(recipe, plan)
                factory = RayShardWorker(recipe=recipe, source=source, plan_hash=plan.hash,
                                         stages_factory=stages_factory, generation=generation,
                                         generator_info=generator_info, chunks=chunks,
                                         identity_encoder=identity_encoder)

                def run(work: list[ShardWork]) -> Iterable[ShardReceipt | ChunkReceipt]:
                    if not work:  # every chunk left was finished by an earlier run
                        return []
                    workers = min(self.shard_workers or max(spare_cpus, 1), max(len(work), 1))
                    logger.info("ray engine: %d shard(s), %d chunk(s) to build on %d shard worker(s) and %d "
                                "generation actor(s)%s", len(shards), len(work), workers, count,
                                " (one GPU each)" if gpus else " (CPU)")
                    backend = RayBackend(workers, cpus_per_worker=1.0, max_restarts=self.actor_restarts,
                                         threads=ThreadLimits.for_cpus(1.0))
                    return backend.map(factory, work, ordered=False, on_event=on_event)

                for result in build_chunks(run, chunks, plan, shards):
                    logger.info("shard %d written: %d accepted", result.shard, result.stats.totals.accepted)
                    yield result
                self.generation_stats = generation.call_all("stats")
                for stats in self.generation_stats:
                    logger.info("generation actor pid %d: %d images in %d batches, %.1f s busy", stats.pid,
                                stats.images, stats.batches, stats.busy_s)
