"""The Ray engine: the shards of a build scheduled on a Ray cluster, with the same result as one machine.

``RayEngine`` plugs into ``build_release`` (``posedive build RECIPE --engine ray``). Planning, skipping
complete shards, writing shards and finalising the release stay on the driver, in the same code as the
local engine; the cluster only runs ``build_shard``, the function the local engine runs.

Layout of the work:

- a Ray Data pipeline over the shard ids still to build (one block per shard) feeds an actor pool of
  *shard workers* (one CPU each). A shard worker creates the CPU stages once (condition renderer and
  pose estimator) and runs ``build_shard`` for each shard it receives: reference loading and eq. 10,
  rendering and eq. 11, then eqs. 12-13, round after round;
- the generator, the only GPU stage, lives in a pool of *generation actors* (one per GPU, the model
  loaded once per actor). A shard worker's generator is a handle that sends each batch ``build_shard``
  forms to one of these actors; while one shard worker waits for its batch, the others render and
  filter, so a few CPU workers per GPU keep the GPU busy;
- each built shard streams back to the driver, which writes it (atomically, keyed by shard id) as
  soon as it arrives and finalises the release once every shard exists.

Why not one Ray Data operator per stage (conditions -> generation -> filtering)? A shard is built in
rounds: the units rejected in round k retry with attempt k+1, so the stages form a loop, and a Ray Data
graph has no cycles. Unrolling the rounds would give each round its own generation actor pool (a pool
belongs to one operator), loading the model once per round and splitting the GPUs between rounds that
are mostly idle after the first. Running ``build_shard`` whole also keeps the generator's batches
exactly those of the local engine (the same units, in the same order, ``generator.batch_size`` at a
time), so batch-dependent numerics cannot make the two engines differ.

Numerics: CPU inference gives bit-identical results only with the same thread settings, and Ray
sets ``OMP_NUM_THREADS`` to each actor's CPU count; every worker therefore takes the driver's
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (or their absence) before it loads a stage, so it computes as
a local build on that machine would. (Measured: the tiny CPU generator with 1 thread instead of 2
changes a few pixels by 1-2 levels.) To use fewer threads per worker, set them for the driver: both
engines then agree again. On GPUs the generator's numerics do not depend on these settings.

Faults: generation actors restart when they die and the call in flight is retried (generation is a
pure function of the request and its seed); shard workers are restarted by Ray Data and their shard
rebuilt. A shard is written only by the driver and only once complete, and the same shard always has
the same bytes, so a retried shard is neither lost nor duplicated. A killed driver loses only the
shards in flight; the next run resumes from the shards on disk, as with the local engine.

Scaling: a shard is the unit of parallelism (at least as many shards as shard workers are needed).
``benchmarks/scaleout.py`` (stage doubles with costs in the ratio of the real stages) on two shared
cores: 10.6 samples/s with the local engine, 11.1 with Ray and one shard worker, 18.6 with two,
once the workers have started (about 5 s on that machine; ``benchmarks/results/scaleout.json``).
With the real stages a generated image costs about 0.25 s of CPU (rendering, two pose estimates)
against 0.04 s of GPU, so a GPU is kept busy by about seven shard workers.

Requirements on a cluster: posedive (and the stages' extras) installed on every node, and the source
dataset readable at the same path on every node. The release folder only needs to be on the driver.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..errors import MissingDependency
from ..plan import Plan, WorkUnit
from ..recipe import Recipe
from ..schema import GenerationRequest, Generator, GeneratorInfo
from ..sources import SourceIndex
from .runner import BuiltShard
from .shard_job import BuildContext, build_shard
from .stages import BuildStages, StageUnavailable, load_conditions, load_estimator, load_generator

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

StagesFactory = Callable[[], BuildStages]
GeneratorFactory = Callable[[], Generator]

ACTOR_NAME_PREFIX = "posedive-generator"


# Thread-count settings that change the last bits of CPU inference (parallel reductions): Ray sets
# OMP_NUM_THREADS to an actor's CPU count, so workers would otherwise compute with other numerics than
# a local build on the same machine.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
ThreadSettings = dict[str, "str | None"]


def driver_thread_settings() -> ThreadSettings:
    """The thread settings of this process: those a local build here would run with."""
    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


def apply_thread_settings(settings: ThreadSettings) -> None:
    """Give a worker the driver's thread settings; must run before the worker imports torch."""
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "torch" in sys.modules:
        logger.warning("torch was imported in worker %d before its thread settings were applied; its CPU "
                       "results may differ in the last bits from a local build", os.getpid())


