"""Throughput of the generated-image filter (BlazePose + eqs. 12-13) on this machine's CPUs (run by hand).

    python benchmarks/filtering.py --images 240 --processes 1 2

A build runs the estimator once per generated image (reference and target confidences are cached per
reference image and per condition), so the filter's rate is BlazePose's rate on generator-sized images
(192x384). Images are real pedestrian crops from OpenCV's ``vtest.avi`` resized to that size. Each
process holds one estimator, as ``posedive.analysis.images`` does; the warm-up (model load, first
inference) is not timed.

Wall-clock rates depend on what else runs on the CPUs, so the load average is recorded with them; the
CPU time per image does not, and gives the rate of one free core. Both are written to
``benchmarks/results/filtering.json`` and compared with the generator's target rate of 25 images/s
per GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.filtering")

# Crops of OpenCV's vtest.avi committed with the tests (tests/pose_images.py CROPS names their boxes).
VTEST_CROPS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "opencv_samples" / "vtest_crops"
CROPS = ("f0_front", "f0_walks_left", "f200_front", "f200_back", "f400_walks_right", "f400_front")
GENERATOR_TARGET_RATE = 25.0  # images/s per GPU

# Per-process state of pool workers: the estimator and the filter settings.
_WORKER: dict = {}


def load_crops(width: int, height: int) -> list[np.ndarray]:
    import cv2
    from PIL import Image

    return [cv2.resize(np.asarray(Image.open(VTEST_CROPS / f"{name}.png").convert("RGB")), (width, height),
                       interpolation=cv2.INTER_CUBIC) for name in CROPS]


def _init() -> None:
    from posedive.pose import load_pose_estimator
    from posedive.recipe import FilterConfig

    _WORKER["estimator"] = load_pose_estimator("blazepose")
    _WORKER["config"] = FilterConfig()


def _filter(images: list[np.ndarray], target: np.ndarray) -> int:
    from posedive.filtering import generated_decision

    estimates = _WORKER["estimator"].estimate(images)
    return sum(generated_decision(e.confidences, target, _WORKER["config"]).kept for e in estimates)


def run(processes: int, images: list[np.ndarray], target: np.ndarray, chunk: int) -> dict:
    chunks = [images[i : i + chunk] for i in range(0, len(images), chunk)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_init) as pool:
        list(pool.map(_filter, [images[:2]] * processes, [target] * processes))  # warm up every worker
        start = time.perf_counter()
        kept = sum(pool.map(_filter, chunks, [target] * len(chunks)))
        seconds = time.perf_counter() - start
    return {"processes": processes, "images": len(images), "seconds": round(seconds, 3),
            "images_per_s": round(len(images) / seconds, 1), "kept": int(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "filtering.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from posedive.filtering import generated_decision
    from posedive.pose import load_pose_estimator
    from posedive.recipe import FilterConfig

    crops = load_crops(args.width, args.height)
    images = [crops[i % len(crops)] for i in range(args.images)]
    with load_pose_estimator("blazepose") as estimator:
        target = estimator.estimate([crops[0]])[0].confidences  # a stand-in for a rendered target
        config = FilterConfig()
        start = time.perf_counter()
        for _ in range(10000):
            generated_decision(target, target, config)
        decision_us = (time.perf_counter() - start) / 10000 * 1e6
        # CPU seconds per image in this process: what one free core could do, whatever the load.
        sample = images[: min(len(images), 60)]
        wall, cpu = time.perf_counter(), time.process_time()
        estimator.estimate(sample)
        cpu_ms = (time.process_time() - cpu) / len(sample) * 1e3
        wall_ms = (time.perf_counter() - wall) / len(sample) * 1e3

    load_before = os.getloadavg()
    runs = []
    for processes in args.processes:
        result = run(processes, images, target, args.chunk)
        logger.info("%d process(es): %.1f images/s (%d images in %.1f s)", processes, result["images_per_s"],
                    result["images"], result["seconds"])
        runs.append(result)
    best = max(r["images_per_s"] for r in runs)
    summary = {
        "benchmark": "generated-image filter: BlazePose estimate + eqs. 12-13",
        "image_size": [args.width, args.height],
        "decision_only_us": round(decision_us, 1),
        "estimate_cpu_ms_per_image": round(cpu_ms, 1),
        "estimate_wall_ms_per_image_one_process": round(wall_ms, 1),
        "images_per_s_per_free_core": round(1e3 / cpu_ms, 1),
        "runs": runs,
        "best_images_per_s": best,
        "generator_target_images_per_s_per_gpu": GENERATOR_TARGET_RATE,
        "gpus_kept_up_with_measured": round(best / GENERATOR_TARGET_RATE, 2),
        "free_cores_needed_per_gpu": round(GENERATOR_TARGET_RATE * cpu_ms / 1e3, 2),
        "load_average_before": [round(v, 2) for v in load_before],
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("one image: %.1f ms CPU (%.1f ms wall); %.1f images/s per free core, so %.2f free cores keep up "
                "with one GPU at %g images/s", cpu_ms, wall_ms, 1e3 / cpu_ms, GENERATOR_TARGET_RATE * cpu_ms / 1e3,
                GENERATOR_TARGET_RATE)
    logger.info("decision alone: %.1f us; best %.1f images/s = %.2fx the generator's %g images/s per GPU; wrote %s",
                decision_us, best, best / GENERATOR_TARGET_RATE, GENERATOR_TARGET_RATE, args.out)


if __name__ == "__main__":
    main()
