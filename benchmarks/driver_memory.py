"""The driver's peak memory during a Ray build, at two shard sizes, with and without chunks (run by hand).

    python benchmarks/driver_memory.py [--sizes 4 64] [--chunks 0 4] [--code DIR]

Each configuration runs in a fresh driver process that starts its own local Ray cluster (3 CPUs: one
generation actor and two shard workers) and builds the small test recipe (``tests/frame_helpers.py``:
5 identities, ``--images-per-pid`` work units each) with ``samples_per_shard`` set to each size and
``units_per_chunk`` to each of ``--chunks`` (0: shards built whole), using the test doubles of
``tests/doubles.py`` at ``--width`` x ``--height`` with a generator that adds strong seeded noise
(``--noise``), so that its JPEGs do not compress away and a shard of 64 samples is tens of MB.
Reported per run: the driver's peak RSS (``ru_maxrss`` of the driver process alone: Ray's workers and
daemons are other processes), the size of the largest shard, and the bytes of what came back to the
driver. Workers write whole shards and chunks themselves and the driver assembles a chunked shard by
streaming its chunk files, so the driver's peak must not grow with the shard's size, chunks or not.

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


def noisy_generator(width: int, height: int, noise: float):
    """The double generator with strong seeded noise added: images of about 0.5 MB as JPEG at 512x1024."""
    import numpy as np
    from doubles import DoubleGenerator
    from PIL import Image

    class NoisyGenerator(DoubleGenerator):
        def generate(self, requests):
            images = super().generate(requests)
            noisy = []
            for request, image in zip(requests, images):
                rng = np.random.default_rng(request.seed + 1)
                pixels = np.asarray(image, np.float32) + rng.normal(0, noise, (height, width, 3))
                noisy.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
            return noisy

    return NoisyGenerator(width=width, height=height)


def stages(width: int, height: int, noise: float):
    """The test doubles at the benchmark's image size (a picklable factory for the Ray workers)."""
    from doubles import DoubleEstimator, DoubleRenderer

    from posedive.builder import BuildStages

    return BuildStages(conditions=DoubleRenderer(width=width, height=height), estimator=DoubleEstimator(),
                       generator=noisy_generator(width, height, noise))


def drive(code: Path, samples_per_shard: int, units_per_chunk: int, images_per_pid: int, width: int, height: int,
          noise: float) -> dict:
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
            output = {"samples_per_shard": samples_per_shard}
            if units_per_chunk:
                output["units_per_chunk"] = units_per_chunk
            recipe = frame_recipe(Path(folder), output=output, images_per_pid=images_per_pid,
                                  generator={"width": width, "height": height})
            factory = functools.partial(stages, width, height, noise)
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
    return {"samples_per_shard": samples_per_shard, "units_per_chunk": units_per_chunk or None,
            "chunks": report.plan.chunk_count(), "shards": len(shards), "samples": samples,
            "largest_shard_bytes": largest, "returned_to_driver_bytes": returned,
            "driver_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "driver_rss_after_ray_init_bytes": baseline, "build_s": round(seconds, 1)}


def _growth(runs: list[dict], key: str) -> float:
    return round((runs[-1][key] - runs[0][key]) / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 64])
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 4], help="units_per_chunk (0: whole shards)")
    parser.add_argument("--images-per-pid", type=int, default=16)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--noise", type=float, default=40.0)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose posedive package is measured")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    code = args.code.resolve()
    if args.child is not None:
        sys.path[:0] = [str(TESTS), str(code)]
        size, chunk = args.child
        print(json.dumps(drive(code, size, chunk, args.images_per_pid, args.width, args.height, args.noise)))
        return
    by_chunking = {}
    for chunk in args.chunks:
        runs = []
        for size in args.sizes:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(code)])}
            child = subprocess.run([sys.executable, __file__, "--child", str(size), str(chunk), "--code", str(code),
                                    "--images-per-pid", str(args.images_per_pid), "--width", str(args.width),
                                    "--height", str(args.height), "--noise", str(args.noise)],
                                   check=True, capture_output=True, text=True, env=env, cwd=code)
            run = json.loads(child.stdout.strip().splitlines()[-1])
            run["driver_peak_rss_mib"] = round(run["driver_peak_rss_bytes"] / 2**20, 1)
            run["largest_shard_mib"] = round(run["largest_shard_bytes"] / 2**20, 1)
            runs.append(run)
            print(json.dumps(run), flush=True)
        by_chunking["whole shards" if not chunk else f"units_per_chunk {chunk}"] = {
            "runs": runs, "peak_growth_mib": _growth(runs, "driver_peak_rss_bytes"),
            "largest_shard_growth_mib": _growth(runs, "largest_shard_bytes")}
    result = {"code": "this checkout" if code == ROOT else code.name, "image_size": [args.width, args.height],
              "noise": args.noise, "work_units": 5 * args.images_per_pid, "builds": by_chunking,
              "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()}}
    name = "driver_memory.json" if code == ROOT else f"driver_memory.{code.name}.json"
    target = ROOT / "benchmarks" / "results" / name
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, target)
    print(json.dumps({label: {k: v for k, v in build.items() if k != "runs"} for label, build in by_chunking.items()},
                     indent=2))


if __name__ == "__main__":
    main()
