"""The driver's peak memory during a Ray build, at two shard sizes (run by hand).

    python benchmarks/driver_memory.py [--sizes 4 16] [--code DIR]

Each configuration runs in a fresh driver process that starts its own local Ray cluster (3 CPUs: one
generation actor and two shard workers) and builds the small test recipe (``tests/frame_helpers.py``:
5 identities, 15 work units) with ``samples_per_shard`` set to each size, using the test doubles of
``tests/doubles.py`` at ``--width`` x ``--height`` so that a shard is megabytes, not kilobytes (the
double generator adds seeded noise, so its JPEGs do not compress away). Reported per size: the
driver's peak RSS (``ru_maxrss`` of the driver process alone: Ray's workers and daemons are other
processes), the size of the largest shard, and the bytes of what came back to the driver. With the
workers writing shards themselves, the driver's peak must not grow with the shard's size.

``--code DIR`` runs the same builds with the posedive package of another checkout (e.g. one from before
workers wrote their own shards) for comparison. Results go to ``benchmarks/results/driver_memory.json``
(``--code`` runs to ``driver_memory.<name>.json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"


def stages(width: int, height: int):
    """The test doubles at the benchmark's image size (a picklable factory for the Ray workers)."""
    from doubles import DoubleEstimator, DoubleGenerator, DoubleRenderer

    from posedive.builder import BuildStages

    return BuildStages(conditions=DoubleRenderer(width=width, height=height), estimator=DoubleEstimator(),
                       generator=DoubleGenerator(width=width, height=height))


def drive(code: Path, samples_per_shard: int, width: int, height: int) -> dict:
    """One build on a fresh local Ray cluster; what the driver process measured."""
    import ray
    from frame_helpers import frame_recipe

    from posedive.builder import build_release
    from posedive.builder.ray_engine import RayEngine

    pythonpath = os.pathsep.join([str(TESTS), str(code), str(Path(__file__).resolve().parent)])
    ray.init(address="local", num_cpus=3, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        with tempfile.TemporaryDirectory(prefix="posedive-driver-memory-") as folder:
            recipe = frame_recipe(Path(folder), output={"samples_per_shard": samples_per_shard},
                                  generator={"width": width, "height": height})
            factory = functools.partial(stages, width, height)
            started = time.perf_counter()
            report = build_release(recipe, stages=factory(), show_progress=False,
                                   engine=RayEngine(stages_factory=factory, generators=1, shard_workers=2))
            seconds = time.perf_counter() - started
            shards = sorted(recipe.release_dir.glob("data/*.tar"))
            largest = max(path.stat().st_size for path in shards)
            receipts = getattr(report, "receipts", None)
            returned = sum(len(r.model_dump_json()) for r in receipts) if receipts is not None else None
            samples = report.manifest.samples
    finally:
        ray.shutdown()
    return {"samples_per_shard": samples_per_shard, "shards": len(shards), "samples": samples,
            "largest_shard_bytes": largest, "returned_to_driver_bytes": returned,
            "driver_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "driver_rss_after_ray_init_bytes": baseline, "build_s": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--height", type=int, default=1536)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose posedive package is measured")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    code = args.code.resolve()
    if args.child is not None:
        sys.path[:0] = [str(TESTS), str(code)]
        print(json.dumps(drive(code, args.child, args.width, args.height)))
        return
    runs = []
    for size in args.sizes:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(code)])}
        child = subprocess.run([sys.executable, __file__, "--child", str(size), "--code", str(code),
                                "--width", str(args.width), "--height", str(args.height)],
                               check=True, capture_output=True, text=True, env=env, cwd=code)
        run = json.loads(child.stdout.strip().splitlines()[-1])
        run["driver_peak_rss_mib"] = round(run["driver_peak_rss_bytes"] / 2**20, 1)
        run["largest_shard_mib"] = round(run["largest_shard_bytes"] / 2**20, 1)
        runs.append(run)
        print(json.dumps(run))
    growth = runs[-1]["driver_peak_rss_bytes"] - runs[0]["driver_peak_rss_bytes"]
    result = {"code": "this checkout" if code == ROOT else code.name, "image_size": [args.width, args.height],
              "runs": runs, "peak_growth_mib": round(growth / 2**20, 1),
              "largest_shard_growth_mib": round((runs[-1]["largest_shard_bytes"] - runs[0]["largest_shard_bytes"]) / 2**20, 1),
              "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()}}
    name = "driver_memory.json" if code == ROOT else f"driver_memory.{code.name}.json"
    target = ROOT / "benchmarks" / "results" / name
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, target)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
