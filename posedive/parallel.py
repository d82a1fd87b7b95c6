"""Running work in parallel: one interface, whether the work runs here, in local processes or on Ray.

``backend.map(factory, items)`` hands work items to workers and streams their results back. A worker
is made once, in the process that runs it, by calling ``factory()``; a factory is picklable (a class,
a ``functools.partial``) because it travels to that process, while what it makes (a loaded model, a
renderer with its GL context, a pose-estimator graph) need not be. The worker is then called once per
item, ``worker(item, emit)``: ``emit(event)`` sends a small, picklable event to the caller's
``on_event`` while the item is still being worked on (the build counts images this way), and every
event a worker emits for an item reaches ``on_event`` before that item's result is yielded. Results
come in item order (``ordered=True``) or as they finish. Items are pulled from ``items`` only as they
are sent, with a bounded number in flight, so a lazy iterable of large items never sits in memory
whole. A worker with a ``close()`` method is closed when the map ends.

Backends
--------
* ``InProcess``: the worker runs in this process, one item after another: no pickling, no start-up;
  for one worker, or for a worker around stages the caller has already built.
* ``LocalProcesses(workers, cpus_per_worker=1)``: worker processes on this machine, started with
  ``spawn`` so that nothing the parent holds (torch's thread pool, OpenGL contexts, open files) is
  forked into them.
* ``RayBackend(workers, cpus_per_worker=1, gpus_per_worker=0)``: one Ray actor per worker, anywhere on
  a Ray cluster; a worker that dies is restarted (its factory called again) and its item retried.
  ``RayServices`` starts stateful objects that workers call (one model per GPU, say) with the same
  factories and thread policy. Ray is an optional extra, imported only when one of these is used.

Thread policy
-------------
Each worker reserves CPUs (``cpus_per_worker``; on Ray, its actor's ``num_cpus``) and runs
``threads_for_cpus(cpus)`` = ``max(1, floor(cpus))`` threads in every pool a library may start in it:
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``LP_NUM_THREADS`` (Mesa
llvmpipe's rasteriser) are set in the worker before its factory is unpickled or called, so before the
worker imports torch, numpy or OpenGL, and torch's intra-op threads are set to the same number if
torch was loaded by then. N one-CPU workers therefore keep N cores busy instead of each starting a
thread per core of the machine. The build's Ray engine uses the same policy for its shard workers
(one CPU each) and its generation actors (``generator_num_cpus`` each).

A release must not depend on these numbers, so every process that computes one also takes
``REPRODUCIBLE_CPU_NUMERICS`` (``MKL_CBWR=AVX2,STRICT``: MKL's matrix products give the same bits
whatever its thread count; set by the command line before torch loads, and handed from the caller to
every worker), and a
CPU generator computes on one thread (``posedive.generation.numerics``).
``tests/test_thread_numerics.py`` builds a release with 1 and with 2 threads and compares its bytes.
``ThreadLimits.of_this_process()`` hands workers the caller's own ``OMP_NUM_THREADS`` /
``MKL_NUM_THREADS`` (or their absence) instead. Work that runs ``InProcess`` keeps the caller's
settings.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import pickle
import queue
import sys
import traceback
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict

from .errors import MissingDependency

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")
Item_contra = TypeVar("Item_contra", contravariant=True)
Result_co = TypeVar("Result_co", covariant=True)

Emit = Callable[[Any], None]
"""Sends one progress event from a worker to the caller's ``on_event``."""


class Worker(Protocol[Item_contra, Result_co]):
    """Made once per worker by a factory; called once per item."""

    def __call__(self, item: Item_contra, emit: Emit, /) -> Result_co: ...


WorkerFactory = Callable[[], Worker[Item, Result]]


class Backend(Protocol):
    """Where a map runs its workers: ``InProcess``, ``LocalProcesses`` or ``RayBackend``."""

    def map(self, factory: WorkerFactory[Item, Result], items: Iterable[Item], *, ordered: bool = True,
            on_event: Emit | None = None) -> Iterator[Result]: ...


