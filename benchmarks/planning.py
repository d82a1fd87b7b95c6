"""Planning a source of a million files: reading its names and making the plan (run by hand).

    python benchmarks/planning.py [--files 1000000] [--keep DIR]

The source is a generated tree in the Market-1501 layout with Market's proportions (36 % training,
9 % query, 55 % gallery images; 17 training images per identity), scaled to ``--files`` files. The
files are empty: reading a source lists names only, so their content is never looked at. The plan is
the recipe's default (15 units per identity, 4 attempts each) over synthetic pose ids, so no pose bank
is loaded. Planning runs in a fresh child process, so its peak RSS is planning's alone.
Reported: wall and CPU time and peak RSS of reading the source and of making the plan, and the
machine's load average around the run (wall times on a shared machine follow its load), written to
``benchmarks/results/planning.json``. Issue target: under 30 s and under 2 GB for one million files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "planning.json"

# Market-1501's proportions: 12,936 training, 3,368 query and 19,732 gallery images; 751 training ids.
TRAIN_SHARE, QUERY_SHARE = 12936 / 36036, 3368 / 36036
TRAIN_IMAGES_PER_PID = 12936 / 751
CAMERAS = 6
POSE_IDS = 500


def _touch_split(folder: Path, count: int, pids: int, first_pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pid = first_pid + index % pids
        camera = 1 + (index // pids) % CAMERAS
        os.close(os.open(folder / f"{pid:06d}_c{camera}s1_{index:07d}_00.jpg", os.O_CREAT | os.O_WRONLY, 0o644))


def make_source(root: Path, files: int) -> dict[str, int]:
    train = round(files * TRAIN_SHARE)
    query = round(files * QUERY_SHARE)
    gallery = files - train - query
    train_pids = max(1, round(train / TRAIN_IMAGES_PER_PID))
    _touch_split(root / "bounding_box_train", train, train_pids, 1)
    _touch_split(root / "query", query, train_pids, train_pids + 1)
    _touch_split(root / "bounding_box_test", gallery, train_pids, train_pids + 1)
    return {"train": train, "query": query, "gallery": gallery, "train_identities": train_pids}


def plan_in_this_process(source_root: str) -> dict:
    """Read the source and plan it; what the child process prints."""
    sys.path[:0] = [str(ROOT)]
    from posedive.plan import make_plan
    from posedive.recipe import parse_recipe
    from posedive.sources import read_source

    recipe = parse_recipe({"name": "planning-benchmark", "version": "1.0.0",
                           "source": {"format": "market1501", "root": source_root},
                           "generator": {"weights": "unused"}, "output": {"samples_per_shard": 1000}})
    started, started_cpu = time.perf_counter(), time.process_time()
    source = read_source(recipe.source)
    read_s, read_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    read_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    plan = make_plan(recipe, source, [f"pose-{index:04d}" for index in range(POSE_IDS)])
    total_s, total_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    return {"read_source_s": round(read_s, 2), "make_plan_s": round(total_s - read_s, 2),
            "total_s": round(total_s, 2), "read_source_cpu_s": round(read_cpu_s, 2),
            "make_plan_cpu_s": round(total_cpu_s - read_cpu_s, 2), "total_cpu_s": round(total_cpu_s, 2),
            "peak_rss_after_read_bytes": read_rss,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "records": len(source.records), "work_units": len(plan.units), "shards": plan.num_shards}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="make (or reuse) the source tree here and keep it")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(plan_in_this_process(args.child)))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="posedive-planning-"))
    try:
        started = time.perf_counter()
        marker = folder / "counts.json"
        if marker.is_file():
            counts = json.loads(marker.read_text())
        else:
            counts = make_source(folder / "source", args.files)
            marker.write_text(json.dumps(counts))
        made_s = time.perf_counter() - started
        load_before = os.getloadavg()
        child = subprocess.run([sys.executable, __file__, "--child", str(folder / "source")],
                               check=True, capture_output=True, text=True)
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        load_after = os.getloadavg()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    result = {
        "files": args.files, "source": counts, "pose_ids": POSE_IDS, "make_source_s": round(made_s, 1),
        **measured, "peak_rss_gib": round(measured["peak_rss_bytes"] / 2**30, 3),
        "target": {"total_s": 30, "peak_rss_gib": 2},
        # On a shared machine the wall times follow the load; the CPU times much less so.
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min_before": round(load_before[0], 2), "load_average_1min_after": round(load_after[0], 2)},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(RESULTS.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
