"""Time of ``posedive build RECIPE --dry-run`` on a Market-1501-size source (run by hand).

    python benchmarks/dry_run.py [--profile]

The source is a generated tree in the exact Market-1501 layout with Market's counts (751 training
identities, 12,936 training, 3,368 query and 19,732 gallery images) of one tiny JPEG each; the recipe
is ``recipes/market.yaml``'s planning part (15 images per identity, 4 attempts each). The dry-run
reads the source, loads the pose bank and plans; it needs no generator. Reported: wall time of the
command (in this process, after one warm-up run that builds the pose bank's cache), and, with
``--profile``, how often the recipe hash is computed and the functions that take most time.
Results go to ``benchmarks/results/dry_run.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from posedive.cli import app  # noqa: E402

TRAIN_IMAGES, QUERY_IMAGES, GALLERY_IMAGES, TRAIN_PIDS, TEST_PIDS, CAMERAS = 12936, 3368, 19732, 751, 750, 6


def _tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 128), (120, 110, 100)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _spread(folder: Path, count: int, pids: list[int], data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pid = pids[index % len(pids)]
        camera = 1 + (index // len(pids)) % CAMERAS
        (folder / f"{pid:04d}_c{camera}s1_{index:06d}_00.jpg").write_bytes(data)


def make_market_size_source(root: Path) -> Path:
    data = _tiny_jpeg()
    _spread(root / "bounding_box_train", TRAIN_IMAGES, list(range(2, 2 + 2 * TRAIN_PIDS, 2)), data)
    test_pids = list(range(1, 1 + 2 * TEST_PIDS, 2))
    _spread(root / "query", QUERY_IMAGES, test_pids, data)
    _spread(root / "bounding_box_test", GALLERY_IMAGES, test_pids, data)
    return root


RECIPE = """\
name: market1501-dry-run
version: 1.0.0
source: {{format: market1501, root: {root}}}
images_per_pid: 15
max_attempts_per_image: 4
generator: {{weights: {root}/no-weights-needed-for-a-dry-run}}
output: {{dir: {out}, samples_per_shard: 1000}}
"""


def _dry_run(recipe: Path) -> float:
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["build", str(recipe), "--dry-run", "--no-progress"])
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"dry-run failed ({result.exit_code}): {result.output}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also profile one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dry_run.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_market_size_source(Path(tmp) / "Market-1501")
        recipe = Path(tmp) / "market.yaml"
        recipe.write_text(RECIPE.format(root=root, out=Path(tmp) / "releases"))
        _dry_run(recipe)  # warm-up: the pose bank's cache, imports
        times = [_dry_run(recipe) for _ in range(args.runs)]
        entry: dict = {"label": args.label, "dry_run_s": [round(t, 2) for t in times], "best_s": round(min(times), 2)}
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            _dry_run(recipe)
            profiler.disable()
            stats = pstats.Stats(profiler)
            hash_calls = sum(calls for (file, _, name), (calls, *_rest) in stats.stats.items()
                             if name == "canonical_json" and file.endswith("recipe.py"))
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
            entry["recipe_hash_computations"] = hash_calls
            print(text.getvalue())
    results = json.loads(args.out.read_text()) if args.out.is_file() else {
        "benchmark": "posedive build --dry-run on a Market-1501-size source (tiny JPEGs)", "runs": []}
    results["runs"] = [run for run in results["runs"] if run.get("label") != args.label] + [entry]
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