# -- threads -------------------------------------------------------------------------------------

LIMITED_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LP_NUM_THREADS")
# The variables that change the last bits of CPU inference (torch's parallel reductions).
NUMERIC_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# MKL's strict conditional numerical reproducibility: its matrix products give the same bits for any
# number of threads (and on any CPU with AVX2), read once as MKL loads. Measured: without it the small
# test build's generated images differed between 1 and 2 threads.
REPRODUCIBLE_CPU_NUMERICS = {"MKL_CBWR": "AVX2,STRICT"}


def threads_for_cpus(cpus: float) -> int:
    """The thread policy: a worker that reserves ``cpus`` CPUs runs this many threads per pool."""
    return max(1, math.floor(cpus))


def use_reproducible_cpu_numerics() -> None:
    """Ask for ``REPRODUCIBLE_CPU_NUMERICS`` in this process (a value the user set wins); run it before
    torch loads.

    Once torch is loaded, the variables no longer change this process's numerics, but workers take them
    from its environment (``_numerics_of_this_process``): setting them then would make workers compute
    unlike their caller, so nothing is set."""
    if "torch" in sys.modules:
        return
    for name, value in REPRODUCIBLE_CPU_NUMERICS.items():
        os.environ.setdefault(name, value)


def _numerics_of_this_process() -> dict[str, str | None]:
    """``REPRODUCIBLE_CPU_NUMERICS`` as this process has them (or their absence): workers compute as
    their caller does, whether or not it came through the command line."""
    return {name: os.environ.get(name) for name in REPRODUCIBLE_CPU_NUMERICS}


def apply_thread_settings(settings: Mapping[str, str | None]) -> None:
    """Set (or, for ``None``, unset) thread variables in this process; run it before torch loads."""
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ThreadLimits(BaseModel):
    """The thread settings a worker process takes before it loads anything (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: dict[str, str | None]
    torch_threads: int | None = None

    @classmethod
    def for_cpus(cls, cpus: float) -> "ThreadLimits":
        threads = threads_for_cpus(cpus)
        return cls(environment={**{name: str(threads) for name in LIMITED_VARIABLES}, **_numerics_of_this_process()},
                   torch_threads=threads)

    @classmethod
    def of_this_process(cls) -> "ThreadLimits":
        return cls(environment={**{name: os.environ.get(name) for name in NUMERIC_VARIABLES},
                                **_numerics_of_this_process()})

    def apply(self) -> None:
        apply_thread_settings(self.environment)
        self.limit_torch(warn=self.torch_threads is None)

    def limit_torch(self, warn: bool = False) -> None:
        """Set torch's intra-op threads if torch is loaded (it reads the variables only as it loads)."""
        torch = sys.modules.get("torch")
        if torch is None:
            return
        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        elif warn:
            logger.warning("torch was loaded in worker %d before its thread settings were applied; its CPU "
                           "results may differ in the last bits from the caller's", os.getpid())


def _build_worker(factory_bytes: bytes, threads: ThreadLimits, loads: Callable[[bytes], Any] = pickle.loads) -> Any:
    """Apply the thread limits, then unpickle and call the factory (in that order: see the module docstring)."""
    threads.apply()
    worker = loads(factory_bytes)()
    threads.limit_torch()
    return worker


def _close(worker: Any) -> None:
    close = getattr(worker, "close", None)
    if callable(close):
        close()


def _ignore(event: Any) -> None:
    pass


# -- scheduling shared by the backends -----------------------------------------------------------

_END = object()


class _Dispatch(Protocol):
    """One backend's way of sending an item to a free worker and waiting for the next result."""

    def submit(self, index: int, item: Any) -> None: ...

    def next_done(self) -> tuple[int, Any]: ...


