"""Throughput of a build against the number of CPU shard workers, local engine vs Ray engine (run by hand).

    python benchmarks/scaleout.py --workers 1 2

What it measures is scheduling: whether the engine keeps the generator busy while the CPU stages run.
The stages are the test doubles of ``tests/doubles.py`` with costs set to the rates measured on this
project's stages: every estimated image and every rendered condition spins a CPU core for
``--cpu-ms`` (BlazePose: about 70 ms per image, ``benchmarks/results/filtering.json``; a condition set:
about 110 ms, ``benchmarks/results/conditions.json``), and the generator sleeps ``--gen-ms`` per image
without using a CPU, as a GPU would (40 ms = the target rate of 25 images/s per GPU). The defaults are
scaled down so the benchmark runs in about a minute on two cores. Nothing here is a model.

For each configuration it builds the same recipe into a fresh folder and reports samples/s, generated
images/s and the generator's busy fraction (time inside ``generate`` over the building phase: from the
call to the last shard written, so planning and finalising are left out), plus the generator's own
batch rate. For Ray the building phase includes starting the shard workers and generation actors;
``steady_samples_per_s`` leaves start-up out (samples of every shard but the first, over the time
between the first and the last shard landing). The local engine is the baseline (one process, stages in sequence); the
Ray cluster is started once (``ray.init(num_cpus=workers + 1)``: one CPU for the generation actor)
and its start-up is reported, not timed. Results go to ``benchmarks/results/scaleout.json``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path[:0] = [str(TESTS), str(ROOT), str(Path(__file__).resolve().parent)]

from _recipes import stand_in_recipe  # noqa: E402
from _results import machine, write_result  # noqa: E402
from doubles import DoubleEstimator, DoubleGenerator, DoubleRenderer  # noqa: E402

from posedive.builder import BuildStages, build_release  # noqa: E402

logger = logging.getLogger("benchmarks.scaleout")


def spin(milliseconds: float) -> None:
    """Keep one CPU core busy, as a CPU stage does (``time.sleep`` would free the core)."""
    until = time.perf_counter() + milliseconds / 1000.0
    while time.perf_counter() < until:
        pass


class CostlyRenderer(DoubleRenderer):
    def __init__(self, cpu_ms: float):
        super().__init__()
        self.cpu_ms = cpu_ms

    def render(self, requests):
        spin(self.cpu_ms * len(requests))
        return super().render(requests)


class CostlyEstimator(DoubleEstimator):
    def __init__(self, cpu_ms: float):
        self.cpu_ms = cpu_ms

    def estimate(self, images):
        spin(self.cpu_ms * len(images))
        return super().estimate(images)


class TimedGenerator(DoubleGenerator):
    """Records the time spent generating, for the local engine's busy fraction."""

    def __init__(self, delay_s: float):
        super().__init__(delay_s)
        self.busy_s = 0.0
        self.images = 0

    def generate(self, requests):
        started = time.perf_counter()
        images = super().generate(requests)
        self.busy_s += time.perf_counter() - started
        self.images += len(images)
        return images


def costly_stages(cpu_ms: float, gen_ms: float) -> BuildStages:
    return BuildStages(conditions=CostlyRenderer(cpu_ms), estimator=CostlyEstimator(cpu_ms),
                       generator=TimedGenerator(gen_ms / 1000.0))


def make_recipe(folder: Path, pids: int, per_pid: int, per_shard: int, batch_size: int):
    return stand_in_recipe(folder, folder.parent / "market", name="scaleout-bench", pids=pids,
                           images_per_pid=per_pid, batch_size=batch_size, output={"samples_per_shard": per_shard})


def run_one(name: str, folder: Path, args, engine=None) -> dict:
    recipe = make_recipe(folder, args.pids, args.per_pid, args.per_shard, args.batch_size)
    stages = costly_stages(args.cpu_ms, args.gen_ms)
    started, wall_started = time.perf_counter(), time.time()
    report = build_release(recipe, stages=stages, engine=engine, show_progress=False)
    total_s = time.perf_counter() - started
    # The building phase ends when the last shard lands; planning and finalising (plots, card) are
    # the same driver code for every engine and are reported apart.
    shard_times = sorted(path.stat().st_mtime for path in recipe.release_dir.glob("data/*.tar"))
    seconds = shard_times[-1] - wall_started
    if engine is None:
        images, busy = stages.generator.images, stages.generator.busy_s
    else:
        images = sum(s.images for s in engine.generation_stats)
        busy = sum(s.busy_s for s in engine.generation_stats)
    manifest = report.manifest
    landed = sorted(((recipe.release_dir / entry.path).stat().st_mtime, entry.samples) for entry in manifest.shards)
    steady_s = landed[-1][0] - landed[0][0]
    row = {
        "engine": name, "build_s": round(seconds, 2), "total_s_with_plan_and_finalize": round(total_s, 2),
        "first_shard_s": round(shard_times[0] - wall_started, 2), "samples": manifest.samples,
        "samples_per_s": round(manifest.samples / seconds, 2), "generated_per_s": round(images / seconds, 2),
        "steady_samples_per_s": round(sum(n for _, n in landed[1:]) / steady_s, 2) if steady_s > 0 else None,
        "generator_busy_fraction": round(busy / seconds, 3),
        "generator_own_rate_images_per_s": round(images / busy, 2) if busy else None,
        "manifest_sha256": hashlib.sha256((recipe.release_dir / "manifest.json").read_bytes()).hexdigest(),
    }
    logger.info("%s", row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray shard workers to try")
    parser.add_argument("--pids", type=int, default=24)
    parser.add_argument("--per-pid", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cpu-ms", type=float, default=10.0, help="CPU cost per estimated image / rendered condition")
    parser.add_argument("--gen-ms", type=float, default=20.0, help="generator time per image (off-CPU, as on a GPU)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scaleout.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("posedive").setLevel(logging.WARNING)

    import ray

    from posedive.builder.ray_engine import RayEngine

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="posedive-scaleout-") as tmp:
        rows.append(run_one("local", Path(tmp) / "local", args))
        started = time.perf_counter()
        pythonpath = os.pathsep.join([str(TESTS), str(ROOT), str(Path(__file__).resolve().parent)])
        ray.init(num_cpus=max(args.workers) + 1, include_dashboard=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        ray_start_s = time.perf_counter() - started
        try:
            factory = functools.partial(costly_stages, args.cpu_ms, args.gen_ms)
            for workers in args.workers:
                engine = RayEngine(stages_factory=factory, generators=1, shard_workers=workers)
                row = run_one(f"ray-{workers}-workers", Path(tmp) / f"ray-{workers}", args, engine)
                row["shard_workers"] = workers
                rows.append(row)
        finally:
            ray.shutdown()
    identical = len({row.pop("manifest_sha256") for row in rows}) == 1
    result = {
        "benchmark": "build throughput vs CPU shard workers: local engine and Ray engine (stage doubles with "
                     "calibrated costs)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "ideal_generator_rate_images_per_s": round(1000.0 / args.gen_ms, 1),
        "ray_start_s": round(ray_start_s, 2),
        "runs": rows,
        "identical_manifests": identical,
        "load_average_before": [round(x, 2) for x in load_before],
        "machine": machine(ray=ray.__version__),
    }
    write_result(args.out, result, logger)


if __name__ == "__main__":
    main()
