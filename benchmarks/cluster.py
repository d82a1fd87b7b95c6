"""A build on a simulated multi-node Ray cluster: images/s against the number of GPUs (run by hand).

    python benchmarks/cluster.py                 # 1, 2, 4, 8 simulated GPUs, then a node killed mid-build

Ray's own multi-node test cluster (``ray.cluster_utils.Cluster``) runs several raylets on this one
machine: a head node with no CPUs for the driver, and one node per simulated GPU carrying
``{"GPU": 1}`` and ``--workers-per-gpu + 1`` CPUs. On it runs posedive's real build code: the runner
(``build_release``), the Ray engine (``RayEngine``: one generation actor per GPU, shard workers on the
CPUs, the plan's chunks of each shard spread over them, shards assembled and written by the driver).

Only the model stages are stand-ins (``tests/doubles.py``): the generator sleeps ``--seconds-per-image``
per image without using a CPU, as a GPU would; by default 8 times the per-image time measured on an
H200 (1.099 s for a batch of 16 at 192x384, bf16, 25 steps, ``benchmarks/results/generation_cuda_h200.json``,
so 68.7 ms), scaled up so that 8 simulated GPUs do not need more CPU than this two-core machine has.
The renderer and the pose estimator are the cheap doubles (a few ms of numpy per image), so the CPU
side is posedive's own work (planning, chunks, filtering decisions, encoding, events, assembly,
writing) plus Ray's. With real stages a GPU needs about 3 CPU cores (README, "Scaling").

Each GPU count builds a recipe of ``--units-per-gpu`` work units per GPU (weak scaling: every run
gives each GPU the same work), in shards of ``--samples-per-shard`` and chunks of
``--units-per-chunk``. Reported per run: generated images/s in the building phase (first to last
work-unit event, so the start of the actors is left out; ``end_to_end_images_per_s`` counts it),
scaling efficiency against linear (images/s over G times the 1-GPU rate), the generation actors'
busy fraction, the driver's peak resident memory (each run's driver is a fresh process) and whether
the release is byte-identical (``manifest.json``, which holds every file's sha256) to a local-engine
build of the same recipe. The last run kills one GPU node (its generation actor and shard workers)
once a third of the work units are done, then adds a fresh node, as a cluster's autoscaler would;
the build finishes and the release is compared again. Results go to ``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path[:0] = [str(TESTS), str(ROOT)]

from _recipes import stand_in_recipe  # noqa: E402
from _results import machine, write_result  # noqa: E402
from doubles import DoubleGenerator, double_stages  # noqa: E402

from posedive import paths  # noqa: E402
from posedive.builder import build_release  # noqa: E402

logger = logging.getLogger("benchmarks.cluster")

H200_RESULTS = ROOT / "benchmarks" / "results" / "generation_cuda_h200.json"
IMAGES_PER_PID = 6


def measured_seconds_per_image() -> float:
    """The H200's time per image at batch 16 (the recipe default), from the committed results."""
    rows = json.loads(H200_RESULTS.read_text())["rows"]
    row = next(row for row in rows if row["batch_size"] == 16)
    return row["seconds_per_batch"] / row["batch_size"]


def make_recipe(folder: Path, gpus: int, args: argparse.Namespace):
    # One source per size: its path is part of the recipe hash.
    return stand_in_recipe(folder, folder.parent / f"market-{gpus}", name="cluster-bench",
                           pids=args.units_per_gpu * gpus // IMAGES_PER_PID, images_per_pid=IMAGES_PER_PID,
                           batch_size=args.batch_size,
                           output={"samples_per_shard": args.samples_per_shard,
                                   "units_per_chunk": args.units_per_chunk})


class LoggingGenerator(DoubleGenerator):
    """The stand-in generator (sleeps ``delay_s`` per image, off-CPU), noting each batch's start, end
    and size in ``log_dir/<pid>.jsonl``: the simulated GPUs' own time line."""

    def __init__(self, delay_s: float, log_dir: str):
        super().__init__(delay_s)
        self.log = Path(log_dir) / f"{os.getpid()}.jsonl"

    def generate(self, requests):
        started = time.time()
        images = super().generate(requests)
        with self.log.open("a") as log:
            log.write(json.dumps({"start": started, "end": time.time(), "images": len(images)}) + "\n")
        return images