def _stream(dispatch: _Dispatch, items: Iterable[Any], *, capacity: int, window: int, ordered: bool) -> Iterator[Any]:
    """Keep up to ``capacity`` items running and ``window`` running-or-waiting-to-be-yielded; yield
    results in item order or as they finish. Items are pulled lazily and not referenced once sent."""
    source = iter(items)
    running = submitted = next_out = 0
    waiting: dict[int, Any] = {}
    exhausted = False
    while True:
        while not exhausted and running < capacity and running + len(waiting) < window:
            item = next(source, _END)
            if item is _END:
                exhausted = True
                break
            dispatch.submit(submitted, item)
            del item
            submitted += 1
            running += 1
        if running == 0:
            return
        index, result = dispatch.next_done()
        running -= 1
        if not ordered:
            yield result
            continue
        waiting[index] = result
        del result
        while next_out in waiting:
            yield waiting.pop(next_out)
            next_out += 1


# -- in this process -----------------------------------------------------------------------------


class InProcess:
    """Runs the worker in this process, one item after another."""

    workers = 1

    def map(self, factory: WorkerFactory[Item, Result], items: Iterable[Item], *, ordered: bool = True,
            on_event: Emit | None = None) -> Iterator[Result]:
        emit = on_event or _ignore
        worker = factory()
        try:
            for item in items:
                result = worker(item, emit)
                del item  # not held while the caller works on the result and pulls the next item
                yield result
        finally:
            _close(worker)


# -- local processes -----------------------------------------------------------------------------


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (its ``__cause__``)."""


class WorkerDied(RuntimeError):
    """A worker process ended without answering (killed, out of memory, crashed in native code)."""


def _process_main(factory_bytes: bytes, threads: ThreadLimits, tasks: Any, results: Any) -> None:
    """A worker process: build the worker, then answer tasks until the ``None`` that ends the map."""
    def emit(event: Any) -> None:
        results.put(("event", -1, event))

    try:
        worker = _build_worker(factory_bytes, threads)
    except BaseException as error:  # reported to the parent, which raises it
        results.put(("error", -1, _portable(error)))
        return
    try:
        while (task := tasks.get()) is not None:
            index, item = task
            try:
                results.put(("result", index, worker(item, emit)))
            except BaseException as error:
                results.put(("error", index, _portable(error)))
            del task, item
    finally:
        _close(worker)


def _portable(error: BaseException) -> tuple[BaseException, str]:
    """The exception (or, if it cannot be pickled, a RuntimeError naming it) and its traceback text."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        pickle.dumps(error)
    except Exception:
        error = RuntimeError(f"{type(error).__name__}: {error}")
    return error, text


class _ProcessDispatch:
    def __init__(self, processes: Sequence["BaseProcess"], tasks: Any, results: Any, on_event: Emit) -> None:
        self.processes, self.tasks, self.results, self.on_event = processes, tasks, results, on_event

    def submit(self, index: int, item: Any) -> None:
        self.tasks.put((index, item))

    def next_done(self) -> tuple[int, Any]:
        while True:
            try:
                kind, index, payload = self.results.get(timeout=0.5)
            except queue.Empty:
                self._check_alive()
                continue
            if kind == "event":
                self.on_event(payload)
            elif kind == "result":
                return index, payload
            else:
                error, text = payload
                raise error from RemoteTraceback(text)

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.exitcode is not None:
                raise WorkerDied(f"worker process {process.pid} ended with exit code {process.exitcode} "
                                 f"before the map was done")