class RayUnavailable(MissingDependency):
    """``--engine ray`` was asked for but Ray is not installed."""


def require_ray() -> Any:
    """Import Ray (and Ray Data) only when the Ray engine is used; it is an optional extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise RayUnavailable(
            f"the ray engine needs Ray Data, which is not installed ({error}): pip install 'posedive[ray]'"
        ) from error
    return ray


# Picklable stage factories: each worker calls the one it needs, so a shard worker never loads the
# generator and a generation actor never loads the renderer or the estimator.


@dataclass(frozen=True)
class RecipeCpuStages:
    """The CPU stages a recipe names (condition renderer and pose estimator), created in a shard worker."""

    recipe: Recipe

    def __call__(self) -> BuildStages:
        return BuildStages(conditions=load_conditions(self.recipe), estimator=load_estimator(self.recipe))


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
        generator = self.stages_factory().generator
        if generator is None:
            raise ValueError("the stages factory made no generator; pass generator_factory to RayEngine")
        return generator


@dataclass(frozen=True)
class GenerationStats:
    """What one generation actor did since it (last) started: enough to tell whether CPU workers kept
    it busy (``busy_s`` against the build's duration) and its own rate (``images / busy_s``)."""

    pid: int
    batches: int
    images: int
    busy_s: float


class GenerationActor:
    """Holds one loaded generator (one per GPU) and answers batches of generation requests."""

    def __init__(self, generator_factory: GeneratorFactory, threads: ThreadSettings) -> None:
        apply_thread_settings(threads)
        self._generator = generator_factory()
        self._batches = self._images = 0
        self._busy_s = 0.0
        logger.info("generation actor (pid %d) loaded %s", os.getpid(), self._generator.info.id)

    def info(self) -> GeneratorInfo:
        return self._generator.info

    def pid(self) -> int:
        return os.getpid()

    def stats(self) -> GenerationStats:
        return GenerationStats(pid=os.getpid(), batches=self._batches, images=self._images, busy_s=self._busy_s)

    def generate(self, requests: list[GenerationRequest]) -> list["Image.Image"]:
        started = time.perf_counter()
        images = self._generator.generate(requests)
        self._busy_s += time.perf_counter() - started
        self._batches += 1
        self._images += len(images)
        return images


class ActorGenerator:
    """A shard worker's generator: forwards each batch, unchanged, to a generation actor.

    Batches go round-robin over the actors, starting at an offset that differs between workers; which
    actor serves a batch changes nothing in its images (same model, same request, same seed).
    """

    def __init__(self, actors: Sequence[Any], info: GeneratorInfo) -> None:
        self._actors = list(actors)
        self.info = info
        self._turn = itertools.count(os.getpid())

    def generate(self, requests: Sequence[GenerationRequest]) -> list["Image.Image"]:
        ray = require_ray()
        actor = self._actors[next(self._turn) % len(self._actors)]
        return ray.get(actor.generate.remote(list(requests)))


class ShardWorker:
    """A Ray Data stateful transform: creates the CPU stages once, then builds the shards it is given."""

    def __init__(self, recipe: Recipe, source: SourceIndex, plan_hash: str, units: dict[int, list[WorkUnit]],
                 stages_factory: StagesFactory, actors: Sequence[Any], generator_info: GeneratorInfo,
                 threads: ThreadSettings) -> None:
        apply_thread_settings(threads)
        stages = stages_factory()
        if stages.estimator is None:
            raise ValueError("the stages factory made no pose estimator; the filter needs one")
        close = getattr(stages.generator, "close", None)  # a generator made here is not used: the actors generate
        if callable(close):
            close()
        remote = ActorGenerator(actors, generator_info)
        self._stages = BuildStages(conditions=stages.conditions, estimator=stages.estimator, generator=remote)
        self._ctx = BuildContext(recipe=recipe, source=source, stages=self._stages, plan_hash=plan_hash)
        self._units = units
        self._generator_info = generator_info

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        shards = [int(shard) for shard in batch["shard"]]
        built = []
        for shard in shards:
            result = build_shard(self._ctx, shard, self._units[shard])
            logger.info("shard %d built (pid %d): %d accepted", shard, os.getpid(), result.stats.totals.accepted)
            built.append(BuiltShard(shard=shard, result=result, generator=self._generator_info,
                                    estimator=self._stages.estimator.name))
        # Pickled here rather than by Ray Data, which would first try (and fail) to make it an Arrow column.
        column = np.empty(len(built), dtype=object)
        column[:] = [pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in built]
        return {"shard": np.asarray(shards, dtype=np.int64), "built": column}


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
    ``actor_restarts``: how often a dead generation actor is restarted before the build fails.
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

    def build_shards(self, recipe: Recipe, source: SourceIndex, plan: Plan, shards: list[int]) -> Iterator[BuiltShard]:
        """Yield every shard of ``shards`` as it is built, in completion order."""
        ray = require_ray()
        owns_connection = not ray.is_initialized()
        if owns_connection:
            ray.init(address=self.address)
        elif self.address is not None:
            logger.info("already connected to a Ray cluster; --address %s is not used", self.address)
        actors: list[Any] = []
        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            count = self.generators or max(gpus, 1)
            options: dict[str, Any] = {"num_cpus": self.generator_num_cpus, "max_restarts": self.actor_restarts,
                                       "max_task_retries": -1}
            if gpus:
                options["num_gpus"] = 1
            stages_factory, generator_factory = self._factories(recipe)
            suffix = os.urandom(4).hex()
            actor_class = ray.remote(GenerationActor)
            threads = driver_thread_settings()
            actors = [actor_class.options(name=f"{ACTOR_NAME_PREFIX}-{plan.hash[:8]}-{suffix}-{index}", **options)
                      .remote(generator_factory, threads) for index in range(count)]
            try:
                generator_info = ray.get(actors[0].info.remote())
            except ray.exceptions.RayActorError as error:
                raise StageUnavailable(f"the generation actors could not load the generator: {error}") from error
            spare_cpus = int(resources.get("CPU", 1) - count * self.generator_num_cpus)
            workers = min(self.shard_workers or max(spare_cpus, 1), len(shards))
            logger.info("ray engine: %d shard(s) on %d shard worker(s) and %d generation actor(s)%s",
                        len(shards), workers, count, " (one GPU each)" if gpus else " (CPU)")
            units = {shard: plan.shard_units(shard) for shard in shards}
            dataset = ray.data.from_items([{"shard": shard} for shard in shards], override_num_blocks=len(shards))
            dataset = dataset.map_batches(
                ShardWorker,
                fn_constructor_kwargs={"recipe": recipe, "source": source, "plan_hash": plan.hash, "units": units,
                                       "stages_factory": stages_factory, "actors": actors,
                                       "generator_info": generator_info, "threads": threads},
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                batch_size=1,
                batch_format="numpy",
                num_cpus=1,
            )
            delivered: set[int] = set()
            for row in dataset.iter_rows():
                built = pickle.loads(row["built"])
                if built.shard in delivered:  # a retried task whose first result also arrived: same bytes
                    logger.info("shard %d delivered twice; written once", built.shard)
                    continue
                delivered.add(built.shard)
                yield built
            self.generation_stats = ray.get([actor.stats.remote() for actor in actors])
            for stats in self.generation_stats:
                logger.info("generation actor pid %d: %d images in %d batches, %.1f s busy", stats.pid, stats.images,
                            stats.batches, stats.busy_s)
        finally:
            if ray.is_initialized():
                for actor in actors:
                    ray.kill(actor, no_restart=True)
            if owns_connection:
                ray.shutdown()