def gpu_timeline(log_dir: Path, gpus: int) -> dict:
    """From the batches every generation actor logged: the window in which all ``gpus`` generators were
    at work (from the last one's first batch to the first one's last batch, so start-up and drain are
    left out), the images generated in it (batches cut at its edges counted pro rata), and the
    busy fraction of the generators in it."""
    actors = [[json.loads(line) for line in path.read_text().splitlines()] for path in sorted(log_dir.glob("*.jsonl"))]
    actors = [batches for batches in actors if batches]
    first_start = min(batch["start"] for batches in actors for batch in batches)
    last_end = max(batch["end"] for batches in actors for batch in batches)
    # A replaced actor is a new process: the window is over the original ones (the first ``gpus``).
    originals = sorted(actors, key=lambda batches: batches[0]["start"])[:gpus]
    start = max(batches[0]["start"] for batches in originals)
    end = min(batches[-1]["end"] for batches in originals)
    images = busy = 0.0
    for batches in actors:
        for batch in batches:
            overlap = min(batch["end"], end) - max(batch["start"], start)
            if overlap > 0:
                images += batch["images"] * overlap / (batch["end"] - batch["start"])
                busy += overlap
    seconds = end - start
    return {"all_busy_window_s": round(seconds, 2), "images_in_window": round(images, 1),
            "images_per_s": round(images / seconds, 3) if seconds > 0 else None,
            "generator_busy_fraction": round(busy / (gpus * seconds), 3) if seconds > 0 else None,
            "generation_span_s": round(last_end - first_start, 2),
            "generated_images_logged": sum(batch["images"] for batches in actors for batch in batches)}


@dataclass
class TimedEngine:
    """Passes the build to ``engine`` unchanged, noting when each work-unit event reaches the driver;
    ``on_progress`` is called once ``trigger_fraction`` of the units are done."""

    engine: object
    trigger_fraction: float | None = None
    on_progress: object = None
    times: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def build_shards(self, recipe, source, plan, shards, on_event):
        total = sum(len(plan.shard_units(shard)) for shard in shards)
        finished = 0
        fired = False

        def timed(event):
            nonlocal finished, fired
            self.times.append(time.perf_counter())
            finished += event.outcome != "rejected"
            if self.trigger_fraction is not None and not fired and finished >= self.trigger_fraction * total:
                fired = True
                self.on_progress()
            on_event(event)

        self.started = time.perf_counter()
        yield from self.engine.build_shards(recipe, source, plan, shards, timed)
        self.ended = time.perf_counter()