class LocalProcesses:
    """``workers`` processes on this machine (``spawn``), each reserving ``cpus_per_worker`` CPUs;
    up to ``prefetch`` items per worker in flight."""

    def __init__(self, workers: int, *, cpus_per_worker: float = 1.0, prefetch: int = 4,
                 threads: ThreadLimits | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.prefetch = workers, prefetch
        self.threads = threads or ThreadLimits.for_cpus(cpus_per_worker)

    def map(self, factory: WorkerFactory[Item, Result], items: Iterable[Item], *, ordered: bool = True,
            on_event: Emit | None = None) -> Iterator[Result]:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        tasks, results = context.Queue(), context.Queue()
        factory_bytes = pickle.dumps(factory)
        processes = [context.Process(target=_process_main, args=(factory_bytes, self.threads, tasks, results),
                                     daemon=True) for _ in range(self.workers)]
        for process in processes:
            process.start()
        dispatch = _ProcessDispatch(processes, tasks, results, on_event or _ignore)
        finished = False
        try:
            yield from _stream(dispatch, items, capacity=self.workers * self.prefetch,
                               window=self.workers * self.prefetch, ordered=ordered)
            finished = True
        finally:
            if finished:
                for _ in processes:
                    tasks.put(None)
                for process in processes:
                    process.join(timeout=30)
            for process in processes:
                if process.is_alive():
                    process.terminate()
                    process.join()
            for channel in (tasks, results):
                channel.cancel_join_thread()
                channel.close()


# -- Ray -----------------------------------------------------------------------------------------


class RayUnavailable(MissingDependency):
    """Ray was asked for (``--engine ray``, a ``RayBackend``) but is not installed."""


def require_ray() -> Any:
    """Import Ray only when it is used; it is an optional extra."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailable(f"running on Ray needs Ray, which is not installed ({error}): pip install "
                             f"'posedive[ray]'", hint="pip install 'posedive[ray]'") from error
    return ray


def _cloudpickle() -> Any:
    """Ray's cloudpickle: pickles what plain pickle cannot (lambdas, classes defined in ``__main__``)."""
    require_ray()
    from ray import cloudpickle

    return cloudpickle


@contextlib.contextmanager
def ray_connection(address: str | None = None) -> Iterator[Any]:
    """Ray, connected: joins ``address`` (or starts a local cluster) unless this process is already
    connected, and disconnects on exit only if it connected here."""
    ray = require_ray()
    owns_connection = not ray.is_initialized()
    if owns_connection:
        ray.init(address=address)
    elif address is not None:
        logger.info("already connected to a Ray cluster; --address %s is not used", address)
    try:
        yield ray
    finally:
        if owns_connection:
            ray.shutdown()


class _RayHost:
    """The Ray actor that holds one worker (of a map) or one service."""

    def __init__(self, factory_bytes: bytes, threads: ThreadLimits, events: Any = None) -> None:
        self._events = events
        self._target = _build_worker(factory_bytes, threads, loads=_cloudpickle().loads)

    def pid(self) -> int:
        return os.getpid()

    def run(self, item: Any) -> Any:
        events = self._events
        if events is None:
            return self._target(item, _ignore)

        def emit(event: Any) -> None:
            events.put.remote([event])  # calls from one caller run in order: no need to wait here

        result = self._target(item, emit)
        require_ray().get(events.put.remote([]))  # every event of this item is stored before its result
        return result

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self._target, method)(*args)


class _EventBuffer:
    """A Ray actor that holds the events workers emit until the driver takes them."""

    def __init__(self) -> None:
        self._events: list[Any] = []

    def put(self, events: list[Any]) -> None:
        self._events.extend(events)

    def take(self) -> list[Any]:
        events, self._events = self._events, []
        return events


def _driver_node_actor(ray: Any, cls: type) -> Any:
    """An actor of ``cls`` on the driver's own node: it lives as long as the driver's node does, so
    losing another node of the cluster does not lose it (the driver's node lost ends the build anyway)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(cls).options(num_cpus=0, scheduling_strategy=here).remote()


def _host_options(cpus: float, gpus: float, max_restarts: int, name: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": cpus, "max_restarts": max_restarts, "max_task_retries": -1}
    if gpus:
        options["num_gpus"] = gpus
    if name is not None:
        options["name"] = name
    return options


class _RayDispatch:
    def __init__(self, ray: Any, hosts: Sequence[Any], events: Any, on_event: Emit) -> None:
        self.ray, self.events, self.on_event = ray, events, on_event
        self.idle = list(hosts)
        self.running: dict[Any, tuple[int, Any]] = {}  # result ref -> (item index, host)

    def submit(self, index: int, item: Any) -> None:
        host = self.idle.pop()
        self.running[host.run.remote(item)] = (index, host)

    def next_done(self) -> tuple[int, Any]:
        while True:
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=0.2 if self.events else None)
            if self.events is not None:
                for event in self.ray.get(self.events.take.remote()):
                    self.on_event(event)
            if ready:
                index, host = self.running.pop(ready[0])
                result = self.ray.get(ready[0])
                self.idle.append(host)
                return index, result


class RayBackend:
    """``workers`` Ray actors, each reserving ``cpus_per_worker`` CPUs (and ``gpus_per_worker`` GPUs),
    one item each at a time; a dead actor is restarted up to ``max_restarts`` times and its item
    retried. Connect first (``ray_connection``), or Ray starts a local cluster on first use."""

    def __init__(self, workers: int, *, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                 max_restarts: int = 3, threads: ThreadLimits | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers, self.cpus, self.gpus, self.max_restarts = workers, cpus_per_worker, gpus_per_worker, max_restarts
        self.threads = threads or ThreadLimits.for_cpus(cpus_per_worker)

    def map(self, factory: WorkerFactory[Item, Result], items: Iterable[Item], *, ordered: bool = True,
            on_event: Emit | None = None) -> Iterator[Result]:
        ray = require_ray()
        events = _driver_node_actor(ray, _EventBuffer) if on_event is not None else None
        host_class = ray.remote(_RayHost).options(**_host_options(self.cpus, self.gpus, self.max_restarts))
        factory_bytes = _cloudpickle().dumps(factory)
        hosts = [host_class.remote(factory_bytes, self.threads, events) for _ in range(self.workers)]
        try:
            yield from _stream(_RayDispatch(ray, hosts, events, on_event or _ignore), items,
                               capacity=self.workers, window=4 * self.workers, ordered=ordered)
        finally:
            for actor in (*hosts, *([events] if events is not None else [])):
                ray.kill(actor, no_restart=True)


class RayServiceClient:
    """Calls a method of one of the services (round-robin; each process starts at its own offset, so
    workers spread their calls). Picklable: workers of a map receive it through their factory."""

    def __init__(self, actors: Sequence[Any]) -> None:
        self._actors = tuple(actors)
        self._turn: Iterator[int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_actors": self._actors, "_turn": None}

    def call(self, method: str, *args: Any) -> Any:
        if self._turn is None:
            self._turn = itertools.count(os.getpid())
        actor = self._actors[next(self._turn) % len(self._actors)]
        return require_ray().get(actor.call.remote(method, *args))

    def call_all(self, method: str, *args: Any) -> list[Any]:
        ray = require_ray()
        return ray.get([actor.call.remote(method, *args) for actor in self._actors])


class RayServices(Generic[Result]):
    """``len(names)`` Ray actors, each holding one object made by ``factory`` (a loaded model, say),
    each reserving ``cpus`` CPUs and ``gpus`` GPUs, restarted up to ``max_restarts`` times (a call in
    flight is retried). A context manager: the actors are killed on exit."""

    def __init__(self, factory: Callable[[], Result], names: Sequence[str], *, cpus: float = 1.0, gpus: float = 0.0,
                 max_restarts: int = 3, threads: ThreadLimits | None = None) -> None:
        self.factory, self.names, self.cpus, self.gpus = factory, list(names), cpus, gpus
        self.max_restarts = max_restarts
        self.threads = threads or ThreadLimits.for_cpus(cpus)
        self._actors: list[Any] = []

    def __enter__(self) -> RayServiceClient:
        ray = require_ray()
        factory_bytes = _cloudpickle().dumps(self.factory)
        self._actors = [ray.remote(_RayHost).options(**_host_options(self.cpus, self.gpus, self.max_restarts, name))
                        .remote(factory_bytes, self.threads) for name in self.names]
        return RayServiceClient(self._actors)

    def __exit__(self, *exc: object) -> None:
        ray = require_ray()
        if ray.is_initialized():
            for actor in self._actors:
                ray.kill(actor, no_restart=True)
        self._actors = []