def child(args: argparse.Namespace) -> None:
    """One run: a fresh simulated cluster, one Ray build into ``--folder``; its row as JSON on stdout."""
    import ray
    from ray.cluster_utils import Cluster

    from posedive.builder.ray_engine import RayEngine

    gpus = args.child
    node_args = {"num_cpus": args.workers_per_gpu + 1, "num_gpus": 1, "object_store_memory": 150 * 2**20}
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 150 * 2**20})
    nodes = [cluster.add_node(**node_args) for _ in range(gpus)]
    cluster.wait_for_nodes()
    pythonpath = os.pathsep.join([str(TESTS), str(ROOT)])
    ray.init(address=cluster.address, logging_level=logging.WARNING,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    cluster_start_s = time.perf_counter() - started
    kill_log: dict = {}
    log_dir = args.folder / "gpu-log"
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = RayEngine(stages_factory=double_stages,
                       generator_factory=functools.partial(LoggingGenerator, args.seconds_per_image, str(log_dir)),
                       shard_workers=args.workers_per_gpu * gpus, actor_restarts=5)
    trigger = threading.Event()
    timed = TimedEngine(engine, trigger_fraction=1 / 3 if args.kill else None, on_progress=trigger.set)
    recipe = make_recipe(args.folder, gpus, args)
    outcome: dict = {}

    def build() -> None:
        try:
            outcome["report"] = build_release(recipe, stages=double_stages(), engine=timed, show_progress=False)
        except BaseException as error:  # raised again below
            outcome["error"] = error
        finally:
            trigger.set()

    # The build runs in a thread: Ray starts and stops nodes only from the main thread.
    builder = threading.Thread(target=build)
    builder.start()
    if args.kill:
        trigger.wait()
        if builder.is_alive():
            kill_log["killed_at_s"] = round(time.perf_counter() - timed.started, 2)
            cluster.remove_node(nodes[-1], allow_graceful=False)
            time.sleep(args.replace_after_s)
            cluster.add_node(**node_args)
            kill_log["replaced_at_s"] = round(time.perf_counter() - timed.started, 2)
    builder.join()
    ray.shutdown()
    cluster.shutdown()
    if "error" in outcome:
        raise outcome["error"]
    report = outcome["report"]
    totals = report.manifest.totals
    generated = totals.accepted + totals.generated_rejected
    build_s = timed.ended - timed.started
    timeline = gpu_timeline(log_dir, gpus)
    row = {
        "gpus": gpus, "nodes": gpus, "shard_workers": args.workers_per_gpu * gpus,
        "shards": report.plan.num_shards, "chunks": report.plan.chunk_count(),
        "work_units": totals.work_units, "samples": report.manifest.samples, "generated_images": generated,
        "cluster_start_s": round(cluster_start_s, 2), "build_s": round(build_s, 2),
        **timeline,
        "end_to_end_images_per_s": round(generated / build_s, 3),
        "ideal_images_per_s": round(gpus / args.seconds_per_image, 3),
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **({"node_kill": kill_log} if args.kill else {}),
    }
    print(json.dumps(row))


def run_child(gpus: int, folder: Path, args: argparse.Namespace, kill: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(gpus), "--folder", str(folder)]
    for name in ("seconds_per_image", "units_per_gpu", "workers_per_gpu", "batch_size", "samples_per_shard",
                 "units_per_chunk", "replace_after_s"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    command += ["--kill"] if kill else []
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"run with {gpus} GPUs failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def local_manifest(folder: Path, gpus: int, args: argparse.Namespace) -> bytes:
    """The same recipe built by the local engine (the generator without its sleep: same images)."""
    recipe = make_recipe(folder, gpus, args)
    build_release(recipe, stages=double_stages(), show_progress=False)
    return (recipe.release_dir / paths.MANIFEST).read_bytes()


def add_efficiencies(rows: list[dict]) -> None:
    """Each run's rate against G times the 1-GPU run's: in the window with every generator at work
    (``scaling_efficiency``) and over the whole generation span, ramp-up and drain included
    (``span_images_per_s``, ``span_scaling_efficiency``)."""
    for row in rows:
        row["span_images_per_s"] = round(row["generated_images_logged"] / row["generation_span_s"], 3)
    one = next((row for row in rows if row["gpus"] == 1 and "node_kill" not in row), None)
    for row in rows:
        if one is not None:
            row["scaling_efficiency"] = round(row["images_per_s"] / (row["gpus"] * one["images_per_s"]), 3)
            row["span_scaling_efficiency"] = round(row["span_images_per_s"] / (row["gpus"] * one["span_images_per_s"]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2, 4, 8], help="simulated GPUs (one node each)")
    parser.add_argument("--kill-gpus", type=int, default=4, help="GPUs of the run that loses a node (0: none)")
    parser.add_argument("--time-scale", type=float, default=8.0, help="seconds per image = H200's times this")
    parser.add_argument("--seconds-per-image", type=float, default=None, help="overrides --time-scale")
    parser.add_argument("--units-per-gpu", type=int, default=60)
    parser.add_argument("--workers-per-gpu", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--samples-per-shard", type=int, default=60)
    parser.add_argument("--units-per-chunk", type=int, default=8)
    parser.add_argument("--replace-after-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cluster.json")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kill", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("posedive").setLevel(logging.WARNING)
    measured = measured_seconds_per_image()
    if args.seconds_per_image is None:
        args.seconds_per_image = round(measured * args.time_scale, 4)
    if args.child is not None:
        child(args)
        return

    import ray

    load_before = os.getloadavg()
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="posedive-cluster-") as tmp:
        runs = [(gpus, False) for gpus in args.gpus] + ([(args.kill_gpus, True)] if args.kill_gpus else [])
        references: dict[int, bytes] = {}
        for gpus, kill in runs:
            if gpus not in references:
                references[gpus] = local_manifest(Path(tmp) / f"local-{gpus}", gpus, args)
            folder = Path(tmp) / f"ray-{gpus}{'-kill' if kill else ''}"
            row = run_child(gpus, folder, args, kill)
            built = (make_recipe(folder, gpus, args).release_dir / paths.MANIFEST).read_bytes()
            row["identical_to_local_build"] = built == references[gpus]
            rows.append(row)
            logger.info("%s", row)
    add_efficiencies(rows)
    result = {
        "benchmark": "Ray build on a simulated multi-node cluster (ray.cluster_utils.Cluster): images/s vs "
                     "simulated GPUs, stand-in stages",
        "generator_stand_in": {
            "seconds_per_image": args.seconds_per_image,
            "measured_h200_seconds_per_image": round(measured, 5),
            "measured_from": "benchmarks/results/generation_cuda_h200.json (batch 16: seconds_per_batch / 16)",
            "time_scale": round(args.seconds_per_image / measured, 2),
        },
        "cpu_stages": "tests/doubles.py renderer and estimator (numpy, a few ms per image), not the real ones",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("child", "folder", "kill", "out")},
        "runs": rows,
        "wall_s": round(time.perf_counter() - started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(ray=ray.__version__),
    }
    write_result(args.out, result, logger)


if __name__ == "__main__":
    main()
